"""Concept drift: paired accuracy against the baseline, storage, alerts; and on the real model."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from support import write_jsonl
from workbench.cli import main
from workbench.monitoring.concept_drift import (ArmOutcomes, compare, find_baseline,
                                                record_concept_check, run_outcomes)
from workbench.store import ModelRecord

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def outcomes(pattern: str) -> dict[str, int]:
    return {f"inc-{k:03d}": int(c) for k, c in enumerate(pattern)}


def test_compare_pairs_on_common_items_and_needs_both_drop_and_significance():
    base, now = outcomes("1111111111"), outcomes("0000000000")
    result = compare(base, now)
    assert result.drop_points == pytest.approx(100.0) and result.n_paired == 10
    assert result.p_value == pytest.approx(2 * 0.5 ** 10) and result.drifted
    few = compare(outcomes("1100"), outcomes("0000"))  # 50 points, but 2 discordant items
    assert few.drop_points == pytest.approx(50.0) and few.p_value == pytest.approx(0.5)
    assert not few.drifted
    small = compare(outcomes("1" * 10 + "0" * 30), outcomes("0" * 40), threshold=30)
    assert small.drop_points == pytest.approx(25.0) and not small.drifted  # below 30 points
    extra = compare(outcomes("11"), {**outcomes("11"), "other": 0})  # "other" has no pair
    assert extra.n_paired == 2 and extra.drop_points == 0.0
    with pytest.raises(ValueError):
        compare({"a": 1}, {"b": 1})


def arm(pattern: str, **kw) -> ArmOutcomes:
    return ArmOutcomes("test", outcomes(pattern), **kw)


def test_first_check_is_the_baseline_then_checks_pair_with_it_and_alert(store):
    first = record_concept_check(store, target="variant:prod", reference="ds",
                                 current=arm("1111111100"), now=T0)
    assert first.baseline_role == "first_check" and first.comparison is None and not first.drifted
    same = record_concept_check(store, target="variant:prod", reference="ds",
                                current=arm("1111111100"), now=T0 + timedelta(hours=1))
    assert same.baseline["check_id"] == first.id and same.drop_points == 0.0
    assert not same.drifted and same.alert is None
    bad = record_concept_check(store, target="variant:prod", reference="ds",
                               current=arm("0000000000"), now=T0 + timedelta(hours=2))
    assert bad.drifted and bad.drop_points == pytest.approx(80.0)
    assert bad.alert.severity == "critical" and bad.alert.kind == "concept_drift"
    assert not bad.alert.throttled
    again = record_concept_check(store, target="variant:prod", reference="ds",
                                 current=arm("0000000000"),
                                 now=T0 + timedelta(hours=2, minutes=30))
    assert again.alert.throttled  # the same kind and target within the hour
    row = store.rows("SELECT * FROM drift_checks WHERE id = ?", [bad.id])[0]
    assert row["kind"] == "concept" and row["target"] == "variant:prod" and row["drifted"] == 1
    assert row["statistic"] == pytest.approx(80.0) and row["threshold"] == 15.0
    details = json.loads(row["details"])
    assert details["current"]["accuracy"] == 0.0 and details["outcomes"]["inc-000"] == 0
    # an explicit baseline replaces the first one
    reset = record_concept_check(store, target="variant:prod", reference="ds",
                                 current=arm("0000000000"), set_baseline=True,
                                 now=T0 + timedelta(hours=3))
    assert reset.baseline_role == "set"
    assert find_baseline(store, "variant:prod", "ds", variant_id=None,
                         dataset_id=None).check_id == reset.id


def test_baseline_of_another_target_and_its_errors(store):
    record_concept_check(store, target="variant:prod", reference="ds", current=arm("1111111111"),
                         now=T0)
    worse = record_concept_check(store, target="variant:cand", reference="ds",
                                 current=arm("0000000000"), baseline_of="variant:prod", now=T0)
    assert worse.drifted and worse.baseline["owner"] == "variant:prod"
    with pytest.raises(ValueError, match="has no concept baseline"):
        record_concept_check(store, target="variant:cand", reference="other",
                             current=arm("0"), baseline_of="variant:prod")
    with pytest.raises(ValueError, match="reference severity"):
        record_concept_check(store, target="variant:x", reference="ds",
                             current=ArmOutcomes("t", {}, uncounted=3))


def test_the_winner_of_an_experiment_on_the_dataset_is_the_baseline(store):
    store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    prod = store.create_variant("prod", "fake")
    cand = store.create_variant("cand", "fake")
    items = [{"key": f"inc-{k:03d}", "input": f"incident {k}",
              "reference": {"severity": "SEV-1"} if k < 8 else {}} for k in range(10)]
    ds = store.save_dataset("ds", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("ab", ds, {"A": prod.id, "B": cand.id})
    for item in store.items(ds):
        for arm_name, variant in (("A", prod), ("B", cand)):
            store.record_run({"experiment_id": exp.id, "item_id": item.id,
                              "variant_id": variant.id, "arm": arm_name, "output": "x",
                              "severity_ok": 1 if arm_name == "B" else 0,
                              "error": "boom" if item.key == "inc-001" else None})
    b = run_outcomes(store, exp.id, cand.id)
    assert b.n == 8 and b.uncounted == 2 and b.failed == 1 and b.accuracy == 1.0
    assert find_baseline(store, "variant:cand", "ds", variant_id=cand.id, dataset_id=ds) is None
    store.set_experiment(exp.id, status="completed", winner="B")
    found = find_baseline(store, "variant:cand", "ds", variant_id=cand.id, dataset_id=ds)
    assert found.kind == "promotion" and found.experiment_id == exp.id
    assert sum(found.outcomes.values()) == 8


# -- the real model --------------------------------------------------------------------------
SCHEMA = {"type": "object", "properties": {"severity": {"type": "string", "enum": [
    "SEV-0", "SEV-1", "SEV-2", "SEV-3"]}}, "required": ["severity"]}
SERVICES = ["checkout", "search", "login", "billing", "payments", "uploads", "email", "api"]


def easy_incidents(n: int) -> list[dict]:
    """Incidents whose text states the declared severity: the deployed variant gets them right."""
    return [{"id": f"easy-{k:02d}", "input": f"The {SERVICES[k % 8]} service is failing. The "
             f"incident commander declared it SEV-{k % 4}. Severity: SEV-{k % 4}.",
             "reference": {"severity": f"SEV-{k % 4}"}, "category": "declared"}
            for k in range(n)]


def test_concept_drift_on_the_real_model(tmp_path, capsys, ws):
    home = ws.workspace.root
    (home / "schema.json").write_text(json.dumps(SCHEMA))
    write_jsonl(home / "easy.jsonl", easy_incidents(8))
    system = "Copy the declared severity of the incident. Answer in JSON."
    assert main(["datasets", "import", str(home / "easy.jsonl"), "--workspace", str(home)]) == 0
    for name, tokens in (("deployed", "16"), ("degraded", "1")):
        assert main(["variants", "add", name, "--model", "smollm2-135m-instruct-q4_1",
                     "--system", system, "--max-tokens", tokens, "--json-schema",
                     str(home / "schema.json"), "--workspace", str(home)]) == 0
    capsys.readouterr()

    def drift(*argv):
        code = main(["drift", "concept", *argv, "--reference", "easy", "--json",
                     "--workspace", str(home)])
        out, err = capsys.readouterr()
        assert code == 0, err
        return json.loads(out)

    first = drift("deployed")
    assert first["baseline_role"] == "first_check" and first["current"]["n"] == 8
    assert first["current"]["accuracy"] >= 0.75, first
    rerun = drift("deployed")  # temperature 0, same seed: the same answers
    assert rerun["comparison"]["drop_points"] == 0.0 and not rerun["drifted"]
    degraded = drift("degraded", "--baseline-of", "deployed")
    assert degraded["drifted"] and degraded["comparison"]["drop_points"] > 15
    assert degraded["baseline"]["owner"] == "variant:deployed"
    assert degraded["alert"]["severity"] == "critical"
    kinds = [r["kind"] for r in ws.store.rows("SELECT kind FROM alerts")]
    assert kinds == ["concept_drift"]
    names = [e.name for e in ws.store.list_experiments()]
    assert all(n.startswith("drift check: concept ") for n in names) and len(names) == 3
