"""A staged canary replayed on the real bundled model, through the CLI: a rollback, and a rollout
that reaches 100 %. Health evidence comes from real runs (latencies, errors) in a real SQLite file."""

from __future__ import annotations

import json

import pytest

from support import incident, write_jsonl
from workbench.cli import main
from workbench.experiments.canary import plan_canary, stored_events
from workbench.models.registry import BUNDLED_ID

pytestmark = pytest.mark.slow


def _replay(ws, tmp_path, capsys, n_items: int, *options: str) -> tuple[int, object]:
    stamps = [f"2026-11-{1 + i // 8:02d}T10:{i % 60:02d}:00Z" for i in range(n_items)]
    records = [incident(i, user=f"u-{i % 5}", timestamp=stamps[n_items - 1 - i])
               for i in range(n_items)]  # the file is newest first; the canary runs oldest first
    path = write_jsonl(tmp_path / "traffic.jsonl", records)
    ws.store.create_variant("prod", BUNDLED_ID, max_tokens=3, system_prompt="Be brief.")
    ws.store.create_variant("cand", BUNDLED_ID, max_tokens=3)
    root = str(ws.workspace.root)
    code = main(["--workspace", root, "replay", str(path), "--a", "prod", "--b", "cand",
                 "--mode", "canary", "--concurrency", "2", *options])
    out = capsys.readouterr().out
    exp = ws.store.list_experiments()[-1]
    assert exp.mode == "canary" and exp.canary_schedule
    return code, (exp, out)


def rollback_stage(plan) -> float:
    return plan.rollback.evidence["stage_pct"]


def test_a_canary_whose_b_breaks_the_latency_limit_rolls_back(ws, tmp_path, capsys):
    code, (exp, out) = _replay(ws, tmp_path, capsys, 16, "--schedule", "50,100",
                               "--check-every", "4", "--min-b", "2", "--max-p95-ms", "1")
    assert code == 0
    plan = plan_canary(ws.store, exp)
    assert plan.finished and plan.rolled_back and rollback_stage(plan) in (50.0, 100.0)
    rollback = plan.rollback
    assert rollback.evidence["breached"] == ["p95_latency_ms"]
    assert rollback.evidence["criteria"]["p95_latency_ms"]["value"] > 1
    # B got no traffic after the rollback: every later item has exactly one run, on A
    order = {item.id: n for n, item in enumerate(
        sorted(ws.store.items(exp.dataset_id), key=lambda i: i.timestamp))}
    runs = ws.store.runs(exp.id)
    late = [r for r in runs if order[r["item_id"]] >= rollback.request_no]
    assert late and {r["arm"] for r in late} == {"A"}
    assert any(r["arm"] == "B" for r in runs if order[r["item_id"]] < rollback.request_no)
    events = stored_events(ws.store, exp.id)
    stored_rollback = [e for e in events if e["kind"] == "rollback"]
    assert len(stored_rollback) == 1 and stored_rollback[0]["evidence"]["breached"] == [
        "p95_latency_ms"]
    assert "ROLLBACK after request" in out and "B p95" in out
    # `workbench canary` shows it again, also as JSON
    assert main(["--workspace", str(ws.workspace.root), "canary", str(exp.id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rolled_back"] and shown["served"] == 16
    assert [e["kind"] for e in shown["events"]] == [e["kind"] for e in events]


def test_a_healthy_canary_reaches_100_percent(ws, tmp_path, capsys):
    code, (exp, out) = _replay(ws, tmp_path, capsys, 12, "--schedule", "25,50,100",
                               "--check-every", "4", "--min-b", "1", "--max-p95-ms", "600000")
    assert code == 0
    plan = plan_canary(ws.store, exp)
    assert plan.finished and not plan.rolled_back and plan.stage_pct == 100.0
    assert [e.stage_pct for e in plan.events if e.kind == "advance"] == [25.0, 50.0, 100.0]
    assert plan.share[-1] == (12, 1.0)  # the last stage sends everything to B
    assert all(e.healthy for e in plan.checks) and plan.checks
    assert ws.store.run_count(exp.id) == 12  # one request per item, no shadow copies
    assert "reached 100%" in out


@pytest.mark.parametrize("options, message", [
    (["--mode", "split", "--schedule", "seed"], "--schedule and --stage-requests are for --mode canary"),
    (["--mode", "canary", "--weight-b", "0.3"], "--weight-b is for a fixed share"),
    (["--mode", "canary", "--schedule", "50,10"], "canary stages must rise"),
    (["--mode", "canary", "--schedule", "ten"], "give percentages like"),
])
def test_schedule_mistakes_are_one_line_errors(ws, tmp_path, capsys, options, message):
    path = write_jsonl(tmp_path / "d.jsonl", [incident(i) for i in range(3)])
    ws.store.create_variant("prod", BUNDLED_ID, max_tokens=3)
    ws.store.create_variant("cand", BUNDLED_ID, max_tokens=3)
    code = main(["--workspace", str(ws.workspace.root), "replay", str(path), "--a", "prod",
                 "--b", "cand", *options])
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err
    assert ws.store.list_experiments() == []
