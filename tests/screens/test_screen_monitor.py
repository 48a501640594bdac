"""Monitor screen: a real imported request log, its window figures, alerts checked with a
controlled clock (notified once, then throttled), acknowledged, a baseline and its trend, and
the app's start-up notice of unacknowledged alerts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from screen_support import screen_text, settle, wait_for, write_jsonl
from textual.widgets import Input

from screens.dialogs import ConfirmDialog, FormDialog
from screens.widgets.safe import DataTable, Select

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
N = 60


def latency(i: int) -> float:
    return 400.0 + 25.0 * i  # 400 .. 1875 ms: p95 well above the 800 ms rule


def log_records(n: int = N, *, slow: float = 0.0) -> list[dict]:
    """Requests that break every default rule: slow, thumbs-down, unsafe answers, errors."""
    return [{"request_id": f"req-{i}", "timestamp": (T0 - timedelta(minutes=n - i)).isoformat(),
             "input": f"checkout-api 5xx burst {i}", "model": "prod-model",
             "latency_ms": latency(i) + slow, "feedback": -1 if i % 3 == 0 else 1,
             "response": None if i % 10 == 9 else "Restart the pods.",
             "error": "HTTP 500" if i % 10 == 9 else None,
             "safety_flags": ["self_harm"] if i % 5 == 0 else []} for i in range(n)]


def write_log(path, records) -> str:
    write_jsonl(path, [json.dumps(r) for r in records])
    return str(path)


def import_log(root, tmp_path, records=None, name="prod") -> None:
    from workbench.monitoring.logs import import_logs
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        import_logs(store, write_log(tmp_path / f"{name}.jsonl", records or log_records()),
                    name=name)


def metric_table(app) -> dict[str, list]:
    table = app.screen.query_one("#metrics-table", DataTable)
    return {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)]
            for i in range(table.row_count)}


def alert_notices(app) -> list:
    return [n for n in app._notifications if n.title.endswith("alert")]


async def open_monitor(pilot) -> None:
    await settle(pilot)
    await pilot.press("7")
    await settle(pilot)


@pytest.fixture
def log_workspace(workspace, tmp_path):
    from workbench.workspace import open_workspace

    open_workspace(workspace).close()
    import_log(workspace, tmp_path)
    return workspace


async def test_shows_the_window_figures_of_an_imported_log(log_workspace, make_app):
    app = make_app(log_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_monitor(pilot)
        assert app.screen.query_one("#monitor-target", Select).value == "logs:prod"
        rows = metric_table(app)
        ok = np.array([latency(i) for i in range(N) if i % 10 != 9])
        assert rows["requests"][1] == f"{N}" and rows["requests"][2] == "-"
        assert rows["p95 latency"][1] == f"{np.percentile(ok, 95):,.0f} ms"
        assert rows["avg latency"][1] == f"{ok.mean():,.0f} ms"
        assert rows["thumbs-down"][1] == f"{100 * 20 / 60:.1f}%"
        assert rows["safety failures"][1] == f"{100 * 12 / 60:.1f}%"
        assert rows["errors"][1] == f"{100 * 6 / 60:.1f}%"
        assert "no baseline" in screen_text(app)

        await pilot.press("w")  # a window of 30: the previous window is the 30 before
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), what="the window form")
        app.screen.query_one("#field-window", Input).value = "30"
        await pilot.press("enter")
        await settle(pilot)
        rows = metric_table(app)
        newer = np.array([latency(i) for i in range(30, N) if i % 10 != 9])
        older = np.array([latency(i) for i in range(30) if i % 10 != 9])
        assert rows["requests"][1:3] == ["30", "30"]
        assert rows["avg latency"][3] == f"{newer.mean() - older.mean():+,.0f} ms worse"


async def test_i_imports_a_log_reports_its_bad_line_and_monitors_it(workspace, tmp_path,
                                                                     make_app):
    from screens.dialogs import MessageDialog

    path = tmp_path / "edge.jsonl"
    lines = [json.dumps(r) for r in log_records(4)]
    write_jsonl(path, lines[:2] + ["{not json"] + lines[2:])
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_monitor(pilot)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), what="the import form")
        app.screen.query_one("#field-path", Input).value = str(path)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), what="the report")
        report = screen_text(app)
        assert "Import report: edge" in report and "Bad lines (skipped)" in report
        assert "3 " in report.split("Bad lines (skipped)")[1]  # the bad line's number
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one("#monitor-target", Select).value == "logs:edge"
        assert metric_table(app)["requests"][1] == "4"  # the good lines were kept


async def test_check_notifies_once_then_throttles_and_acknowledges(log_workspace, make_app):
    from workbench.monitoring.alerts import list_alerts, unacknowledged_alerts
    from workbench.store import Store

    app = make_app(log_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_monitor(pilot)
        screen = app.screen
        screen.clock = lambda: T0
        await pilot.press("c")
        await settle(pilot)
        with Store(log_workspace / "workbench.db") as store:
            stored = list_alerts(store)
        assert {(a.kind, a.severity, a.throttled) for a in stored} == {
            ("latency", "warning", False), ("thumbs_down", "warning", False),
            ("safety", "critical", False), ("error_rate", "info", False)}
        notices = {n.title: n.severity for n in alert_notices(app)}
        assert notices == {"Critical alert": "error", "Warning alert": "warning",
                           "Info alert": "information"}
        assert len(alert_notices(app)) == 4
        assert "4 raised" in screen_text(app)

        screen.clock = lambda: T0 + timedelta(minutes=30)  # within the hour: throttled
        await pilot.press("c")
        await settle(pilot)
        with Store(log_workspace / "workbench.db") as store:
            stored = list_alerts(store)
        assert len(stored) == 8 and sum(a.throttled for a in stored) == 4
        assert len(alert_notices(app)) == 4, "a throttled alert must not notify"
        assert "0 raised, 4 throttled" in screen_text(app)
        table = screen.query_one("#alerts-table", DataTable)
        assert table.row_count == 4
        assert {str(table.get_row_at(i)[1]) for i in range(4)} == {"2"}
        [safety] = [i for i in range(4) if str(table.get_row_at(i)[0]) == "critical"]
        assert str(table.get_row_at(safety)[4]).startswith("safety-failure rate 20.0% > 5.0% on "
                                                           "logs:prod")
        table.move_cursor(row=safety)
        await pilot.pause(0.1)
        assert ("2 safety alerts, first: safety-failure rate 20.0% > 5.0% on logs:prod (last 60 "
                "requests) at 2026-12-01 09:00; last 2026-12-01 09:30 (1 throttled)"
                == str(screen.query_one("#alert-detail").content))

        screen.clock = lambda: T0 + timedelta(minutes=61)  # the hour is over: raised again
        await pilot.press("c")
        await settle(pilot)
        assert len(alert_notices(app)) == 8

        await pilot.press("t", "down", "enter")  # another target; Enter on a group comes back
        await settle(pilot)
        assert screen.target == "variant:prod-triage"
        table.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert screen.target == "logs:prod"
        first = screen.selected_group()
        await pilot.press("a")
        await settle(pilot)
        with Store(log_workspace / "workbench.db") as store:
            still = unacknowledged_alerts(store)
        assert len(still) == 9 and all(a.kind != first["kind"] for a in still)
        assert [g["open"] for g in screen.data.groups if g["kind"] == first["kind"]] == [0]
        assert screen.data.open_total == 9


async def test_baseline_is_recorded_after_confirmation_and_shown_as_trend(
        log_workspace, make_app, tmp_path):
    from workbench.monitoring.monitor import get_baseline
    from workbench.store import Store

    app = make_app(log_workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_monitor(pilot)
        app.screen.clock = lambda: T0
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("n")  # declined: nothing recorded
        await settle(pilot)
        with Store(log_workspace / "workbench.db") as store:
            assert get_baseline(store, "logs:prod") is None
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await settle(pilot)
        with Store(log_workspace / "workbench.db") as store:
            baseline = get_baseline(store, "logs:prod")
        assert baseline["created_at"].startswith("2026-12-01T09:00")
        assert metric_table(app)["p95 latency"][5] == "±0 ms"
        assert "baseline 2026-12-01 09:00 · manual · 60 requests" in screen_text(app)

        import_log(log_workspace, tmp_path, log_records(slow=200.0))  # production got slower
        await pilot.press("r")
        await settle(pilot)
        rows = metric_table(app)
        assert rows["avg latency"][5] == "+200 ms worse"
        assert rows["thumbs-down"][5] == "±0.0 pt"


async def test_start_up_notice_lists_open_alerts_once(log_workspace, make_app):
    from workbench.monitoring.alerts import monitor_and_alert, unacknowledged_alerts
    from workbench.store import Store

    earlier = datetime.now(timezone.utc) - timedelta(minutes=5)
    with Store(log_workspace / "workbench.db") as store:
        monitor_and_alert(store, "logs:prod", now=earlier)
        unacknowledged_alerts(store, kind="latency", acknowledge=True, now=earlier)

    def notices(app):
        return [n for n in app._notifications if n.title == "Monitoring alerts"]

    app = make_app(log_workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: notices(app), 10, "the start-up notice")
        [notice] = notices(app)
        # open critical + warning: safety and thumbs-down (latency acknowledged, info left out)
        assert notice.message.startswith("2 unacknowledged alerts: ")
        assert ("2 unacknowledged alerts: 1 safety alert on logs:prod; 1 thumbs-down alert on "
                "logs:prod; see Monitor (7)") == notice.message
        assert notice.message.endswith("see Monitor (7)") and notice.severity == "error"

    again = make_app(log_workspace)  # nothing new since that start: no notice
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.pause(1.0)
        await settle(pilot)
        assert not notices(again)


async def test_a_target_without_requests(tmp_path, make_app):
    app = make_app(tmp_path / "fresh", seed_workspace=False)  # only the bundled model
    async with app.run_test(size=(80, 24)) as pilot:
        await open_monitor(pilot)
        assert app.screen.target.startswith("model:")
        assert "no requests yet" in screen_text(app)
        await pilot.press("c")
        await settle(pilot)
        assert "no rule broken" in screen_text(app) and not alert_notices(app)
        await pilot.press("b")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmDialog)
        assert any("no requests" in n.message for n in app._notifications)


def test_monitor_screen_snapshot(snap_compare, tmp_path):
    from screen_support import steady

    from screens.app import create_app
    from workbench.monitoring.alerts import monitor_and_alert
    from workbench.store import Store
    from workbench.workspace import open_workspace

    from workbench.monitoring.monitor import monitor, set_baseline

    root = tmp_path / "ws"
    open_workspace(root).close()
    import_log(root, tmp_path, log_records(slow=-200.0))  # last week: faster
    with Store(root / "workbench.db") as store:
        set_baseline(store, "logs:prod", monitor(store, "logs:prod").current, window=1000,
                     source="promoted in experiment 1 (arm B)", now=T0 - timedelta(days=7))
    import_log(root, tmp_path)
    with Store(root / "workbench.db") as store:
        monitor_and_alert(store, "logs:prod", window=30, now=T0)
        monitor_and_alert(store, "logs:prod", window=30, now=T0 + timedelta(minutes=5))
    (root / "logs").mkdir(exist_ok=True)  # no start-up notice: nothing new since "the last start"
    (root / "logs" / "ui-last-start").write_text("9999-01-01T00:00:00.000+00:00\n")
    app = create_app(root, start_screen="monitor")
    assert snap_compare(app, terminal_size=(80, 24), run_before=steady())
