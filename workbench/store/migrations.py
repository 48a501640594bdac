"""Schema migrations. Append-only: never edit or reorder a migration that has shipped.

Each migration is a small function registered on ``MIGRATIONS``; sqlite-utils records which ones a
database has applied, so a blank database and an old one both end on the same schema.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("workbench")


def _run(db: Database, script: str) -> None:
    # executescript() would COMMIT the migration's transaction; run statement by statement instead.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS(name="m001_core")
def m001_core(db: Database) -> None:
    """Models, variants, datasets and items, experiments and their runs."""
    _run(
        db,
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,
            name TEXT,
            path TEXT NOT NULL,
            architecture TEXT,
            size_label TEXT,
            parameters INTEGER,
            file_type TEXT,
            context_length INTEGER,
            file_size INTEGER,
            file_mtime REAL,
            sha256 TEXT,
            source TEXT,
            has_chat_template INTEGER NOT NULL DEFAULT 0,
            n_gpu_layers INTEGER NOT NULL DEFAULT 0,
            n_ctx INTEGER NOT NULL DEFAULT 2048,
            n_threads INTEGER,
            lineage TEXT,
            added_at TEXT NOT NULL
        );
        CREATE TABLE model_benchmarks (
            id INTEGER PRIMARY KEY,
            model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            prompt_tps REAL,
            decode_tps REAL,
            ttft_ms REAL,
            n_gpu_layers INTEGER,
            n_threads INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE TABLE variants (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            model_id TEXT NOT NULL REFERENCES models(id),
            system_prompt TEXT,
            temperature REAL NOT NULL DEFAULT 0,
            top_p REAL NOT NULL DEFAULT 1,
            max_tokens INTEGER NOT NULL DEFAULT 256,
            seed INTEGER NOT NULL DEFAULT 0,
            json_schema TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            source_path TEXT,
            sha256 TEXT,
            n_items INTEGER NOT NULL DEFAULT 0,
            n_rejected INTEGER NOT NULL DEFAULT 0,
            imported_at TEXT NOT NULL
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            line_no INTEGER,
            input TEXT,
            messages TEXT,
            system TEXT,
            reference TEXT,
            user_id TEXT,
            category TEXT,
            feature TEXT,
            UNIQUE (dataset_id, key)
        );
        CREATE TABLE experiments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id),
            mode TEXT NOT NULL CHECK (mode IN ('shadow', 'split', 'canary')),
            weight_b REAL NOT NULL DEFAULT 0.5,
            canary_users TEXT,
            item_limit INTEGER,
            seed INTEGER NOT NULL DEFAULT 0,
            primary_metric TEXT,
            criteria TEXT,
            status TEXT NOT NULL DEFAULT 'draft'
                CHECK (status IN ('draft', 'active', 'paused', 'completed')),
            winner TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            completed_at TEXT
        );
        CREATE TABLE experiment_arms (
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            arm TEXT NOT NULL,
            variant_id INTEGER NOT NULL REFERENCES variants(id),
            PRIMARY KEY (experiment_id, arm),
            UNIQUE (experiment_id, variant_id)
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id),
            variant_id INTEGER NOT NULL REFERENCES variants(id),
            arm TEXT NOT NULL,
            output TEXT,
            latency_ms REAL,
            ttft_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            decode_tps REAL,
            prompt_tps REAL,
            finish_reason TEXT,
            error TEXT,
            fallback INTEGER NOT NULL DEFAULT 0,
            severity_pred TEXT,
            severity_ok INTEGER,
            json_valid INTEGER,
            secrets INTEGER NOT NULL DEFAULT 0,
            scores TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (experiment_id, item_id, variant_id)
        );
        CREATE INDEX runs_by_experiment_arm ON runs (experiment_id, arm);
        CREATE INDEX items_by_dataset ON items (dataset_id)
        """,
    )


@MIGRATIONS(name="m002_ratings")
def m002_ratings(db: Database) -> None:
    """Blind rating sessions and their ratings (one per session x item)."""
    _run(
        db,
        """
        CREATE TABLE rating_sessions (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            rater TEXT NOT NULL,
            seed INTEGER NOT NULL,
            source TEXT NOT NULL DEFAULT 'app',
            created_at TEXT NOT NULL,
            completed_at TEXT,
            UNIQUE (experiment_id, rater)
        );
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES rating_sessions(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id),
            position INTEGER NOT NULL,
            left_arm TEXT NOT NULL,
            right_arm TEXT NOT NULL,
            choice TEXT NOT NULL CHECK (choice IN ('1', '2', 'tie', 'skip')),
            preferred_arm TEXT,
            accuracy_1 INTEGER CHECK (accuracy_1 BETWEEN 1 AND 5),
            safety_1 INTEGER CHECK (safety_1 BETWEEN 1 AND 5),
            accuracy_2 INTEGER CHECK (accuracy_2 BETWEEN 1 AND 5),
            safety_2 INTEGER CHECK (safety_2 BETWEEN 1 AND 5),
            notes TEXT,
            seconds REAL,
            created_at TEXT NOT NULL,
            UNIQUE (session_id, item_id)
        );
        CREATE INDEX ratings_by_item ON ratings (item_id);
        CREATE TABLE rating_assignments (
            session_id INTEGER NOT NULL REFERENCES rating_sessions(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id),
            position INTEGER NOT NULL,
            left_arm TEXT NOT NULL,
            right_arm TEXT NOT NULL,
            PRIMARY KEY (session_id, item_id),
            UNIQUE (session_id, position)
        )
        """,
    )


@MIGRATIONS(name="m003_finetune_export_drift")
def m003_finetune_export_drift(db: Database) -> None:
    """Fine-tune jobs and their metrics, parity checks, drift checks and alerts."""
    _run(
        db,
        """
        CREATE TABLE finetune_jobs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            base_model_id TEXT,
            base_path TEXT NOT NULL,
            dataset_id INTEGER REFERENCES datasets(id),
            train_file TEXT,
            val_file TEXT,
            engine TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'cancelled', 'failed', 'completed')),
            pid INTEGER,
            output_dir TEXT NOT NULL,
            log_path TEXT,
            checkpoint TEXT,
            error TEXT,
            merged_path TEXT,
            gguf_path TEXT,
            adapter_gguf_path TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT
        );
        CREATE TABLE training_metrics (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES finetune_jobs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            epoch REAL,
            loss REAL,
            eval_loss REAL,
            learning_rate REAL,
            tokens_per_s REAL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX training_metrics_by_job ON training_metrics (job_id, step);
        CREATE TABLE parity_checks (
            id INTEGER PRIMARY KEY,
            model_id TEXT,
            kind TEXT NOT NULL,
            reference TEXT,
            candidate TEXT,
            n_prompts INTEGER NOT NULL,
            token_agreement REAL,
            exact_matches INTEGER,
            chat_template_ok INTEGER,
            passed INTEGER,
            details TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE drift_checks (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER REFERENCES experiments(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            statistic REAL,
            p_value REAL,
            threshold REAL,
            drifted INTEGER,
            details TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            level TEXT NOT NULL,
            message TEXT NOT NULL,
            created_at TEXT NOT NULL,
            acknowledged_at TEXT
        )
        """,
    )


@MIGRATIONS(name="m004_engines")
def m004_engines(db: Database) -> None:
    """HTTP endpoints; a variant on an endpoint model or with a LoRA adapter; engine per model/run.

    ``variants.model_id`` becomes nullable (a variant names either a local model or an endpoint).
    """
    _run(
        db,
        """
        CREATE TABLE endpoints (
            name TEXT PRIMARY KEY,
            base_url TEXT NOT NULL,
            api_key_env TEXT,
            model TEXT,
            concurrency INTEGER,
            stream INTEGER NOT NULL DEFAULT 1,
            kind TEXT,
            version TEXT,
            probe TEXT,
            probed_at TEXT,
            created_at TEXT NOT NULL
        );
        ALTER TABLE models ADD COLUMN engine TEXT NOT NULL DEFAULT 'auto';
        ALTER TABLE models ADD COLUMN server_slots INTEGER;
        ALTER TABLE runs ADD COLUMN engine TEXT;
        ALTER TABLE runs ADD COLUMN usage_source TEXT
        """,
    )
    db["variants"].transform(not_null={"model_id": False})
    _run(
        db,
        """
        ALTER TABLE variants ADD COLUMN endpoint TEXT REFERENCES endpoints(name);
        ALTER TABLE variants ADD COLUMN endpoint_model TEXT;
        ALTER TABLE variants ADD COLUMN lora_path TEXT;
        ALTER TABLE variants ADD COLUMN lora_scale REAL NOT NULL DEFAULT 1.0
        """,
    )


@MIGRATIONS(name="m005_remote_rating")
def m005_remote_rating(db: Database) -> None:
    """A 'both_bad' vote beside 1 / 2 / tie / skip (the ratings table is rebuilt for its CHECK);
    per-rater browser links (only a hash of each token is kept); per-experiment rating settings
    (show the reference answer to raters, leave out answers that may reveal the model)."""
    columns = ("id, session_id, item_id, position, left_arm, right_arm, choice, preferred_arm, "
               "accuracy_1, safety_1, accuracy_2, safety_2, notes, seconds, created_at")
    _run(
        db,
        f"""
        CREATE TABLE ratings_m005 (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES rating_sessions(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id),
            position INTEGER NOT NULL,
            left_arm TEXT NOT NULL,
            right_arm TEXT NOT NULL,
            choice TEXT NOT NULL CHECK (choice IN ('1', '2', 'tie', 'both_bad', 'skip')),
            preferred_arm TEXT,
            accuracy_1 INTEGER CHECK (accuracy_1 BETWEEN 1 AND 5),
            safety_1 INTEGER CHECK (safety_1 BETWEEN 1 AND 5),
            accuracy_2 INTEGER CHECK (accuracy_2 BETWEEN 1 AND 5),
            safety_2 INTEGER CHECK (safety_2 BETWEEN 1 AND 5),
            notes TEXT,
            seconds REAL,
            created_at TEXT NOT NULL,
            UNIQUE (session_id, item_id)
        );
        INSERT INTO ratings_m005 ({columns}) SELECT {columns} FROM ratings;
        DROP TABLE ratings;
        ALTER TABLE ratings_m005 RENAME TO ratings;
        CREATE INDEX ratings_by_item ON ratings (item_id);
        CREATE TABLE rating_tokens (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            rater TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        );
        CREATE INDEX rating_tokens_by_experiment ON rating_tokens (experiment_id, rater);
        CREATE TABLE rating_settings (
            experiment_id INTEGER PRIMARY KEY REFERENCES experiments(id) ON DELETE CASCADE,
            show_reference INTEGER NOT NULL DEFAULT 0,
            exclude_leaks INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        )
        """,
    )


@MIGRATIONS(name="m006_monitoring")
def m006_monitoring(db: Database) -> None:
    """Production traffic and its monitoring: imported request logs (``observations``, one per
    logged request, linked to the dataset item that replays it), recorded baselines per monitored
    target, and alert type / target / value / throttling on the existing ``alerts`` table."""
    _run(
        db,
        """
        CREATE TABLE observations (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            item_id INTEGER REFERENCES items(id) ON DELETE CASCADE,
            request_id TEXT NOT NULL,
            line_no INTEGER,
            observed_at TEXT,
            model TEXT,
            user_id TEXT,
            response TEXT,
            latency_ms REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            feedback INTEGER CHECK (feedback IN (-1, 0, 1)),
            safety_flags TEXT,
            auto_flags TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (dataset_id, request_id)
        );
        CREATE INDEX observations_by_dataset ON observations (dataset_id, observed_at);
        CREATE INDEX observations_by_model ON observations (model, observed_at);
        CREATE TABLE monitor_baselines (
            id INTEGER PRIMARY KEY,
            target TEXT NOT NULL,
            metrics TEXT NOT NULL,
            window_size INTEGER,
            source TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX monitor_baselines_by_target ON monitor_baselines (target, id);
        ALTER TABLE alerts ADD COLUMN kind TEXT;
        ALTER TABLE alerts ADD COLUMN target TEXT;
        ALTER TABLE alerts ADD COLUMN value REAL;
        ALTER TABLE alerts ADD COLUMN threshold REAL;
        ALTER TABLE alerts ADD COLUMN throttled INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE alerts ADD COLUMN details TEXT;
        CREATE INDEX alerts_by_kind ON alerts (kind, target, created_at)
        """,
    )


@MIGRATIONS(name="m007_rollout_drift")
def m007_rollout_drift(db: Database) -> None:
    """Canary rollouts and drift: an optional ``timestamp`` per item (canary replays run in time
    order), an experiment's canary schedule (JSON), the canary's events (every health check, stage
    change and rollback with its evidence), and what a drift check is about (``target``: model or
    variant; ``reference``: the dataset it compares against) and the checks ``drift run-due`` runs
    (``drift_schedules``)."""
    _run(
        db,
        """
        ALTER TABLE items ADD COLUMN timestamp TEXT;
        ALTER TABLE experiments ADD COLUMN canary_schedule TEXT;
        CREATE TABLE canary_events (
            id INTEGER PRIMARY KEY,
            experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('check', 'advance', 'rollback', 'complete')),
            request_no INTEGER NOT NULL,
            stage_pct REAL NOT NULL,
            healthy INTEGER,
            evidence TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (experiment_id, seq)
        );
        ALTER TABLE drift_checks ADD COLUMN target TEXT;
        ALTER TABLE drift_checks ADD COLUMN reference TEXT;
        CREATE INDEX drift_checks_by_target ON drift_checks (kind, target, created_at);
        CREATE TABLE drift_schedules (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('concept', 'data')),
            target TEXT NOT NULL,
            reference TEXT NOT NULL,
            every_hours REAL NOT NULL,
            options TEXT,
            created_at TEXT NOT NULL,
            last_run_at TEXT,
            UNIQUE (kind, target, reference)
        )
        """,
    )
