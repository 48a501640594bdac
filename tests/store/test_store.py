"""Store: migrations on a blank and an old database, WAL, run uniqueness."""

import sqlite3

import pytest

from workbench.store import ModelRecord, Store, open_database
from workbench.store.migrations import MIGRATIONS

ALL_TABLES = {"models", "model_benchmarks", "variants", "datasets", "items", "experiments",
              "experiment_arms", "runs", "rating_sessions", "ratings", "finetune_jobs",
              "training_metrics", "parity_checks", "drift_checks", "alerts"}


def tables(path):
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_blank_database_gets_every_table_and_wal(tmp_path):
    path = tmp_path / "w.db"
    store = Store(path)
    assert ALL_TABLES <= tables(path)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert [m.name for m in MIGRATIONS.applied(store.db)] == [m.name for m in MIGRATIONS._migrations]


def test_upgrade_from_first_migration_keeps_data(tmp_path):
    path = tmp_path / "old.db"
    db = open_database(path, migrate=False)
    MIGRATIONS.apply(db, stop_before="m002_ratings")
    db["models"].insert({"id": "m", "path": "/x.gguf", "added_at": "2026-01-01"})
    db.conn.commit()
    assert "ratings" not in tables(path)
    db.close()
    store = Store(path)  # applies the rest
    assert ALL_TABLES <= tables(path)
    assert store.get_model("m").path == "/x.gguf"


def _experiment(store):
    store.upsert_model(ModelRecord(id="m", path="/x.gguf"))
    a = store.create_variant("a", "m")
    b = store.create_variant("b", "m")
    ds = store.save_dataset("d", [{"key": "k1", "input": "x"}], source_path=None, sha256=None,
                            n_rejected=0)
    return store.create_experiment("e", ds, {"A": a.id, "B": b.id}), a, b


def test_runs_are_unique_per_item_and_variant(tmp_path):
    store = Store(tmp_path / "w.db")
    exp, a, _ = _experiment(store)
    item = store.items(exp.dataset_id)[0]
    run = {"experiment_id": exp.id, "item_id": item.id, "variant_id": a.id, "arm": "A",
           "output": "first"}
    assert store.record_run(run) is True
    assert store.record_run({**run, "output": "second"}) is False
    rows = store.runs(exp.id)
    assert len(rows) == 1 and rows[0]["output"] == "first"


def test_same_variant_twice_in_one_experiment_is_refused(tmp_path):
    store = Store(tmp_path / "w.db")
    exp, a, _ = _experiment(store)
    with pytest.raises(ValueError, match="own variant"):
        store.create_experiment("e2", exp.dataset_id, {"A": a.id, "B": a.id})


def test_replacing_a_dataset_with_experiments_is_refused(tmp_path):
    store = Store(tmp_path / "w.db")
    _experiment(store)
    with pytest.raises(ValueError, match="already has experiments"):
        store.save_dataset("d", [{"key": "k2", "input": "y"}], source_path=None, sha256=None,
                           n_rejected=0)
