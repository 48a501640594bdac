"""Typed queries over the workspace database.

A ``Store`` wraps one sqlite-utils connection and must stay on the thread that opened it; open
another ``Store`` on the same file for another thread or process (WAL keeps them from blocking).
A method that reads and then writes does both in one ``BEGIN IMMEDIATE`` transaction
(``db.atomic()``), so a concurrent writer waits for the busy timeout instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlite_utils import Database

from .db import dumps, open_database, utcnow
from .records import Endpoint, Experiment, Item, ModelRecord, Variant

RUN_COLUMNS = (
    "experiment_id", "item_id", "variant_id", "arm", "output", "latency_ms", "ttft_ms",
    "prompt_tokens", "completion_tokens", "decode_tps", "prompt_tps", "finish_reason", "error",
    "fallback", "severity_pred", "severity_ok", "json_valid", "secrets", "scores", "created_at",
    "engine", "usage_source",
)
MODEL_ENGINES = ("auto", "worker", "server")


def check_json_schema(schema: Any) -> None:
    """Refuse (``ValueError`` with the reason) anything that is not a valid JSON Schema."""
    import jsonschema

    if not isinstance(schema, dict):
        raise ValueError(f"the JSON schema must be a JSON object, not {type(schema).__name__}")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise ValueError(f"not a valid JSON Schema ({where}): {exc.message}") from None


class NotFound(LookupError):
    """A model, variant, dataset or experiment that the store does not hold."""


class Store:
    """Queries for models, variants, datasets, experiments and runs."""

    def __init__(self, path: str | Path, *, read_only: bool = False):
        self.path = Path(path)
        self.db: Database = open_database(self.path, read_only=read_only)

    @property
    def read_only(self) -> str | None:
        """Why this store refuses writes (a read-only workspace, a newer database), else None."""
        return self.db.read_only

    def require_writable(self) -> None:
        """Raise ``ReadOnlyWorkspace`` (or ``NewerDatabase``) when this store refuses writes."""
        self.db._refuse_writes()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        """Run a query and return its rows as dicts."""
        cursor = self.db.execute(sql, params if isinstance(params, dict) else list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _one(self, sql: str, params: Iterable[Any], what: str) -> dict:
        found = self.rows(sql, params)
        if not found:
            raise NotFound(what)
        return found[0]

    # -- models -----------------------------------------------------------------------------
    def upsert_model(self, record: ModelRecord) -> ModelRecord:
        """Insert or refresh a model's metadata, keeping its operator settings if it exists."""
        row = {k: v for k, v in record.__dict__.items()}
        row["lineage"] = dumps(row["lineage"])
        row["added_at"] = row["added_at"] or utcnow()
        with self.db.atomic():
            existing = self.rows("SELECT * FROM models WHERE id = ?", [record.id])
            if existing:
                for keep in ("n_gpu_layers", "n_ctx", "n_threads", "added_at", "engine",
                             "server_slots"):
                    row[keep] = existing[0][keep]
                if row["lineage"] is None:
                    row["lineage"] = existing[0]["lineage"]
            self.db["models"].upsert(row, pk="id")
        return self.get_model(record.id)

    def get_model(self, model_id: str) -> ModelRecord:
        return ModelRecord.from_row(self._one("SELECT * FROM models WHERE id = ?", [model_id],
                                              f"no model {model_id!r}"))

    def list_models(self) -> list[ModelRecord]:
        return [ModelRecord.from_row(r) for r in self.rows("SELECT * FROM models ORDER BY id")]

    def set_model_settings(self, model_id: str, **settings: Any) -> ModelRecord:
        """Change n_gpu_layers / n_ctx / n_threads / engine / server_slots of a registered model."""
        allowed = {"n_gpu_layers", "n_ctx", "n_threads", "engine", "server_slots"}
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"unknown model setting(s): {', '.join(sorted(unknown))}")
        if "engine" in settings and settings["engine"] not in MODEL_ENGINES:
            raise ValueError(f"engine must be one of {', '.join(MODEL_ENGINES)}, "
                             f"not {settings['engine']!r}")
        for name in ("n_ctx", "server_slots"):
            if settings.get(name) is not None and int(settings[name]) < 1:
                raise ValueError(f"{name} must be at least 1")
        with self.db.atomic():
            self.get_model(model_id)
            self.db["models"].update(model_id, settings)
        return self.get_model(model_id)

    def add_benchmark(self, model_id: str, result: dict) -> None:
        with self.db.atomic():
            self.db["model_benchmarks"].insert({**result, "model_id": model_id,
                                                "created_at": utcnow()})

    def benchmarks(self, model_id: str) -> list[dict]:
        return self.rows("SELECT * FROM model_benchmarks WHERE model_id = ? ORDER BY id DESC",
                         [model_id])

    # -- variants ---------------------------------------------------------------------------
    def create_variant(self, name: str, model_id: str | None = None, *,
                       system_prompt: str | None = None, temperature: float = 0.0,
                       top_p: float = 1.0, max_tokens: int = 256, seed: int = 0,
                       json_schema: dict | None = None, endpoint: str | None = None,
                       endpoint_model: str | None = None, lora_path: str | None = None,
                       lora_scale: float = 1.0) -> Variant:
        """Create a named variant: a local model (optionally + a LoRA adapter GGUF) or an
        endpoint's model, with a system prompt and sampling parameters."""
        if bool(model_id) == bool(endpoint):
            raise ValueError("a variant needs either a model or an endpoint (not both)")
        if endpoint and lora_path:
            raise ValueError("a LoRA adapter goes with a local model, not an endpoint")
        if json_schema is not None:
            check_json_schema(json_schema)
        with self.db.atomic():
            if model_id:
                self.get_model(model_id)
            else:
                self.get_endpoint(endpoint)
            if self.rows("SELECT 1 FROM variants WHERE name = ?", [name]):
                raise ValueError(f"a variant named {name!r} already exists")
            self.db["variants"].insert({
                "name": name, "model_id": model_id, "system_prompt": system_prompt,
                "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                "seed": seed, "json_schema": dumps(json_schema, sort_keys=False),
                "created_at": utcnow(),
                "endpoint": endpoint, "endpoint_model": endpoint_model,
                "lora_path": lora_path, "lora_scale": lora_scale,
            })
        return self.get_variant(name)

    def get_variant(self, ref: int | str) -> Variant:
        """A variant by id, or by name (a name that looks like a number is tried as a name first)."""
        rows = [] if isinstance(ref, int) else self.rows("SELECT * FROM variants WHERE name = ?", [ref])
        if not rows and str(ref).isdigit():
            rows = self.rows("SELECT * FROM variants WHERE id = ?", [int(ref)])
        if not rows:
            raise NotFound(f"no variant {ref!r}")
        return Variant.from_row(rows[0])

    def list_variants(self) -> list[Variant]:
        return [Variant.from_row(r) for r in self.rows("SELECT * FROM variants ORDER BY id")]

    # -- endpoints --------------------------------------------------------------------------
    def add_endpoint(self, name: str, base_url: str, *, api_key_env: str | None = None,
                     model: str | None = None, concurrency: int | None = None,
                     stream: bool = True) -> Endpoint:
        """Register an OpenAI-compatible endpoint. Only the *name* of the key's env var is kept."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"endpoint name {name!r}: use letters, digits, '-', '_' or '.'")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {base_url!r}")
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        with self.db.atomic():
            if self.rows("SELECT 1 FROM endpoints WHERE name = ?", [name]):
                raise ValueError(f"an endpoint named {name!r} already exists")
            self.db["endpoints"].insert({
                "name": name, "base_url": base_url.rstrip("/"), "api_key_env": api_key_env,
                "model": model, "concurrency": concurrency, "stream": int(bool(stream)),
                "created_at": utcnow()})
        return self.get_endpoint(name)

    def get_endpoint(self, name: str) -> Endpoint:
        return Endpoint.from_row(self._one("SELECT * FROM endpoints WHERE name = ?", [name],
                                           f"no endpoint {name!r} (see `workbench endpoints list`)"))

    def list_endpoints(self) -> list[Endpoint]:
        return [Endpoint.from_row(r) for r in self.rows("SELECT * FROM endpoints ORDER BY name")]

    def record_probe(self, name: str, probe: dict) -> Endpoint:
        """Keep what a probe found (engine kind, version, models, context, chat template)."""
        with self.db.atomic():
            self.get_endpoint(name)
            self.db["endpoints"].update(name, {
                "kind": probe.get("kind"), "version": probe.get("version"),
                "probe": dumps(probe), "probed_at": utcnow()})
        return self.get_endpoint(name)

    # -- datasets and items -----------------------------------------------------------------
    def save_dataset(self, name: str, items: list[dict], *, source_path: str | None,
                     sha256: str | None, n_rejected: int) -> int:
        """Create or replace a dataset and its items in one transaction; return its id."""
        with self.db.atomic():
            existing = self.rows("SELECT id FROM datasets WHERE name = ?", [name])
            if existing:
                dataset_id = existing[0]["id"]
                if self.rows("SELECT 1 FROM experiments WHERE dataset_id = ? LIMIT 1", [dataset_id]):
                    raise ValueError(f"dataset {name!r} already has experiments; import it "
                                     "under another name instead of replacing it")
                self.db.execute("DELETE FROM items WHERE dataset_id = ?", [dataset_id])
                self.db["datasets"].update(dataset_id, {
                    "source_path": source_path, "sha256": sha256, "n_items": len(items),
                    "n_rejected": n_rejected, "imported_at": utcnow()})
            else:
                dataset_id = self.db["datasets"].insert({
                    "name": name, "source_path": source_path, "sha256": sha256,
                    "n_items": len(items), "n_rejected": n_rejected,
                    "imported_at": utcnow()}).last_pk
            self.db["items"].insert_all(
                ({**item, "dataset_id": dataset_id,
                  "messages": dumps(item.get("messages")),
                  "reference": dumps(item.get("reference"))} for item in items),
                batch_size=500)
        return dataset_id

    def list_datasets(self) -> list[dict]:
        return self.rows("SELECT * FROM datasets ORDER BY id")

    def get_dataset(self, ref: int | str) -> dict:
        """A dataset by id or by name."""
        if isinstance(ref, int) or str(ref).isdigit():
            found = self.rows("SELECT * FROM datasets WHERE id = ?", [int(ref)])
            if found:
                return found[0]
        return self._one("SELECT * FROM datasets WHERE name = ?", [str(ref)], f"no dataset {ref!r}")

    def items(self, dataset_id: int, limit: int | None = None, *, light: bool = False) -> list[Item]:
        """Items in file order; ``light`` reads only id, key and user (for planning, not replay)."""
        columns = "id, dataset_id, key, user_id" if light else "*"
        sql = f"SELECT {columns} FROM items WHERE dataset_id = ? ORDER BY id"
        params: list[Any] = [dataset_id]
        if limit:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [Item.from_row(r) for r in self.rows(sql, params)]

    def get_item(self, item_id: int) -> Item:
        return Item.from_row(self._one("SELECT * FROM items WHERE id = ?", [item_id],
                                       f"no item {item_id}"))

    # -- experiments ------------------------------------------------------------------------
    def create_experiment(self, name: str, dataset_id: int, arms: dict[str, int], *,
                          mode: str = "shadow", weight_b: float = 0.5,
                          canary_users: list[str] | None = None, item_limit: int | None = None,
                          seed: int = 0, primary_metric: str | None = None,
                          criteria: dict | None = None,
                          canary_schedule: dict | None = None) -> Experiment:
        """Create a draft experiment whose arms ('A', 'B', ...) name distinct variants."""
        if len(set(arms.values())) != len(arms):
            raise ValueError("each arm needs its own variant (for an A/A test, make two variants)")
        with self.db.atomic():
            self.get_dataset(dataset_id)
            for variant_id in arms.values():
                self.get_variant(int(variant_id))
            exp_id = self.db["experiments"].insert({
                "name": name, "dataset_id": dataset_id, "mode": mode, "weight_b": weight_b,
                "canary_users": dumps(canary_users or []), "item_limit": item_limit,
                "seed": seed, "primary_metric": primary_metric, "criteria": dumps(criteria),
                "canary_schedule": dumps(canary_schedule),
                "status": "draft", "created_at": utcnow()}).last_pk
            self.db["experiment_arms"].insert_all(
                {"experiment_id": exp_id, "arm": arm, "variant_id": int(v)}
                for arm, v in sorted(arms.items()))
        return self.get_experiment(exp_id)

    def get_experiment(self, ref: int | str) -> Experiment:
        """An experiment by id, or by name (the newest of that name)."""
        if isinstance(ref, int) or str(ref).isdigit():
            rows = self.rows("SELECT * FROM experiments WHERE id = ?", [int(ref)])
        else:
            rows = self.rows("SELECT * FROM experiments WHERE name = ? ORDER BY id DESC", [ref])
        if not rows:
            raise NotFound(f"no experiment {ref!r}")
        arms = {r["arm"]: r["variant_id"] for r in self.rows(
            "SELECT arm, variant_id FROM experiment_arms WHERE experiment_id = ? ORDER BY arm",
            [rows[0]["id"]])}
        return Experiment.from_row(rows[0], arms)

    def list_experiments(self) -> list[Experiment]:
        return [self.get_experiment(r["id"])
                for r in self.rows("SELECT id FROM experiments ORDER BY id")]

    def set_experiment(self, exp_id: int, **values: Any) -> Experiment:
        """Update status, winner, criteria, primary metric or timestamps of an experiment."""
        if "criteria" in values:
            values["criteria"] = dumps(values["criteria"])
        with self.db.atomic():
            self.db["experiments"].update(exp_id, values)
        return self.get_experiment(exp_id)

    # -- runs -------------------------------------------------------------------------------
    def record_run(self, run: dict) -> bool:
        """Store one run; return False (and change nothing) if that (item, variant) exists."""
        row = {name: run.get(name) for name in RUN_COLUMNS}
        row["fallback"] = int(bool(row["fallback"]))
        row["secrets"] = int(row["secrets"] or 0)
        row["scores"] = dumps(row["scores"]) if not isinstance(row["scores"], str) else row["scores"]
        row["created_at"] = row["created_at"] or utcnow()
        placeholders = ", ".join("?" for _ in RUN_COLUMNS)
        with self.db.atomic():
            cursor = self.db.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders}) "
                "ON CONFLICT (experiment_id, item_id, variant_id) DO NOTHING",
                [row[c] for c in RUN_COLUMNS])
        return cursor.rowcount == 1

    def runs(self, exp_id: int, columns: str = "*") -> list[dict]:
        return self.rows(f"SELECT {columns} FROM runs WHERE experiment_id = ? ORDER BY id", [exp_id])

    def iter_runs(self, exp_id: int, columns: str = "*") -> Iterator[tuple]:
        """Stream runs as tuples (for large experiments)."""
        yield from self.db.execute(f"SELECT {columns} FROM runs WHERE experiment_id = ?", [exp_id])

    def run_count(self, exp_id: int) -> int:
        return self.db.execute("SELECT count(*) FROM runs WHERE experiment_id = ?",
                               [exp_id]).fetchone()[0]

    def delete_error_runs(self, exp_id: int) -> int:
        """Forget failed runs so a resume retries them; return how many were removed."""
        with self.db.atomic():
            cursor = self.db.execute(
                "DELETE FROM runs WHERE experiment_id = ? AND error IS NOT NULL", [exp_id])
        return cursor.rowcount
