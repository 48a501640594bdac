"""At 80×24 every dialog fits or scrolls: its buttons are on screen, the footer shows the
screen's keys (``r`` included) and no dialog body runs past the terminal's bottom row."""

from __future__ import annotations

import pytest
from screen_support import prefilled_workspace, settle, wait_for
from textual.widgets import Button

SIZE = (80, 24)
DIALOGS = [
    ("datasets import", ("2",), "i"),
    ("new experiment", ("3",), "n"),
    ("new variant", ("3", "n"), "ctrl+n"),
    ("add endpoint", ("1",), "n"),
    ("help", ("1",), "question_mark"),
    ("build training data", ("6",), "d"),
    ("new fine-tune job", ("6",), "n"),
    ("monitor window", ("7",), "w"),
    ("monitor baseline", ("7",), "b"),
    ("monitor help", ("7",), "question_mark"),
]


def _visible(widget, screen) -> bool:
    region = widget.region
    return region.height > 0 and region.y >= 0 and region.bottom <= screen.size.height


@pytest.mark.parametrize("name,before,key", DIALOGS, ids=[d[0] for d in DIALOGS])
async def test_dialog_buttons_reachable_at_80x24(tmp_path, make_app, name, before, key):
    app = make_app(prefilled_workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for k in before:
            await pilot.press(k)
            await settle(pilot)
        screens_before = len(app.screen_stack)
        await pilot.press(key)
        await wait_for(pilot, lambda: len(app.screen_stack) > screens_before, what=f"{name} dialog")
        await settle(pilot)
        dialog = app.screen
        buttons = list(dialog.query(Button))
        if not buttons:  # the help screen closes with keys; its text must scroll instead
            scrollers = [w for w in dialog.query("*") if w.allow_vertical_scroll]
            assert scrollers or dialog.region.bottom <= SIZE[1]
            return
        body = dialog.query_one(".dialog-body")
        assert body.region.bottom <= SIZE[1], f"{name}: the dialog runs off the screen"
        hidden = [b.label for b in buttons if b.display and not _visible(b, dialog)]
        assert not hidden, f"{name}: buttons off screen at 80x24: {hidden}"


@pytest.mark.parametrize("key", ["1", "2", "3", "7"])
async def test_refresh_key_is_shown_in_the_footer(tmp_path, make_app, key):
    app = make_app(prefilled_workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        shown = {key for key, active in app.screen.active_bindings.items() if active.binding.show}
        assert "r" in shown, shown


async def test_lists_refresh_when_a_screen_is_shown_again(tmp_path, make_app):
    """A model registered and an experiment created elsewhere (another screen, the CLI) are
    listed when their screen is shown again, without pressing r."""
    from screen_support import screen_text

    from workbench.store import ModelRecord, Store

    root = prefilled_workspace(tmp_path)
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        for key in ("1", "3"):  # both screens mounted and listed once
            await pilot.press(key)
            await settle(pilot)
        with Store(root / "workbench.db") as store:
            store.upsert_model(ModelRecord(id="fresh-export-q4_k_m", path=str(tmp_path / "x.gguf")))
            variants = store.list_variants()
            exp = store.create_experiment("made-by-the-cli", store.list_datasets()[0]["id"],
                                          {"A": variants[0].id, "B": variants[1].id})
        await pilot.press("1")
        await settle(pilot)
        assert "fresh-export-q4_k_m" in screen_text(app)
        await pilot.press("3")
        await settle(pilot)
        app.screen.query_one("#experiment-select").expanded = False
        options = [str(o[0]) for o in app.screen.query_one("#experiment-select")._options]
        assert any(f"#{exp.id} made-by-the-cli" in o for o in options), options


async def test_rate_chooser_fits_80_columns(tmp_path, make_app):
    app = make_app(prefilled_workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        start = app.screen.query_one("#rate-start", Button)
        assert start.region.right <= SIZE[0] and start.region.width >= len("Start rating")


async def test_monitor_fits_80x24(tmp_path, make_app):
    """Every metric column and every footer key of the Monitor screen is on screen."""
    from screen_support import screen_text

    from screens.widgets.safe import DataTable

    app = make_app(prefilled_workspace(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        table = app.screen.query_one("#metrics-table", DataTable)
        assert table.row_count == 7 and table.region.bottom < SIZE[1] - 4
        assert table.virtual_size.width <= table.region.width, "the figures need scrolling"
        lines = screen_text(app).splitlines()
        assert "vs baseline" in lines[table.region.y]
        footer = lines[-1]
        for key in ("Target", "Window", "Check", "Baseline", "Ack", "Refresh"):
            assert key in footer, (key, footer)
