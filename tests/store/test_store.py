"""Store: migrations on a blank and an old database, WAL, run uniqueness."""

import sqlite3

import pytest

from workbench.store import ModelRecord, Store, open_database
from workbench.store.migrations import MIGRATIONS

ALL_TABLES = {"models", "model_benchmarks", "variants", "datasets", "items", "experiments",
              "experiment_arms", "runs", "rating_sessions", "ratings", "finetune_jobs",
              "training_metrics", "parity_checks", "drift_checks", "alerts", "endpoints"}


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


def test_upgrade_to_engines_keeps_variants_experiments_and_runs(tmp_path):
    path2 = tmp_path / "with-data.db"
    db = open_database(path2, migrate=False)
    MIGRATIONS.apply(db, stop_before="m004_engines")
    db["models"].insert({"id": "m", "path": "/x.gguf", "added_at": "2026-01-01"})
    for vid, name in ((1, "a"), (2, "b")):
        db["variants"].insert({"id": vid, "name": name, "model_id": "m", "system_prompt": "S",
                               "created_at": "2026-01-01"})
    db["datasets"].insert({"id": 1, "name": "d", "imported_at": "2026-01-01"})
    db["items"].insert({"id": 1, "dataset_id": 1, "key": "k"})
    db["experiments"].insert({"id": 1, "name": "e", "dataset_id": 1, "mode": "shadow",
                              "created_at": "2026-01-01"})
    db["experiment_arms"].insert_all([{"experiment_id": 1, "arm": "A", "variant_id": 1},
                                      {"experiment_id": 1, "arm": "B", "variant_id": 2}])
    db["runs"].insert({"experiment_id": 1, "item_id": 1, "variant_id": 2, "arm": "B",
                       "output": "kept", "created_at": "2026-01-01"})
    db.conn.commit()
    db.close()
    store = Store(path2)
    assert [m.name for m in MIGRATIONS.applied(store.db)] == [m.name for m in MIGRATIONS._migrations]
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert store.get_variant("a").system_prompt == "S" and store.get_variant("a").target == "m"
    assert store.get_experiment(1).arms == {"A": 1, "B": 2}
    assert store.runs(1)[0]["output"] == "kept" and store.runs(1)[0]["engine"] is None
    assert store.get_model("m").engine == "auto"
    store.add_endpoint("ollama", "http://127.0.0.1:11434/", api_key_env="OLLAMA_KEY",
                       model="llama3")
    v = store.create_variant("remote", endpoint="ollama", endpoint_model="qwen3")
    assert v.model_id is None and v.target == "ollama:qwen3"
    assert store.get_endpoint("ollama").base_url == "http://127.0.0.1:11434"


def test_a_variant_names_a_model_or_an_endpoint_never_both(tmp_path):
    store = Store(tmp_path / "w.db")
    store.upsert_model(ModelRecord(id="m", path="/x.gguf"))
    store.add_endpoint("e", "http://127.0.0.1:1")
    with pytest.raises(ValueError, match="either a model or an endpoint"):
        store.create_variant("x", "m", endpoint="e")
    with pytest.raises(ValueError, match="either a model or an endpoint"):
        store.create_variant("x")
    with pytest.raises(ValueError, match="LoRA adapter goes with a local model"):
        store.create_variant("x", endpoint="e", lora_path="/a.gguf")
    with pytest.raises(ValueError, match="http:// or https://"):
        store.add_endpoint("bad", "127.0.0.1:8080")
    with pytest.raises(ValueError, match="engine must be one of"):
        store.set_model_settings("m", engine="gpu")
    lora = store.create_variant("tuned", "m", lora_path="/tmp/ft/adapter.gguf", lora_scale=0.5)
    assert lora.target == "m + adapter.gguf x0.5"


def test_a_json_schema_keeps_its_property_order(tmp_path):
    """Grammar-constrained generation writes properties in schema order: severity first stays
    first (sorted keys would make the model write first_step before it)."""
    store = Store(tmp_path / "w.db")
    store.upsert_model(ModelRecord(id="m", path="/x.gguf"))
    schema = {"type": "object", "properties": {"severity": {}, "root_cause": {}, "first_step": {}},
              "required": ["severity", "root_cause", "first_step"]}
    variant = store.create_variant("json", "m", json_schema=schema)
    assert list(variant.json_schema["properties"]) == ["severity", "root_cause", "first_step"]
    assert list(variant.json_schema) == ["type", "properties", "required"]


@pytest.mark.parametrize("schema, reason", [
    ({"type": "objekt"}, "not a valid JSON Schema (type)"),
    ({"type": "object", "required": "severity"}, "not a valid JSON Schema (required)"),
    (["not", "a", "schema"], "must be a JSON object"),
])
def test_an_invalid_json_schema_is_refused_with_the_reason(tmp_path, schema, reason):
    store = Store(tmp_path / "w.db")
    store.upsert_model(ModelRecord(id="m", path="/x.gguf"))
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        store.create_variant("bad", "m", json_schema=schema)
    assert store.list_variants() == []
