"""Monitor screen: rolling-window health of an imported log, a variant or a model, its trend
against the previous window and the baseline, and the monitoring alerts (check, acknowledge).

Everything is read and written by ``workbench.monitoring`` in thread workers; the screen only
formats. ``clock`` is the screen's notion of now (tests replace it to control throttling).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header

from .base import WorkbenchScreen
from .dialogs import ConfirmDialog, Field, FormDialog
from .format import shorten, timestamp
from .jsonl_import import ask_and_import, import_failed
from .monitor_view import MonitorData, load_monitor, metric_rows, severity_text
from .widgets.safe import DataTable, Select, Static, Text

MAX_WINDOW = 1_000_000
NOTIFY_SEVERITY = {"critical": "error", "warning": "warning", "info": "information"}


class MonitorScreen(WorkbenchScreen):
    TITLE = "Monitor"
    RELOAD_ON_SHOW = True
    AUTO_FOCUS = "#alerts-table"
    CSS = """
    MonitorScreen #monitor-bar { height: 1; margin-top: 1; padding: 0 1; }
    MonitorScreen #monitor-target { width: 40; }
    MonitorScreen.-narrow #monitor-target { width: 34; }
    MonitorScreen #monitor-target Static#label { text-wrap: nowrap; text-overflow: ellipsis; }
    MonitorScreen #monitor-summary { width: 1fr; margin-left: 2; height: 1; }
    MonitorScreen #metrics-table { height: auto; max-height: 9; margin-top: 1; }
    MonitorScreen #monitor-status { height: 1; padding: 0 1; background: $boost; }
    MonitorScreen #alerts-panel { height: 1fr; }
    MonitorScreen #alerts-table { height: 1fr; }
    MonitorScreen #alert-detail { height: 3; color: $text-muted; }
    MonitorScreen { overflow: hidden hidden; }
    """
    HELP = """
Rolling-window health of production traffic, the same figures as `workbench monitor`: choose an
imported request log (logs:NAME, `workbench logs import LOG.jsonl` or i), a variant (its runs in
every experiment) or a model. The window is the newest N requests (default 1,000; w changes it);
each figure shows the previous N requests and the recorded baseline beside it, with the change
and whether it is better or worse.

b records the current window as the target's baseline (promotion records one too); later
windows are compared with it.

c checks the target now: every alert rule the current window breaks (p95 latency > 800 ms and
thumbs-down > 20 % warning, safety failures > 5 % critical, errors > 5 % info) is stored and
shown as a notification. Within an hour of one alert of a kind on a target, the same alert is
stored as throttled (counted, not notified again).

The list below groups the alerts of every target per kind, newest first ("open": not yet
acknowledged). Enter monitors the selected group's target; a acknowledges the group. The
app's start lists the critical and
warning alerts left unacknowledged since its last start.
"""
    BINDINGS = [
        Binding("t", "choose_target", "Target", tooltip="Choose the target"),
        Binding("w", "window", "Window", tooltip="Requests per window"),
        Binding("c", "check", "Check", tooltip="Check the target now (store alerts)"),
        Binding("b", "baseline", "Baseline", tooltip="Record the current window as baseline"),
        Binding("a", "acknowledge", "Ack", tooltip="Acknowledge the selected alert group"),
        Binding("i", "import_log", "Import log", show=False, tooltip="Import a request log"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        from workbench.monitoring.monitor import DEFAULT_WINDOW

        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.window = DEFAULT_WINDOW
        self.data: MonitorData | None = None
        self.checked = ""  # what the last check found, shown on the status line

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="monitor-bar"):
            yield Select([], id="monitor-target", compact=True, prompt="choose a target")
            yield Static("", id="monitor-summary")
        table = DataTable(id="metrics-table", cursor_type="none", zebra_stripes=True)
        table.add_columns("metric", "current", "previous", "change", "baseline", "vs baseline")
        yield table
        yield Static("", id="monitor-status")
        with Vertical(id="alerts-panel", classes="panel") as panel:
            panel.border_title = "Alerts"
            alerts = DataTable(id="alerts-table", cursor_type="row", zebra_stripes=True)
            alerts.add_columns("severity", "n", "open", "last", "first alert")
            yield alerts
            yield Static("", id="alert-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    @property
    def target(self) -> str | None:
        return self.data.key if self.data else None

    # -- loading -----------------------------------------------------------------------------
    def action_reload(self, target: str | None = None) -> None:
        wanted, window = target or self.target, self.window
        self.in_background(lambda store: load_monitor(store, wanted, window), self.show_data,
                           name="reading the monitor")

    def show_data(self, data: MonitorData) -> None:
        changed, keep = self.target != data.key, self.selected_group()
        self.data = data
        if changed:
            self.checked = ""
        select = self.query_one("#monitor-target", Select)
        with self.prevent(Select.Changed):
            select.set_options(data.targets)
            if data.key is not None:
                select.value = data.key
        self.show_report(data.report)
        self.show_alerts(data.groups, data.open_total, keep)

    def show_report(self, report) -> None:
        table = self.query_one("#metrics-table", DataTable)
        table.clear()
        summary = self.query_one("#monitor-summary", Static)
        if report is None:
            summary.update(f"window {self.window:,}")
            self.set_status(Text("Nothing to monitor yet: import a request log (i, or "
                                 "`workbench logs import LOG.jsonl`) or run an experiment.",
                                 style="italic"))
            return
        now = report.current
        summary.update(f"window {report.window:,} · {report.total:,} "
                       f"request{'' if report.total == 1 else 's'} · {now['feedback_n']:,} rated")
        for row in metric_rows(report):
            table.add_row(*row)
        self.call_after_refresh(table.refresh)
        self.set_status()

    def set_status(self, text: Text | None = None) -> None:
        status = self.query_one("#monitor-status", Static)
        report = self.data.report if self.data else None
        if text is None and report is not None:
            base = report.baseline
            text = Text()
            if base:
                text.append("baseline ", style="bold")
                size = (base["metrics"] or {}).get("requests", base["window_size"])
                text.append(f"{timestamp(base['created_at'])} · {base['source']} · "
                            f"{size:,} requests")
            else:
                text.append("no baseline (b records one)", style="dim")
            if report.current["requests"] == 0:
                text.append(" · no requests yet", style="yellow")
            if self.checked:
                text.append(f" · {self.checked}")
        status.update(text or "")

    def show_alerts(self, groups: list[dict], open_total: int, keep: dict | None = None) -> None:
        """The grouped alerts; the cursor stays on the group ``keep`` (default: the selected)."""
        table = self.query_one("#alerts-table", DataTable)
        current = keep or self.selected_group()
        width = max(24, self.size.width - 38)  # the message fits beside the other columns
        table.clear()
        for group in groups:
            done = group["open"] == 0
            table.add_row(severity_text(group["severity"], acknowledged=done),
                          f"{group['count']:,}", f"{group['open']:,}" if group["open"] else "-",
                          timestamp(group["last_at"])[5:],
                          shorten(group["first"]["message"], width),
                          key=f"{group['kind']}\x00{group['target']}")
        self.query_one("#alerts-panel").border_title = (
            f"Alerts · {len(groups)} group(s), {open_total:,} open" if groups else "Alerts")
        if current is not None:
            keys = [f"{g['kind']}\x00{g['target']}" for g in groups]
            key = f"{current['kind']}\x00{current['target']}"
            if key in keys:
                table.move_cursor(row=keys.index(key))
        self.call_after_refresh(table.refresh)
        self.show_alert_detail()

    def on_resize(self) -> None:
        if self.data is not None:
            self.show_alerts(self.data.groups, self.data.open_total)

    def selected_group(self) -> dict | None:
        table = self.query_one("#alerts-table", DataTable)
        groups = self.data.groups if self.data else []
        if not table.row_count or not groups:
            return None
        row = table.cursor_coordinate.row
        return groups[row] if 0 <= row < len(groups) else None

    def show_alert_detail(self) -> None:
        detail = self.query_one("#alert-detail", Static)
        group = self.selected_group()
        if group is None:
            detail.update("No alerts. c checks the selected target now.")
            return
        first = group["first"]["created_at"]
        throttled = f" ({group['throttled']:,} throttled)" if group["throttled"] else ""
        detail.update(f"{group['summary'].replace(first, timestamp(first))}; last "
                      f"{timestamp(group['last_at'])}{throttled}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "alerts-table":
            self.show_alert_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an alert group monitors that group's target."""
        group = self.selected_group() if event.data_table.id == "alerts-table" else None
        if group and self.data and group["target"] in [key for _, key in self.data.targets]:
            self.action_reload(target=group["target"])

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "monitor-target" and isinstance(event.value, str):
            self.action_reload(target=event.value)

    # -- choosing ----------------------------------------------------------------------------
    def action_choose_target(self) -> None:
        select = self.query_one("#monitor-target", Select)
        select.focus()
        select.expanded = True

    def action_window(self) -> None:
        def check(values: dict) -> str | None:
            try:
                size = int(values["window"])
            except ValueError:
                return "Enter a whole number of requests."
            return None if 1 <= size <= MAX_WINDOW else f"Use 1 to {MAX_WINDOW:,} requests."

        self.app.push_screen(FormDialog(
            "Window size", [Field("window", "Requests per window", str(self.window),
                                  type="integer")], ok="Apply", validate=check,
            note="The newest N requests; the previous window is the N before them."),
            self.set_window)

    def set_window(self, values: dict | None) -> None:
        if values:
            self.window = int(values["window"])
            self.action_reload()

    # -- check, baseline, acknowledge -------------------------------------------------------------
    def action_check(self) -> None:
        if self.target is None:
            self.notify("Nothing to check: choose a target first.", severity="warning")
            return
        from workbench.monitoring.alerts import monitor_and_alert

        key, window, now = self.target, self.window, self.clock()

        def check(store):
            report, alerts = monitor_and_alert(store, key, window=window, now=now)
            return report, alerts, store.read_only

        self.in_background(check, lambda result: self.checked_now(*result, now),
                           name=f"checking {key}", group="check")

    def checked_now(self, report, alerts: list, read_only: str | None, now: datetime) -> None:
        raised = [a for a in alerts if not a.throttled]
        for alert in raised:
            self.notify(alert.message, title=f"{alert.severity.capitalize()} alert",
                        severity=NOTIFY_SEVERITY.get(alert.severity, "information"), timeout=10)
        when = now.astimezone(timezone.utc).strftime("%H:%M")
        if read_only:
            self.checked = f"not checked: {read_only}"
        elif not alerts:
            self.checked = f"checked {when}: no rule broken"
        else:
            held = len(alerts) - len(raised)
            self.checked = (f"checked {when}: {len(raised)} raised"
                            + (f", {held} throttled" if held else ""))
        self.action_reload(target=report.target)

    def action_baseline(self) -> None:
        report = self.data.report if self.data else None
        if report is None or report.current["requests"] == 0:
            self.notify("The target has no requests to take a baseline from.", severity="warning")
            return
        self.app.push_screen(ConfirmDialog(
            "Record the baseline",
            f"Record the newest {report.current['requests']:,} request(s) of {report.target} "
            "as its baseline? Later windows are compared with it (older baselines are kept).",
            yes="Record", no="Cancel"), self.record_baseline)

    def record_baseline(self, yes: bool | None) -> None:
        if not yes or self.target is None:
            return
        from workbench.monitoring.monitor import monitor, set_baseline

        key, window, now = self.target, self.window, self.clock()

        def record(store):
            report = monitor(store, key, window=window)
            return set_baseline(store, key, report.current, window=window, now=now)

        self.in_background(record, lambda _: self.recorded(key), name="recording the baseline",
                           group="baseline")

    def recorded(self, key: str) -> None:
        self.notify(f"Baseline of {key} recorded.", title="Monitor")
        self.action_reload(target=key)

    def action_acknowledge(self) -> None:
        group = self.selected_group()
        if group is None or not group["open"]:
            self.notify("No open alert selected.", title="Monitor")
            return
        from workbench.monitoring.alerts import unacknowledged_alerts

        kind, target, now = group["kind"], group["target"], self.clock()
        self.in_background(
            lambda store: unacknowledged_alerts(store, target=target, kind=kind,
                                                acknowledge=True, now=now),
            lambda done: self.acknowledged(done, target), name="acknowledging alerts",
            group="ack")

    def acknowledged(self, alerts: list, target: str) -> None:
        self.notify(f"{len(alerts):,} alert(s) on {target} acknowledged.", title="Monitor")
        self.action_reload()

    # -- import --------------------------------------------------------------------------------
    def action_import_log(self) -> None:
        def run(store, path, name):
            from workbench.monitoring.logs import import_logs

            return import_logs(store, path, name=name)

        fields = [Field("path", "Path to a request-log JSONL", placeholder="~/logs/prod.jsonl"),
                  Field("name", "Name (blank: the file name)")]
        ask_and_import(self, "Import a request log", fields, run,
                       lambda report: self.action_reload(target=f"logs:{report.name}"))

    def worker_failed(self, worker, error) -> None:
        if not import_failed(self, worker, error):
            super().worker_failed(worker, error)
