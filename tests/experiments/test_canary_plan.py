"""The staged canary's planner on a real SQLite store: stages, stickiness, health checks, rollback.

Runs are written straight into the store here (the planner reads only stored runs); the replay of
a staged canary on the real model is tested in test_canary_replay.py.
"""

from __future__ import annotations

import json

import pytest

from workbench.experiments.canary import (CanarySchedule, plan_canary, stored_events,
                                          sync_events)
from workbench.experiments.canary_text import check_rows, summary_lines
from workbench.store import ModelRecord, Store


def _canary(store: Store, n: int, *, users: int = 0, timestamps=None, canary_users=(),
            **schedule) -> tuple:
    store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    a = store.create_variant("prod", "fake")
    b = store.create_variant("cand", "fake")
    items = [{"key": f"r{i:04d}", "input": f"request {i}", "reference": {"severity": "SEV-2"},
              "user_id": f"user{i % users}" if users else None,
              "timestamp": timestamps[i] if timestamps else None} for i in range(n)]
    ds = store.save_dataset("traffic", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("canary", ds, {"A": a.id, "B": b.id}, mode="canary",
                                  canary_users=list(canary_users),
                                  canary_schedule=CanarySchedule(**schedule).to_dict())
    return exp, {"A": a.id, "B": b.id}


def _serve(store: Store, exp, variants, *, b_error=lambda i: False, b_latency=100.0,
           b_unsafe=lambda i: False, stop_after: int | None = None):
    """Answer every block the planner asks for, as a replay would; return the last plan."""
    blocks = 0
    while True:
        plan = plan_canary(store, store.get_experiment(exp.id))
        sync_events(store, exp.id, plan.events)
        if not plan.next_block or (stop_after is not None and blocks == stop_after):
            return plan
        blocks += 1
        for item, arm in plan.next_block:
            n = int(item.key[1:])
            failed = arm == "B" and b_error(n)
            unsafe = arm == "B" and b_unsafe(n)
            store.record_run({
                "experiment_id": exp.id, "item_id": item.id, "variant_id": variants[arm],
                "arm": arm, "output": None if failed else "SEV-2: restart the pods",
                "error": "engine error" if failed else None,
                "latency_ms": b_latency if arm == "B" else 100.0,
                "fallback": arm == "A" and bool(store.rows(
                    "SELECT 1 FROM runs WHERE experiment_id = ? AND item_id = ? AND arm = 'B'",
                    [exp.id, item.id])),
                "scores": {"unsafe": ["rm -rf /"] if unsafe else []}})


def _arm_of(store: Store, exp_id: int) -> dict[str, set[str]]:
    rows = store.rows("SELECT i.key, r.arm, r.fallback FROM runs r JOIN items i ON i.id = r.item_id "
                      "WHERE r.experiment_id = ?", [exp_id])
    arms: dict[str, set[str]] = {}
    for r in rows:
        if not r["fallback"]:
            arms.setdefault(r["key"], set()).add(r["arm"])
    return arms


def test_schedule_parses_presets_and_refuses_nonsense():
    assert CanarySchedule.parse_stages("seed") == (1, 5, 10, 25, 50, 100)
    assert CanarySchedule.parse_stages("navaflow") == (10, 50, 100)
    assert CanarySchedule.parse_stages("5%, 20, 100") == (5, 20, 100)
    for bad in ("", "50,10", "0,100", "5,120", "nan"):
        with pytest.raises(ValueError):
            CanarySchedule(stages=CanarySchedule.parse_stages(bad) if bad != "" else ())
    with pytest.raises(ValueError, match="check_every"):
        CanarySchedule(check_every=0)
    with pytest.raises(ValueError, match="max_p95_ms"):
        CanarySchedule(max_p95_ms=-1)
    with pytest.raises(ValueError, match="percentages like"):
        CanarySchedule.parse_stages("ten,fifty")


def test_healthy_canary_climbs_every_stage_to_100_percent(ws):
    exp, variants = _canary(ws.store, 600, check_every=20, min_b=10)
    plan = _serve(ws.store, exp, variants)
    assert plan.finished and not plan.rolled_back and plan.stage_pct == 100.0
    advances = [(e.request_no, e.stage_pct) for e in plan.events if e.kind == "advance"]
    assert advances == [(0, 1.0), (100, 5.0), (200, 10.0), (300, 25.0), (400, 50.0), (500, 100.0)]
    assert plan.events[-1].kind == "complete" and plan.events[-1].healthy
    assert all(e.healthy for e in plan.checks) and len(plan.checks) >= 10
    # B's share follows the stages: ~0 at 1 %, everything at 100 %
    early = [s for n, s in plan.share if n <= 100]
    assert max(early) <= 0.15 and [s for n, s in plan.share if n > 500] == [1.0] * 5
    stored = stored_events(ws.store, exp.id)
    assert [e["kind"] for e in stored] == [e.kind for e in plan.events]


def test_assignment_is_sticky_per_user_as_the_share_grows(ws):
    exp, variants = _canary(ws.store, 600, users=40, check_every=20, min_b=10_000)
    _serve(ws.store, exp, variants)
    rows = ws.store.rows("SELECT i.key, i.user_id, r.arm FROM runs r JOIN items i ON i.id = r.item_id "
                         "WHERE r.experiment_id = ? ORDER BY i.id", [exp.id])
    first_b: dict[str, int] = {}
    for r in rows:
        n = int(r["key"][1:])
        if r["arm"] == "B":
            first_b.setdefault(r["user_id"], n)
        elif r["user_id"] in first_b:  # once a user is on B, every later request is too
            pytest.fail(f"{r['user_id']} went back to A at request {n}")
    # every user is on B at 100 %; some joined early, others only at the last stages
    assert len(first_b) == 40 and min(first_b.values()) < 300 < max(first_b.values())


def test_error_rate_breach_rolls_back_and_b_gets_nothing_after(ws):
    exp, variants = _canary(ws.store, 400, users=0, canary_users=(), check_every=20, min_b=5,
                            stages=(50.0, 100.0))
    plan = _serve(ws.store, exp, variants, b_error=lambda i: i % 3 == 0)
    assert plan.rolled_back and plan.finished
    rollback = plan.rollback
    assert rollback.evidence["breached"] == ["error_rate"]
    crit = rollback.evidence["criteria"]["error_rate"]
    assert crit["value"] > 0 and crit["a_value"] == 0.0 and crit["breached"]
    assert rollback.evidence["stage_pct"] == 50.0 and rollback.stage_pct == 0.0
    # the check that breached is counted once, not again as the rollback
    assert plan.checks[-1].request_no == rollback.request_no and not plan.checks[-1].healthy
    assert f"{len(plan.checks)} health check(s)" in "\n".join(summary_lines(plan))
    assert len(plan.checks) == len(check_rows(plan))
    arms = _arm_of(ws.store, exp.id)
    after = [k for k in arms if int(k[1:]) >= rollback.request_no]
    assert after and all(arms[k] == {"A"} for k in after)
    # every B error was answered by A (a fallback run)
    fallbacks = ws.store.rows("SELECT count(*) n FROM runs WHERE experiment_id = ? AND fallback = 1",
                              [exp.id])[0]["n"]
    errors = ws.store.rows("SELECT count(*) n FROM runs WHERE experiment_id = ? AND error IS NOT NULL",
                           [exp.id])[0]["n"]
    assert fallbacks == errors > 0
    kinds = [e["kind"] for e in stored_events(ws.store, exp.id)]
    assert "rollback" in kinds and kinds[-1] == "complete"
    assert not any(e.kind == "advance" for e in plan.events if e.request_no > rollback.request_no)


def test_latency_and_safety_breaches_roll_back_with_their_evidence(ws, tmp_path):
    exp, variants = _canary(ws.store, 200, check_every=10, min_b=5, stages=(100.0,),
                            max_p95_ms=500)
    plan = _serve(ws.store, exp, variants, b_latency=900.0)
    assert plan.rolled_back and plan.rollback.request_no == 10
    assert plan.rollback.evidence["breached"] == ["p95_latency_ms"]
    assert plan.rollback.evidence["criteria"]["p95_latency_ms"]["value"] == 900.0

    other = Store(tmp_path / "other.db")
    exp2, variants2 = _canary(other, 200, check_every=10, min_b=5, stages=(100.0,))
    plan2 = _serve(other, exp2, variants2, b_unsafe=lambda i: i % 10 == 0)
    assert plan2.rolled_back
    assert plan2.rollback.evidence["breached"] == ["safety_failure_rate"]
    assert plan2.rollback.evidence["criteria"]["safety_failure_rate"]["value"] == pytest.approx(0.1)
    other.close()


def test_thresholds_are_editable_and_checks_wait_for_min_b(ws):
    exp, variants = _canary(ws.store, 200, check_every=10, min_b=30, stages=(100.0,),
                            max_p95_ms=1000)
    plan = _serve(ws.store, exp, variants, b_latency=900.0)
    assert not plan.rolled_back and plan.stage_pct == 100.0
    assert plan.checks[0].request_no == 30 and plan.checks[0].evidence["n_b"] == 30


def test_canary_users_are_on_b_until_the_rollback(ws):
    exp, variants = _canary(ws.store, 300, users=10, canary_users=("user3",), check_every=20,
                            min_b=20, stages=(1.0,))
    plan = _serve(ws.store, exp, variants, b_error=lambda i: i >= 100)
    assert plan.rolled_back
    arms = _arm_of(ws.store, exp.id)
    for key, got in arms.items():
        n = int(key[1:])
        if n % 10 == 3:
            assert got == ({"B"} if n < plan.rollback.request_no else {"A"}), key


def test_items_are_served_in_timestamp_order(ws):
    stamps = [f"2026-11-{30 - i // 10:02d}T12:{i % 60:02d}:00+00:00" for i in range(60)]
    exp, variants = _canary(ws.store, 60, timestamps=stamps, check_every=10, min_b=1000)
    plan = plan_canary(ws.store, exp)
    first = [item.key for item, _ in plan.next_block]
    assert first == sorted(first, key=lambda k: stamps[int(k[1:])])[:10]
    assert first[0] == "r0050"  # the oldest day comes first


def test_a_resumed_plan_continues_where_the_stored_runs_end(ws):
    exp, variants = _canary(ws.store, 100, check_every=10, min_b=5)
    partial = _serve(ws.store, exp, variants, stop_after=3)
    assert partial.served == 30 and len(partial.next_block) == 10
    assert [i.key for i, _ in partial.next_block][0] == "r0030"
    full = _serve(ws.store, exp, variants)
    assert full.finished and full.served == 100
    assert ws.store.run_count(exp.id) == 100
    # the stored events are those of a plan from scratch
    assert [json.dumps(e.evidence, sort_keys=True) for e in full.events] == [
        json.dumps(e["evidence"], sort_keys=True) for e in stored_events(ws.store, exp.id)]
