"""Datasets screen: counts, JSONL import with its bad-line report, item preview."""

from __future__ import annotations

import json

from screen_support import incident_lines, screen_text, settle, wait_for, write_jsonl
from textual.widgets import DataTable, Input

from screens.dialogs import FormDialog, MessageDialog


async def open_datasets(pilot):
    await settle(pilot)
    await pilot.press("2")
    await settle(pilot)


async def import_path(pilot, path, name=""):
    app = pilot.app
    await pilot.press("i")
    await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), what="the import dialog")
    app.screen.query_one("#field-path", Input).value = str(path)
    app.screen.query_one("#field-name", Input).value = name
    await pilot.press("enter")


async def test_lists_datasets_with_counts_and_previews_items(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_datasets(pilot)
        row = app.screen.query_one("#datasets-table", DataTable).get_row_at(0)
        assert row[1:4] == ["incidents", "3", "0"]
        items = app.screen.query_one("#items-table", DataTable)
        assert items.row_count == 3
        await pilot.press("tab", "down")
        await settle(pilot)
        text = screen_text(app)
        assert "inc-002" in text and "Index rebuild dropped the prefix" in text
        assert "Search autocomplete returns no results" in text


async def test_import_with_bad_lines_shows_the_report_and_keeps_good_lines(
        workspace, make_app, tmp_path):
    bad = [
        '{"id": "broken", "input": ',  # line 4: invalid JSON
        json.dumps({"id": "no-input"}),  # line 5: neither input nor messages
        json.dumps({"id": "x", "input": "disk full", "reference": {"severity": "critical"}}),
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", incident_lines(3) + bad)
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_datasets(pilot)
        await import_path(pilot, path)
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), 30, "the report")
        report = screen_text(app)
        assert "imported 3 item(s)" in report and "3 bad line(s) skipped" in report
        for line_no, reason in (("4", "invalid JSON"),
                                ("5", "exactly one of 'input' or 'messages' is required"),
                                ("6", "is not one of SEV-0")):
            assert any(line_no in row.split() and reason in row
                       for row in report.splitlines()), (line_no, reason)
        await pilot.press("escape")
        await settle(pilot)
        table = app.screen.query_one("#datasets-table", DataTable)
        assert table.row_count == 2
        mixed = [table.get_row_at(i) for i in range(2) if table.get_row_at(i)[1] == "mixed"][0]
        assert mixed[2:4] == ["3", "3"]


async def test_a_missing_file_is_an_error_dialog(workspace, make_app, tmp_path):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_datasets(pilot)
        await import_path(pilot, tmp_path / "nowhere.jsonl")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), 30, "the error")
        assert "cannot read" in str(app.screen.body)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one("#datasets-table", DataTable).row_count == 1
