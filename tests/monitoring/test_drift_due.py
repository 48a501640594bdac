"""`workbench drift schedule|list|run-due`: only what is due runs; cron-friendly exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from support import REPO, write_jsonl
from workbench.cli import main
from workbench.monitoring.drift_schedule import (due_schedules, mark_run, parse_every,
                                                 save_schedule)
from workbench.store import Store

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def test_parse_every():
    assert parse_every("24h") == 24 and parse_every("2d") == 48 and parse_every("1w") == 168
    assert parse_every("30m") == 0.5 and parse_every("6") == 6
    for bad in ("0h", "-1d", "soon", "nanh"):
        with pytest.raises(ValueError):
            parse_every(bad)


def test_due_is_never_run_or_older_than_the_period(tmp_path):
    with Store(tmp_path / "w.db") as store:
        daily = save_schedule(store, "data", "logs:prod", "train", 24, {"recent": "prod"}, now=T0)
        weekly = save_schedule(store, "concept", "variant:v", "ds", 168, now=T0)
        assert [s.id for s in due_schedules(store, T0)] == [daily.id, weekly.id]
        mark_run(store, daily.id, T0)
        mark_run(store, weekly.id, T0)
        assert due_schedules(store, T0 + timedelta(hours=23)) == []
        assert [s.id for s in due_schedules(store, T0 + timedelta(hours=24))] == [daily.id]
        assert len(due_schedules(store, T0 + timedelta(days=7))) == 2
        again = save_schedule(store, "data", "logs:prod", "train", 12, {"recent": "prod"})
        assert again.id == daily.id and again.every_hours == 12  # updated, not added


def _dataset(path, source, rows):
    lines = [json.loads(line) for line in (REPO / "datasets" / source).read_text().splitlines()
             if line.strip()]
    return write_jsonl(path, [lines[k] for k in rows])


def test_run_due_runs_only_what_is_due(ws, capsys):
    home = str(ws.workspace.root)
    for name, source, rows in (("ref", "devops_incidents.jsonl", range(0, 8, 2)),
                               ("recent", "devops_incidents.jsonl", range(1, 8, 2)),
                               ("other", "emergency_response.jsonl", range(4))):
        main(["datasets", "import", str(_dataset(ws.workspace.root / f"{name}.jsonl", source,
                                                 rows)), "--workspace", home])
    common = ["--reference", "ref", "--max-tokens", "24", "--permutations", "99",
              "--workspace", home]
    assert main(["drift", "schedule", "data", "--recent", "recent", "--every", "24h", *common]) == 0
    assert main(["drift", "schedule", "data", "--recent", "other", "--every", "1w", *common]) == 0
    capsys.readouterr()
    with Store(ws.store.path) as store:  # the weekly one ran yesterday: not due today
        weekly = [s for s in due_schedules(store, T0) if s.target == "dataset:other"][0]
        mark_run(store, weekly.id, T0 - timedelta(days=1))
    code = main(["drift", "run-due", "--now", "2026-12-01T09:00:00Z", "--json",
                 "--workspace", home])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["due"] == 1 and out["failed"] == 0
    assert [r["target"] for r in out["results"]] == ["dataset:recent"]
    checks = ws.store.rows("SELECT kind, target, created_at FROM drift_checks")
    assert checks == [{"kind": "data", "target": "dataset:recent",
                       "created_at": "2026-12-01T09:00:00.000+00:00"}]
    code = main(["drift", "run-due", "--now", "2026-12-01T10:00:00Z", "--workspace", home])
    assert code == 0 and "nothing due" in capsys.readouterr().out
    assert main(["drift", "list", "--workspace", home]) == 0
    listing = capsys.readouterr().out
    assert "dataset:recent" in listing and "dataset:other" in listing and "24 h" in listing


def test_run_due_fails_loudly_when_a_check_cannot_run(ws, capsys):
    home = str(ws.workspace.root)
    with Store(ws.store.path) as store:
        save_schedule(store, "data", "logs:gone", "no-such-dataset", 1, {"recent": "gone"})
    code = main(["drift", "run-due", "--workspace", home])
    assert code == 1 and "no dataset 'no-such-dataset'" in capsys.readouterr().err
