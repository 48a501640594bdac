"""`workbench logs import|list`, `monitor`, `alerts list`, and the baseline at promotion."""

from __future__ import annotations

import json

import pytest

from support import experiment_with_runs, write_jsonl
from workbench.cli import main


def logs(n, *, latency=1000.0, down_every=3, unsafe_every=10):
    return [{"request_id": f"r{i}", "timestamp": 1796047331 + i, "input": f"request {i}",
             "response": "Roll back.", "model": "prod-model", "latency_ms": latency,
             "feedback": -1 if i % down_every == 0 else 1,
             "safety_flags": ["pii"] if i % unsafe_every == 0 else []} for i in range(n)]


@pytest.fixture
def home(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    write_jsonl(root / "prod.jsonl", logs(60) + ['{"broken'])
    return root


def run(capsys, home, *argv):
    code = main([*argv, "--workspace", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def test_logs_import_reports_bad_lines_and_lists(capsys, home):
    code, out, _ = run(capsys, home, "logs", "import", str(home / "prod.jsonl"))
    assert code == 1  # like `datasets import`: a bad line makes the exit status 1
    assert "prod.jsonl: line 61: invalid JSON" in out
    assert "imported 60 logged request(s) into dataset 'prod'" in out
    code, out, _ = run(capsys, home, "logs", "list", "--json")
    assert code == 0 and json.loads(out)[0]["requests"] == 60


def test_monitor_prints_the_window_and_raises_alerts(capsys, home):
    run(capsys, home, "logs", "import", str(home / "prod.jsonl"))
    code, out, _ = run(capsys, home, "monitor", "prod", "--window", "30")
    assert code == 0
    assert "logs:prod" in out and "p95 latency" in out and "1000 ms" in out
    assert "alert critical: safety-failure rate 10.0% > 5.0% on logs:prod" in out
    assert "alert warning: p95 latency 1000 ms > 800 ms" in out
    code, out, _ = run(capsys, home, "monitor", "prod", "--window", "30", "--json")
    data = json.loads(out)
    assert data["current"]["requests"] == 30 and data["previous"]["requests"] == 30
    assert all(a["throttled"] for a in data["alerts"]) and len(data["alerts"]) == 3
    code, out, _ = run(capsys, home, "alerts", "list")
    assert code == 0 and "2 safety alerts, first: safety-failure rate" in out
    code, out, _ = run(capsys, home, "alerts", "list", "--json", "--all")
    data = json.loads(out)
    assert len(data["alerts"]) == 6 and {g["count"] for g in data["groups"]} == {2}


def test_monitor_baseline_set_and_show(capsys, home):
    run(capsys, home, "logs", "import", str(home / "prod.jsonl"))
    code, out, _ = run(capsys, home, "monitor", "logs:prod", "--baseline", "show")
    assert code == 0 and "no baseline recorded for logs:prod" in out
    code, out, _ = run(capsys, home, "monitor", "logs:prod", "--baseline", "set", "--no-alerts")
    assert code == 0 and "(manual)" in out
    code, out, _ = run(capsys, home, "monitor", "logs:prod", "--baseline", "show", "--json")
    assert json.loads(out)["metrics"]["p95_latency_ms"] == 1000.0
    code, out, _ = run(capsys, home, "alerts", "list", "--json")
    assert json.loads(out) == {"groups": []}  # --no-alerts and --baseline show store none


@pytest.mark.parametrize("argv,fragment", [
    (("monitor", "nothing-here"), "nothing to monitor named 'nothing-here'"),
    (("monitor", "prod", "--window", "0"), "--window: must be >= 1"),
    (("monitor", "prod", "--baseline", "maybe"), "invalid choice"),
    (("logs", "import", "missing.jsonl"), "no such file"),
])
def test_mistakes_are_one_line_errors(capsys, home, argv, fragment):
    code, out, err = run(capsys, home, *argv)
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err


def test_complete_with_a_winner_records_its_baseline(capsys, home):
    from workbench.workspace import open_workspace

    opened = open_workspace(home)
    exp = experiment_with_runs(opened.store, 4, name="ab")
    opened.close()
    code, out, _ = run(capsys, home, "experiments", "complete", str(exp.id), "--winner", "B")
    assert code == 0 and "monitoring baseline recorded for variant:ab-cand" in out
    code, out, _ = run(capsys, home, "monitor", "variant:ab-cand", "--baseline", "show", "--json")
    baseline = json.loads(out)
    assert baseline["source"] == f"promoted in experiment {exp.id} (arm B)"
    assert baseline["metrics"]["requests"] == 4
