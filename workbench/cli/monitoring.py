"""`workbench logs|monitor|alerts`: import production logs, watch a model's health, list alerts."""

from __future__ import annotations

import argparse
import sys

from ..monitoring.alerts import evaluate_alerts, group_alerts, list_alerts
from ..monitoring.logs import import_logs, log_datasets
from ..monitoring.monitor import DEFAULT_WINDOW, TREND_METRICS, monitor, resolve_target, set_baseline
from ..workspace import OpenedWorkspace
from . import fail, one_line, validators as check
from .output import cell, print_fields, print_import_report, print_json, print_table

_LABELS = {"avg_latency_ms": "avg latency", "p95_latency_ms": "p95 latency",
           "thumbs_up_rate": "thumbs-up", "thumbs_down_rate": "thumbs-down",
           "safety_failure_rate": "safety failures", "error_rate": "errors"}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    logs = sub.add_parser("logs", help="production request logs").add_subparsers(
        dest="action", required=True)
    p = logs.add_parser("import", help="import a request-log JSONL as a dataset + observations")
    p.add_argument("path", type=check.readable_file)
    p.add_argument("--name", type=check.name, help="dataset name (default: the file's stem)")
    p.add_argument("--strict", action="store_true", help="refuse the whole file if a line is bad")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=logs_import)
    p = logs.add_parser("list", help="imported logs: requests and time span")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=logs_list)

    p = sub.add_parser("monitor", help="rolling-window health of a model, variant or imported log")
    p.add_argument("target", metavar="MODEL_OR_VARIANT_OR_LOGS",
                   help="a log dataset, variant or model (or logs:NAME, variant:NAME, model:NAME)")
    p.add_argument("--window", type=check.positive_int, default=DEFAULT_WINDOW,
                   help=f"requests per window (default {DEFAULT_WINDOW})")
    p.add_argument("--baseline", choices=("set", "show"),
                   help="set: record the current window as the baseline; show: print it")
    p.add_argument("--no-alerts", action="store_true", help="do not evaluate or store alerts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=monitor_cmd)

    alerts = sub.add_parser("alerts", help="monitoring alerts").add_subparsers(
        dest="action", required=True)
    p = alerts.add_parser("list", help="alerts grouped per kind and target (newest first)")
    p.add_argument("--target", help="only this target (e.g. model:NAME)")
    p.add_argument("--all", action="store_true", help="every alert, not grouped")
    p.add_argument("--limit", type=check.positive_int, help="at most N alerts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=alerts_list)


def logs_import(ws: OpenedWorkspace, args) -> int:
    report = import_logs(ws.store, args.path, name=args.name, strict=args.strict)
    return print_import_report(report, args.path, as_json=args.json)


def logs_list(ws: OpenedWorkspace, args) -> int:
    rows = log_datasets(ws.store)
    if args.json:
        print_json(rows)
        return 0
    print_table(("id", "name", "requests", "first", "last", "rejected"),
                ((r["id"], r["name"], r["requests"], r["first_at"], r["last_at"], r["n_rejected"])
                 for r in rows))
    return 0


def _shown(metric: str, value) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if metric.endswith("_ms") else f"{value * 100:.1f}%"


def _change(metric: str, value) -> str:
    if value is None:
        return "-"
    return f"{value:+.0f} ms" if metric.endswith("_ms") else f"{value * 100:+.1f} pt"


def _print_report(report, alerts) -> None:
    now = report.current
    print_fields([("target", report.target), ("requests", report.total),
                  ("window", f"newest {now['requests']} request(s) (--window {report.window})"),
                  ("previous window", report.previous["requests"] if report.previous else None),
                  ("baseline", f"{report.baseline['created_at']} ({report.baseline['source']})"
                   if report.baseline else "none (set one with --baseline set)"),
                  ("feedback", f"{now['feedback_n']} rated request(s)")])
    print()
    rows = []
    for metric in TREND_METRICS:
        t = report.trend[metric]
        rows.append((_LABELS[metric], _shown(metric, t["current"]), _shown(metric, t["previous"]),
                     f"{_change(metric, t['change'])} {t['vs_previous'] or ''}".strip(),
                     _shown(metric, t["baseline"]),
                     f"{_change(metric, t['change_vs_baseline'])} {t['vs_baseline'] or ''}".strip()))
    print_table(("metric", "current", "previous", "change", "baseline", "vs baseline"), rows)
    for alert in alerts:
        state = " (throttled: counted, already raised within the hour)" if alert.throttled else ""
        print(f"alert {alert.severity}: {cell(alert.message)}{state}")


def monitor_cmd(ws: OpenedWorkspace, args) -> int:
    target = resolve_target(ws.store, args.target)
    report = monitor(ws.store, target, window=args.window)
    if report.current["requests"] == 0:
        print(f"warning: {one_line(target.key)} has no requests yet", file=sys.stderr)
    if args.baseline == "set":
        if report.current["requests"] == 0:
            return fail(f"{target.key} has no requests to take a baseline from")
        ws.store.require_writable()
        set_baseline(ws.store, target.key, report.current, window=args.window)
        report = monitor(ws.store, target, window=args.window)
    if args.baseline == "show":
        if args.json:
            print_json(report.baseline)
        elif report.baseline is None:
            print(f"no baseline recorded for {cell(target.key)}")
        else:
            b = report.baseline
            print_fields([("target", target.key), ("recorded", b["created_at"]),
                          ("source", b["source"]), ("window", b["window_size"])]
                         + [(_LABELS[m], _shown(m, b["metrics"].get(m))) for m in TREND_METRICS])
        return 0
    alerts = []
    if not args.no_alerts:
        if ws.store.read_only:
            print(f"warning: alerts not evaluated: {one_line(ws.store.read_only)}", file=sys.stderr)
        else:
            alerts = evaluate_alerts(ws.store, report)
    if args.json:
        print_json({**report.to_dict(), "alerts": [a.to_dict() for a in alerts]})
    else:
        _print_report(report, alerts)
    return 0


def alerts_list(ws: OpenedWorkspace, args) -> int:
    alerts = list_alerts(ws.store, target=args.target, limit=args.limit)
    groups = group_alerts(alerts)
    if args.json:
        print_json({"groups": groups, "alerts": [a.to_dict() for a in alerts]} if args.all
                   else {"groups": groups})
        return 0
    if not alerts:
        print("no alerts")
        return 0
    if args.all:
        print_table(("id", "time", "severity", "kind", "target", "throttled", "message"),
                    ((a.id, a.created_at, a.severity, a.kind, a.target,
                      "yes" if a.throttled else "", a.message) for a in alerts))
        return 0
    print_table(("severity", "kind", "target", "alerts", "throttled", "last", "summary"),
                ((g["severity"], g["kind"], g["target"], g["count"], g["throttled"], g["last_at"],
                  g["summary"]) for g in groups))
    return 0
