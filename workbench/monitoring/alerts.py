"""Alerts on a monitored window: rules with severities, stored in ``alerts``, throttled, grouped.

Default rules (the seed's): p95 latency > 800 ms is a *warning*, thumbs-down > 20 % of the
requests with feedback a *warning*, safety failures > 5 % of requests *critical*; error rate > 5 %
is an *info* (the workbench's own default). A rule is judged only when its window holds at least
``min_samples`` values (default 20: a p95 of three requests is noise).

Throttling is per (alert kind, target): after an alert is raised, the same kind on the same target
within ``throttle_s`` (default one hour) is still stored and counted, with ``throttled = 1``, but
not raised again (no notification). :func:`group_alerts` folds them into one line per kind and
target: "12 latency alerts, first: ...". Drift checks raise theirs with :func:`raise_alert`
(kinds ``concept_drift``, critical, and ``data_drift``, warning), throttled the same way.

Every function takes ``now`` so tests (and the UI) control the clock; nothing sleeps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from ..store import Store
from .monitor import DEFAULT_WINDOW, MonitorReport, iso, monitor

SEVERITIES = ("critical", "warning", "info")
DEFAULT_THROTTLE_S = 3600.0
MIN_SAMPLES = 20


@dataclass(frozen=True)
class AlertRule:
    kind: str            # what is alerted on; throttling and grouping go by it
    metric: str          # a MonitorReport.current key
    threshold: float     # alert when the metric is above it
    severity: str        # critical | warning | info
    count: str           # the current-window key that says how many values the metric has
    label: str           # "p95 latency"
    unit: str = "%"      # "%": a rate shown as a percentage; "ms"

    def shown(self, value: float) -> str:
        return f"{value:.0f} ms" if self.unit == "ms" else f"{value * 100:.1f}%"


DEFAULT_RULES = (
    AlertRule("latency", "p95_latency_ms", 800.0, "warning", "latency_n", "p95 latency", "ms"),
    AlertRule("thumbs_down", "thumbs_down_rate", 0.20, "warning", "feedback_n", "thumbs-down rate"),
    AlertRule("safety", "safety_failure_rate", 0.05, "critical", "requests", "safety-failure rate"),
    AlertRule("error_rate", "error_rate", 0.05, "info", "requests", "error rate"),
)


@dataclass
class Alert:
    id: int
    kind: str
    target: str
    severity: str
    message: str
    value: float
    threshold: float
    throttled: bool
    created_at: str

    def to_dict(self) -> dict:
        return asdict(self)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def raise_alert(store: Store, *, kind: str, target: str, severity: str, message: str,
                value: float, threshold: float, source: str = "monitor",
                details: dict | None = None, now: datetime | None = None,
                throttle_s: float = DEFAULT_THROTTLE_S) -> Alert:
    """Store one alert of ``kind`` on ``target``; it is ``throttled`` (counted, not raised again)
    when one of that kind and target was raised less than ``throttle_s`` before ``now``."""
    if severity not in SEVERITIES:
        raise ValueError(f"alert severity must be one of {', '.join(SEVERITIES)}, "
                         f"not {severity!r}")
    now = now or datetime.now(timezone.utc)
    stamp = iso(now)
    since = iso(now - timedelta(seconds=throttle_s))
    with store.db.atomic():
        raised = store.rows(
            "SELECT created_at FROM alerts WHERE kind = ? AND target = ? AND throttled = 0 "
            "AND created_at > ? AND created_at <= ? ORDER BY created_at DESC LIMIT 1",
            [kind, target, since, stamp])
        details = {**(details or {}), "raised_at": raised[0]["created_at"] if raised else None}
        alert_id = store.db["alerts"].insert({
            "source": source, "level": severity, "message": message, "created_at": stamp,
            "kind": kind, "target": target, "value": float(value), "threshold": threshold,
            "throttled": int(bool(raised)), "details": json.dumps(details)}).last_pk
    return Alert(alert_id, kind, target, severity, message, float(value), threshold,
                 bool(raised), stamp)


def evaluate_alerts(store: Store, report: MonitorReport, *, now: datetime | None = None,
                    rules=DEFAULT_RULES, throttle_s: float = DEFAULT_THROTTLE_S,
                    min_samples: int = MIN_SAMPLES) -> list[Alert]:
    """Store an alert for every rule the report's current window breaks; return them (those
    with ``throttled`` set were counted but not raised: one of that kind and target was raised
    less than ``throttle_s`` ago)."""
    for rule in rules:
        if rule.severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {', '.join(SEVERITIES)}, "
                             f"not {rule.severity!r}")
    now = now or datetime.now(timezone.utc)
    created = []
    with store.db.atomic():
        for rule in rules:
            value = report.current.get(rule.metric)
            if value is None or report.current.get(rule.count, 0) < min_samples \
                    or value <= rule.threshold:
                continue
            message = (f"{rule.label} {rule.shown(value)} > {rule.shown(rule.threshold)} on "
                       f"{report.target} (last {report.current.get('requests')} requests)")
            details = {"window": report.window, "metric": rule.metric,
                       "samples": report.current.get(rule.count)}
            created.append(raise_alert(
                store, kind=rule.kind, target=report.target, severity=rule.severity,
                message=message, value=value, threshold=rule.threshold, details=details,
                now=now, throttle_s=throttle_s))
    return created


def monitor_and_alert(store: Store, ref: str, *, window: int = DEFAULT_WINDOW,
                      now: datetime | None = None, **options) -> tuple[MonitorReport, list[Alert]]:
    """What ``workbench monitor`` does (and a screen can call): the report and its alerts
    (none stored on a read-only workspace)."""
    report = monitor(store, ref, window=window)
    if store.read_only:
        return report, []
    return report, evaluate_alerts(store, report, now=now, **options)


def list_alerts(store: Store, *, target: str | None = None, limit: int | None = None,
                include_throttled: bool = True) -> list[Alert]:
    """Stored monitor and drift alerts, newest first."""
    sql = ("SELECT id, kind, target, level, message, value, threshold, throttled, created_at "
           "FROM alerts WHERE kind IS NOT NULL")
    params: list = []
    if target:
        sql += " AND target = ?"
        params.append(target)
    if not include_throttled:
        sql += " AND throttled = 0"
    sql += " ORDER BY created_at DESC, id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [Alert(r["id"], r["kind"], r["target"], r["level"], r["message"], r["value"],
                  r["threshold"], bool(r["throttled"]), r["created_at"])
            for r in store.rows(sql, params)]


_KIND_WORDS = {"latency": "latency", "thumbs_down": "thumbs-down", "safety": "safety",
               "error_rate": "error-rate", "concept_drift": "concept-drift",
               "data_drift": "data-drift"}


def group_alerts(alerts: list[Alert]) -> list[dict]:
    """One group per (kind, target): count, how many were throttled, the first alert, the last
    time, and a line "12 latency alerts, first: ..."; critical groups first, then newest."""
    groups: dict[tuple[str, str], dict] = {}
    for alert in sorted(alerts, key=lambda a: (a.created_at, a.id)):
        group = groups.setdefault((alert.kind, alert.target), {
            "kind": alert.kind, "target": alert.target, "severity": alert.severity,
            "count": 0, "throttled": 0, "first": alert.to_dict(), "last_at": alert.created_at})
        group["count"] += 1
        group["throttled"] += int(alert.throttled)
        group["last_at"] = alert.created_at
        if SEVERITIES.index(alert.severity) < SEVERITIES.index(group["severity"]):
            group["severity"] = alert.severity
    for group in groups.values():
        word = _KIND_WORDS.get(group["kind"], group["kind"])
        plural = "alert" if group["count"] == 1 else "alerts"
        group["summary"] = (f"{group['count']} {word} {plural}, first: "
                            f"{group['first']['message']} at {group['first']['created_at']}")
    return sorted(groups.values(),
                  key=lambda g: (SEVERITIES.index(g["severity"]), _neg(g["last_at"])))


def _neg(stamp: str) -> float:
    return -_parse(stamp).timestamp()


def unacknowledged_alerts(store: Store, *, target: str | None = None, kind: str | None = None,
                          since: str | datetime | None = None, severities=SEVERITIES,
                          acknowledge: bool = False,
                          now: datetime | None = None) -> list[Alert]:
    """Monitor alerts nobody has acknowledged yet, newest first: optionally only of one target
    and kind, of ``severities``, stored after ``since``. ``acknowledge=True`` also marks them
    acknowledged at ``now`` (one transaction) and returns the ones it marked."""
    marks = ", ".join("?" for _ in severities)
    sql = ("SELECT id, kind, target, level, message, value, threshold, throttled, created_at "
           f"FROM alerts WHERE kind IS NOT NULL AND acknowledged_at IS NULL AND level IN ({marks})")
    params: list = list(severities)
    for column, value in (("target", target), ("kind", kind)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    if since is not None:
        sql += " AND created_at > ?"
        params.append(since if isinstance(since, str) else iso(since))
    sql += " ORDER BY created_at DESC, id DESC"

    def found() -> list[Alert]:
        return [Alert(r["id"], r["kind"], r["target"], r["level"], r["message"], r["value"],
                      r["threshold"], bool(r["throttled"]), r["created_at"])
                for r in store.rows(sql, params)]

    if not acknowledge:  # a plain read works on a read-only workspace too
        return found()
    with store.db.atomic():
        alerts, stamp = found(), iso(now)
        for start in range(0, len(alerts), 500):
            chunk = [a.id for a in alerts[start:start + 500]]
            store.db.execute(f"UPDATE alerts SET acknowledged_at = ? WHERE id IN "
                             f"({', '.join('?' for _ in chunk)})", [stamp, *chunk])
    return alerts
