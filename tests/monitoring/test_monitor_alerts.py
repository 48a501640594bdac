"""Rolling-window monitor, baselines, and alerts with a controlled clock (nothing sleeps)."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from support import experiment_with_runs, write_jsonl
from workbench.monitoring.alerts import (AlertRule, evaluate_alerts, group_alerts, list_alerts,
                                         monitor_and_alert)
from workbench.monitoring.logs import import_logs
from workbench.monitoring.monitor import (get_baseline, monitor, record_promotion_baseline,
                                          resolve_target, set_baseline)
from workbench.store import NotFound, Store

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def log_lines(n, *, start=0, latency=lambda i: 100.0, feedback=lambda i: 1, unsafe=lambda i: False,
              error=lambda i: False, model="prod-model"):
    return [{"request_id": f"r{start + i}", "timestamp": (T0 + timedelta(seconds=start + i)).isoformat(),
             "input": f"request {start + i}", "model": model, "latency_ms": latency(start + i),
             "feedback": feedback(start + i),
             "response": None if error(start + i) else "Roll back the deploy.",
             "error": "HTTP 500" if error(start + i) else None,
             "safety_flags": ["self_harm"] if unsafe(start + i) else []} for i in range(n)]


def load(store, tmp_path, lines, name="prod"):
    return import_logs(store, write_jsonl(tmp_path / f"{name}.jsonl", lines))


def test_window_figures_match_a_direct_computation(store, tmp_path):
    rng = np.random.default_rng(7)
    lat = rng.lognormal(5.5, 0.6, 300)
    lines = log_lines(300, latency=lambda i: float(lat[i]), feedback=lambda i: [-1, 0, 1, 1][i % 4],
                      unsafe=lambda i: i % 25 == 0, error=lambda i: i % 50 == 1)
    # the file is shuffled: the monitor orders requests by their timestamp, not by line
    order = rng.permutation(300)
    load(store, tmp_path, [lines[k] for k in order])
    report = monitor(store, "prod", window=100)
    assert report.target == "logs:prod" and report.total == 300
    cur = slice(200, 300)
    ok = np.array([lat[i] for i in range(200, 300) if i % 50 != 1])
    assert report.current["requests"] == 100
    assert report.current["p95_latency_ms"] == pytest.approx(np.percentile(ok, 95))
    assert report.current["avg_latency_ms"] == pytest.approx(ok.mean())
    fb = np.array([[-1, 0, 1, 1][i % 4] for i in range(300)])[cur]
    assert report.current["thumbs_down_rate"] == pytest.approx((fb == -1).sum() / (fb != 0).sum())
    assert report.current["thumbs_up_rate"] == pytest.approx((fb == 1).sum() / (fb != 0).sum())
    assert report.current["safety_failure_rate"] == pytest.approx(4 / 100)
    assert report.current["error_rate"] == pytest.approx(2 / 100)
    assert report.previous["requests"] == 100  # 100..199, the window before


def test_trend_against_the_previous_window_and_a_baseline(store, tmp_path):
    lines = log_lines(50, latency=lambda i: 100.0) + log_lines(50, start=50, latency=lambda i: 300.0)
    load(store, tmp_path, lines)
    first = monitor(store, "logs:prod", window=50)
    assert first.trend["avg_latency_ms"]["change"] == pytest.approx(200.0)
    assert first.trend["avg_latency_ms"]["vs_previous"] == "worse"
    assert first.trend["thumbs_up_rate"]["vs_previous"] == "same"
    assert first.baseline is None and first.trend["p95_latency_ms"]["baseline"] is None
    set_baseline(store, "logs:prod", {"avg_latency_ms": 400.0, "thumbs_up_rate": 0.5}, window=50,
                 now=T0)
    again = monitor(store, "logs:prod", window=50)
    assert again.baseline["created_at"] == "2026-12-01T09:00:00.000+00:00"
    assert again.trend["avg_latency_ms"]["change_vs_baseline"] == pytest.approx(-100.0)
    assert again.trend["avg_latency_ms"]["vs_baseline"] == "better"
    assert again.trend["thumbs_up_rate"]["vs_baseline"] == "better"


def test_targets_resolve_to_logs_variants_and_models(store, tmp_path):
    exp = experiment_with_runs(store, 5, name="ab")
    load(store, tmp_path, log_lines(3, model="fake"))
    assert resolve_target(store, "prod").key == "logs:prod"
    assert resolve_target(store, "ab-cand").key == "variant:ab-cand"
    assert monitor(store, "ab-cand").total == 5
    # a registered model: runs of its variants (10) plus logged requests naming it (3)
    assert monitor(store, "model:fake").total == 13
    with pytest.raises(NotFound, match="nothing to monitor"):
        resolve_target(store, "nope")
    assert exp.id


def test_promotion_records_the_winner_baseline(store):
    exp = experiment_with_runs(store, 6, name="ab")
    store.db.execute("UPDATE runs SET latency_ms = 250 WHERE arm = 'B'")
    baseline = record_promotion_baseline(store, exp.id, "B", now=T0)
    assert baseline["source"] == f"promoted in experiment {exp.id} (arm B)"
    assert baseline["metrics"]["requests"] == 6
    assert baseline["metrics"]["p95_latency_ms"] == 250.0
    assert get_baseline(store, "variant:ab-cand") == baseline
    assert monitor(store, "variant:ab-cand").trend["p95_latency_ms"]["vs_baseline"] == "same"


def breaking_logs(n=100):
    """p95 ~ 1 s, 30 % thumbs down, 10 % safety failures: all three seed rules fire."""
    return log_lines(n, latency=lambda i: 1000.0, feedback=lambda i: -1 if i % 10 < 3 else 1,
                     unsafe=lambda i: i % 10 == 0)


def test_the_seed_rules_fire_with_their_severities(store, tmp_path):
    load(store, tmp_path, breaking_logs())
    report, alerts = monitor_and_alert(store, "prod", window=100, now=T0)
    assert {(a.kind, a.severity) for a in alerts} == {
        ("latency", "warning"), ("thumbs_down", "warning"), ("safety", "critical")}
    assert not any(a.throttled for a in alerts)
    safety = next(a for a in alerts if a.kind == "safety")
    assert safety.message == "safety-failure rate 10.0% > 5.0% on logs:prod (last 100 requests)"
    assert report.current["p95_latency_ms"] == 1000.0


def test_healthy_traffic_raises_nothing(store, tmp_path):
    load(store, tmp_path, log_lines(100, latency=lambda i: 200.0, unsafe=lambda i: i == 3))
    assert monitor_and_alert(store, "prod", window=100, now=T0)[1] == []
    assert list_alerts(store) == []


def test_too_few_samples_do_not_alert(store, tmp_path):
    load(store, tmp_path, breaking_logs(10))
    assert monitor_and_alert(store, "prod", now=T0)[1] == []
    assert {a.kind for a in monitor_and_alert(store, "prod", now=T0, min_samples=5)[1]} == {
        "latency", "thumbs_down", "safety"}


def test_throttled_per_type_and_target_counted_not_dropped(store, tmp_path):
    load(store, tmp_path, breaking_logs())
    report = monitor(store, "prod", window=100)
    latency_only = [AlertRule("latency", "p95_latency_ms", 800.0, "warning", "latency_n",
                              "p95 latency", "ms")]
    moments = [T0 + timedelta(minutes=m) for m in (0, 5, 30, 59, 61, 62, 125)]
    flags = [evaluate_alerts(store, report, now=t, rules=latency_only)[0].throttled
             for t in moments]
    # raised at 0; throttled within the hour; raised again at 61 (60 min after 0), then at 125
    assert flags == [False, True, True, True, False, True, False]
    stored = list_alerts(store)
    assert len(stored) == 7 and sum(a.throttled for a in stored) == 4
    # another target is throttled on its own
    other = monitor(store, "prod", window=100)
    other.target = "model:other"
    assert evaluate_alerts(store, other, now=T0 + timedelta(minutes=1), rules=latency_only)[0].throttled is False


def test_alerts_are_grouped_with_the_first_one(store, tmp_path):
    load(store, tmp_path, breaking_logs())
    for minute in range(12):
        monitor_and_alert(store, "prod", window=100, now=T0 + timedelta(minutes=minute))
    groups = group_alerts(list_alerts(store))
    assert [g["kind"] for g in groups][0] == "safety"  # critical first
    latency = next(g for g in groups if g["kind"] == "latency")
    assert (latency["count"], latency["throttled"]) == (12, 11)
    assert latency["summary"] == ("12 latency alerts, first: p95 latency 1000 ms > 800 ms on "
                                  "logs:prod (last 100 requests) at 2026-12-01T09:00:00.000+00:00")
    assert latency["last_at"] == "2026-12-01T09:11:00.000+00:00"
    assert len(list_alerts(store, include_throttled=False)) == 3


def test_a_read_only_workspace_monitors_without_storing_alerts(store, tmp_path):
    load(store, tmp_path, breaking_logs())
    with Store(store.path, read_only=True) as ro:
        report, alerts = monitor_and_alert(ro, "prod", window=100, now=T0)
    assert report.current["requests"] == 100 and alerts == []
