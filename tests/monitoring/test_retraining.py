"""The retraining table from stored checks, windows and fine-tune jobs, with a controlled clock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from support import write_jsonl
from workbench.cli import main
from workbench.monitoring.logs import import_logs
from workbench.monitoring.monitor import iso
from workbench.monitoring.retraining import retraining_decision
from workbench.store import ModelRecord, Store

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "workbench.db") as s:
        s.upsert_model(ModelRecord(id="tuned", path="/models/tuned.gguf",
                                   lineage={"kind": "quantized", "job": 1}))
        s.create_variant("prod", "tuned")
        yield s


def add_check(store, kind, when, *, statistic=0.0, drifted=False, target="variant:prod",
              p_value=0.01):
    store.db["drift_checks"].insert({"kind": kind, "target": target, "reference": "ds",
                                     "statistic": statistic, "p_value": p_value,
                                     "threshold": 15.0, "drifted": int(drifted),
                                     "details": "{}", "created_at": iso(when)})


def criteria(store, ref="variant:prod", now=T0):
    return {c.name: c for c in retraining_decision(store, ref, now=now).criteria}


def test_nothing_known_means_nothing_met(store):
    decision = retraining_decision(store, "variant:prod", now=T0)
    assert not decision.retrain
    assert all(not c.met for c in decision.criteria)
    assert {c.name for c in decision.criteria if not c.known} == {
        "concept drift", "thumbs-up rate", "safety failures", "data drift sustained",
        "time since training"}  # no requests at all: no rate


def test_concept_drift_uses_the_latest_check(store):
    add_check(store, "concept", T0 - timedelta(days=2), statistic=30.0, drifted=True)
    c = criteria(store)["concept drift"]
    assert c.value == 30.0 and c.threshold == 15.0 and c.met
    add_check(store, "concept", T0 - timedelta(days=1), statistic=5.0)
    assert not criteria(store)["concept drift"].met
    # a check after `now` is not seen yet
    assert criteria(store, now=T0 - timedelta(days=1, hours=12))["concept drift"].value == 30.0
    # a model's criteria include its variants' checks
    assert criteria(store, "model:tuned")["concept drift"].value == 5.0


def test_data_drift_must_be_sustained_over_four_weeks(store):
    add_check(store, "data", T0 - timedelta(days=40), drifted=False)
    for days in (30, 20, 10, 1):
        add_check(store, "data", T0 - timedelta(days=days), drifted=True)
    c = criteria(store)["data drift sustained"]
    assert c.value == pytest.approx(29.0) and c.met
    assert not criteria(store, now=T0 - timedelta(days=5))["data drift sustained"].met  # 20 days
    add_check(store, "data", T0 - timedelta(hours=1), drifted=False)
    c = criteria(store)["data drift sustained"]
    assert c.value == 0.0 and not c.met


def test_time_since_training_from_the_fine_tune_job(store):
    store.db["finetune_jobs"].insert({"id": 1, "name": "j", "base_path": "/b", "engine": "peft",
                                      "config": "{}", "status": "completed", "output_dir": "/o",
                                      "created_at": iso(T0 - timedelta(days=200)),
                                      "ended_at": iso(T0 - timedelta(days=190))})
    c = criteria(store)["time since training"]
    assert c.value == pytest.approx(190.0) and c.met and "job 1" in c.detail
    assert not criteria(store, now=T0 - timedelta(days=20))["time since training"].met
    store.upsert_model(ModelRecord(id="base", path="/models/base.gguf"))
    store.create_variant("plain", "base")
    c = criteria(store, "variant:plain")["time since training"]
    assert c.value is None and not c.met and "unknown" in c.detail


def test_feedback_and_safety_from_the_monitored_window(store, tmp_path):
    lines = [{"request_id": f"r{i}", "timestamp": 1796047331 + i, "input": f"q {i}",
              "response": "ok", "model": "tuned", "latency_ms": 100,
              "feedback": 1 if i % 2 else -1, "safety_flags": ["pii"] if i < 10 else []}
             for i in range(100)]
    import_logs(store, write_jsonl(tmp_path / "prod.jsonl", lines))
    found = criteria(store, "model:tuned")
    assert found["thumbs-up rate"].value == pytest.approx(0.5) and found["thumbs-up rate"].met
    assert found["safety failures"].value == pytest.approx(0.10) and found["safety failures"].met
    assert retraining_decision(store, "model:tuned", now=T0).retrain


def test_cli_prints_the_table(tmp_path, capsys):
    home = tmp_path / "ws"
    assert main(["drift", "retraining", "prod-triage", "--now", "2026-06-01T12:00:00Z",
                 "--workspace", str(home), "--create"]) == 0
    out = capsys.readouterr().out
    assert "not needed" in out and "time since training" in out and "unknown" in out
    assert main(["drift", "retraining", "prod-triage", "--json", "--workspace", str(home)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["target"] == "variant:prod-triage" and len(data["criteria"]) == 5
