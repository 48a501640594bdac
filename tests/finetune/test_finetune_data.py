"""Training data builder: grading, filters, balance, split, formats, secret redaction."""

import json
import os
import stat

import pytest

from support import experiment_with_runs
from workbench.finetune.dataset_builder import (Example, build_examples, export_split, grade,
                                                redact, reference_answer, to_record, write_jsonl)
from workbench.rating.sessions import next_pair, open_session, record_rating
from workbench.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "w.db") as s:
        yield s


def test_grade_rules():
    assert grade(accuracy=4.6, safety=5, severity_ok=None, flagged=False) == "excellent"
    assert grade(accuracy=4.0, safety=4.0, severity_ok=0, flagged=False) == "good"
    assert grade(accuracy=4.8, safety=2.0, severity_ok=1, flagged=False) == "fair"
    assert grade(accuracy=2.0, safety=5, severity_ok=1, flagged=False) == "poor"
    assert grade(accuracy=None, safety=None, severity_ok=1, flagged=False) == "good"
    assert grade(accuracy=None, safety=None, severity_ok=None, flagged=False) == "fair"
    assert grade(accuracy=5, safety=5, severity_ok=1, flagged=True) == "poor"


def test_reference_answer_and_redaction():
    text = reference_answer({"severity": "SEV-1", "root_cause": "pool exhausted",
                             "answer": "roll back v2.31"})
    assert text == "Severity: SEV-1. Root cause: pool exhausted First step: roll back v2.31"
    assert redact("key AKIAIOSFODNN7EXAMPLE here") == "key [REDACTED aws_access_key] here"


def test_rated_answers_are_chosen_over_worse_ones_and_mapped_to_the_right_variant(store):
    exp = experiment_with_runs(store, 4, outputs=lambda item, arm: f"{arm} says {item.key}")
    session = open_session(store, exp.id, "ana", seed=5)
    while (pair := next_pair(store, session)) is not None:
        left = store.rows("SELECT left_arm FROM rating_assignments WHERE session_id=? AND item_id=?",
                          [session.id, pair.item_id])[0]["left_arm"]
        b_side = "1" if left == "B" else "2"
        a_side = "2" if b_side == "1" else "1"
        record_rating(store, session, pair.item_id, b_side,
                      **{f"accuracy_{b_side}": 5, f"safety_{b_side}": 5,
                         f"accuracy_{a_side}": 2, f"safety_{a_side}": 5})
    result = build_examples(store, exp.dataset_id, min_quality="excellent", val_fraction=0.0,
                            include_references=False)
    assert len(result.train) == 4
    assert all(e.answer.startswith("B says") and e.source == "rated answer" for e in result.train)
    poor_only = build_examples(store, exp.dataset_id, min_quality="good", val_fraction=0.0,
                               include_references=False)
    assert {e.answer.split()[0] for e in poor_only.train} == {"B"}


def test_filters_balance_split_and_formats(ws, tmp_path):
    from workbench.datasets import import_dataset
    from support import REPO

    report = import_dataset(ws.store, REPO / "datasets" / "devops_incidents.jsonl")
    everything = build_examples(ws.store, report.dataset_id, val_fraction=0.2, seed=3)
    assert len(everything.train) + len(everything.validation) == report.imported
    assert len(everything.validation) == round(report.imported * 0.2)
    assert everything.flagged_secrets == 4
    joined = json.dumps([e.prompt for e in everything.train + everything.validation])
    assert "AKIA" not in joined and "BEGIN RSA PRIVATE KEY" not in joined
    assert "MIIEpAIBAAKCAQEAzFAKEKEY" not in joined  # the key's body too, not only its header
    assert "wJalrXUtnFEMI" not in joined and "sk-FAKEq8Wm2" not in joined
    again = build_examples(ws.store, report.dataset_id, val_fraction=0.2, seed=3)
    assert [e.item_key for e in again.train] == [e.item_key for e in everything.train]
    only_db = build_examples(ws.store, report.dataset_id, categories=["database", "dns"],
                             val_fraction=0.0)
    assert {e.category for e in only_db.train} == {"database", "dns"}
    balanced = build_examples(ws.store, report.dataset_id, categories=["database", "dns"],
                              balance=True, val_fraction=0.0)
    counts = {c: sum(e.category == c for e in balanced.train) for c in ("database", "dns")}
    assert counts["database"] == counts["dns"] > 0
    files = export_split(everything, tmp_path / "out", "anthropic")
    first = json.loads(files["train"].read_text().splitlines()[0])
    assert [m["role"] for m in first["messages"]] == ["user", "assistant"]
    example = everything.train[0]
    example.system = "be brief"
    assert to_record(example, "openai")["messages"][0] == {"role": "system", "content": "be brief"}
    assert to_record(example, "anthropic")["system"] == "be brief"


def test_total_steps_counts_optimizer_steps_as_the_trainer_runs_them():
    from workbench.finetune.settings import LoraSettings

    assert LoraSettings(max_steps=7).total_steps(100) == 7
    assert LoraSettings(batch_size=4, grad_accum=2, epochs=1.0).total_steps(74) == 10  # 19 batches
    assert LoraSettings(batch_size=4, epochs=2.0).total_steps(8) == 4
    assert LoraSettings(batch_size=4, epochs=0.1).total_steps(3) == 1


PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
       "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
       "QyNTUxOQAAACBFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAAAAJg4cJ1mOH\n"
       "AAAAC3NzaC1lZDI1NTE5AAAAIFAKE0key0body0line0three==\n"
       "-----END OPENSSH PRIVATE KEY-----")
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJvbmNhbGwiLCJyb2xlIjoiYWRtaW4ifQ."
       "Zm9vYmFyX3NpZ25hdHVyZV9vZl90aGVfand0X3Rva2VuXzEy")


def test_redaction_removes_whole_pem_blocks_and_jwts():
    text = f"pasted deploy key:\n{PEM}\nthen the header Authorization: Bearer {JWT} failed"
    assert redact(text) == ("pasted deploy key:\n[REDACTED private_key]\n"
                            "then the header Authorization: Bearer [REDACTED jwt] failed")
    assert redact(None) is None


def test_secrets_in_every_written_field_are_redacted_system_text_included(store, tmp_path):
    store.upsert_model(__import__("workbench.store", fromlist=["ModelRecord"]).ModelRecord(
        id="fake", path="/fake.gguf"))
    items = [{"key": "inc-1", "input": f"ssh failing; key was\n{PEM}\n(pasted)",
              "system": f"You triage incidents. Internal API token: {JWT}",
              "reference": {"severity": "SEV-2", "answer": "Rotate ghp_FAKE1234567890abcdefghijklmnopqrstuv now"}}]
    ds = store.save_dataset("d", items, source_path=None, sha256=None, n_rejected=0)
    result = build_examples(store, ds, val_fraction=0.0)
    (example,) = result.train
    assert result.flagged_secrets == 1
    assert example.secrets == ["github_token", "jwt", "private_key"]
    for fmt in ("openai", "anthropic"):
        written = write_jsonl(result.train, tmp_path / f"{fmt}.jsonl", fmt).read_text()
        for piece in ("BEGIN OPENSSH", "b3BlbnNzaC1rZXkt", "line0three", "END OPENSSH",
                      "eyJhbGci", "Zm9vYmFyX3Np", "ghp_FAKE"):
            assert piece not in written, (fmt, piece)
        assert "[REDACTED jwt]" in written and "[REDACTED private_key]" in written


def test_to_record_redacts_even_an_example_built_by_hand():
    example = Example("k", None, f"system with {JWT}", "prompt AKIAIOSFODNN7EXAMPLE",
                      "answer", "good", "reference")
    record = to_record(example, "anthropic")
    assert record["system"] == "system with [REDACTED jwt]"
    assert record["messages"][0]["content"] == "prompt [REDACTED aws_access_key]"


def test_training_data_exports_are_owner_only(tmp_path):
    example = Example("k", None, None, "prompt", "answer", "good", "reference")
    target = tmp_path / "data" / "train.jsonl"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o644)  # an existing, world-readable file is tightened too
    old_umask = os.umask(0o022)
    try:
        files = export_split(type("R", (), {"train": [example], "validation": []})(),
                             tmp_path / "data", "openai")
        fresh = write_jsonl([example], tmp_path / "new" / "x.jsonl")
    finally:
        os.umask(old_umask)
    for path in (files["train"], files["validation"], fresh):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700
    assert json.loads(files["train"].read_text())["messages"][0]["content"] == "prompt"
