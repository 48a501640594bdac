"""What the Monitor screen shows, read and formatted outside Textual's widgets: the targets,
the window figures with their trends, the grouped alerts and the app's start-up notice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .widgets.safe import Text

ALERT_LIMIT = 5000  # newest alerts read for the grouped list
SEVERITY_STYLE = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}
DIRECTION_STYLE = {"better": "green", "worse": "bold red", "same": "dim"}
METRICS = (("requests", "requests"), ("avg_latency_ms", "avg latency"),
           ("p95_latency_ms", "p95 latency"), ("thumbs_up_rate", "thumbs-up"),
           ("thumbs_down_rate", "thumbs-down"), ("safety_failure_rate", "safety failures"),
           ("error_rate", "errors"))


@dataclass
class MonitorData:
    """What one load reads: the targets to choose from, the chosen one's report, the alerts."""

    targets: list[tuple[str, str]]  # (label, target key)
    key: str | None
    report: object | None  # workbench.monitoring.monitor.MonitorReport
    groups: list[dict] = field(default_factory=list)  # newest first, with "open" counts
    open_total: int = 0


def monitor_targets(store) -> list[tuple[str, str]]:
    """Imported logs, variants and models the workspace holds, as (label, ``kind:name``)."""
    from workbench.monitoring.logs import log_datasets

    targets = [(f"logs: {r['name']} ({r['requests']:,})", f"logs:{r['name']}")
               for r in log_datasets(store)]
    targets += [(f"variant: {v.name}", f"variant:{v.name}") for v in store.list_variants()]
    models = store.rows("SELECT id AS name FROM models UNION SELECT endpoint_model FROM variants "
                        "WHERE endpoint_model IS NOT NULL UNION SELECT model FROM observations "
                        "WHERE model IS NOT NULL ORDER BY 1")
    return targets + [(f"model: {m['name']}", f"model:{m['name']}") for m in models]


def alert_groups(store) -> tuple[list[dict], int]:
    """The alerts grouped per kind and target (``group_alerts``), newest group first, each
    with how many of its alerts are still unacknowledged; and that number in all."""
    from workbench.monitoring.alerts import group_alerts, list_alerts, unacknowledged_alerts

    groups = group_alerts(list_alerts(store, limit=ALERT_LIMIT))
    still_open = Counter((a.kind, a.target) for a in unacknowledged_alerts(store))
    for group in groups:
        group["open"] = still_open.get((group["kind"], group["target"]), 0)
    groups.sort(key=lambda g: g["last_at"], reverse=True)
    return groups, sum(still_open.values())


def load_monitor(store, wanted: str | None, window: int) -> MonitorData:
    from workbench.monitoring.monitor import monitor

    targets = monitor_targets(store)
    keys = [key for _, key in targets]
    key = wanted if wanted in keys else (keys[0] if keys else None)
    report = monitor(store, key, window=window) if key else None
    return MonitorData(targets, key, report, *alert_groups(store))


def shown(metric: str, value) -> str:
    if value is None:
        return "-"
    if metric == "requests":
        return f"{value:,.0f}"
    return f"{value:,.0f} ms" if metric.endswith("_ms") else f"{value * 100:.1f}%"


def change(metric: str, value, direction: str | None) -> Text:
    """``+12 ms worse`` / ``-1.5 pt better``, coloured by the direction."""
    if value is None:
        return Text("-", style="dim")
    if metric == "requests":
        return Text(f"{value:+,.0f}", style="dim")
    text = f"{value:+,.0f} ms" if metric.endswith("_ms") else f"{value * 100:+.1f} pt"
    if text.lstrip("+-").startswith(("0 ", "0.0 ")):  # too small to show: no direction
        return Text("±" + text.lstrip("+-"), style="dim")
    return Text(f"{text} {direction or ''}".strip(), style=DIRECTION_STYLE.get(direction, ""))


def metric_rows(report) -> list[tuple]:
    """One row per monitored figure: current, previous, change, baseline, change vs baseline."""
    previous = report.previous or {}
    base = (report.baseline or {}).get("metrics") or {}
    rows = []
    for metric, label in METRICS:
        if metric == "requests":
            now, prev, then = report.current["requests"], previous.get("requests"), base.get(metric)
            rows.append((label, shown(metric, now), shown(metric, prev),
                         change(metric, None if prev is None else now - prev, None),
                         shown(metric, then),
                         change(metric, None if then is None else now - then, None)))
            continue
        t = report.trend[metric]
        rows.append((label, shown(metric, t["current"]), shown(metric, t["previous"]),
                     change(metric, t["change"], t["vs_previous"]), shown(metric, t["baseline"]),
                     change(metric, t["change_vs_baseline"], t["vs_baseline"])))
    return rows


def severity_text(severity: str, *, acknowledged: bool = False) -> Text:
    return Text(severity, style="dim" if acknowledged else SEVERITY_STYLE.get(severity, ""))


def startup_notice(alerts: list, monitor_key: str) -> tuple[str, str] | None:
    """The app's one notification at start for unacknowledged alerts: (text, severity)."""
    if not alerts:
        return None
    from workbench.monitoring.alerts import group_alerts

    groups = group_alerts(alerts)
    parts = [f"{g['summary'].partition(', first:')[0]} on {g['target']}" for g in groups[:3]]
    if len(groups) > 3:
        parts.append(f"{len(groups) - 3} more kind(s)")
    plural = "" if len(alerts) == 1 else "s"
    severity = "error" if any(a.severity == "critical" for a in alerts) else "warning"
    return (f"{len(alerts):,} unacknowledged alert{plural}: {'; '.join(parts)}; "
            f"see Monitor ({monitor_key})", severity)
