"""The shell: screens by number key and command palette, `?` help, errors kept inside the app."""

from __future__ import annotations

from screen_support import settle, wait_for
from textual.widgets import Input

from screens.registry import SCREENS


async def test_number_keys_reach_every_registered_screen(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert type(app.screen).__name__ == "ExperimentsScreen"
        for entry in SCREENS:
            await pilot.press(entry.key)
            await settle(pilot)
            assert type(app.screen) is entry.load()
            assert app.screen.TITLE == entry.title


async def test_command_palette_opens_a_screen(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the palette")
        await pilot.press(*"Datasets screen")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "DatasetsScreen"


async def test_help_lists_every_key_of_the_current_screen(workspace, make_app):
    from screens.help import HelpScreen

    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for entry in SCREENS:
            await pilot.press(entry.key)
            await settle(pilot)
            screen_keys = {b.key for b in app.screen.BINDINGS}
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            listed = {key for _, key, _ in app.screen.rows}
            for key in screen_keys | {e.key for e in SCREENS} | {"q"}:
                assert app.get_key_display(_binding(key)) in listed, (entry.title, key)
            assert "?" in listed
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="close")


def _binding(key):
    from textual.binding import Binding

    return Binding(key, "noop")


async def test_a_failing_job_is_a_notification_and_the_app_keeps_running(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)

        def explode(store):
            raise ValueError("the disk is on fire")

        app.screen.in_background(explode, name="testing errors")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any("the disk is on fire" in m for m in messages)
        await pilot.press("1")
        await settle(pilot)
        assert type(app.screen).__name__ == "ModelsScreen"


async def test_an_unusable_workspace_is_reported_not_raised(tmp_path, make_app):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the workspace should be")
    app = make_app(blocker)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.workspace_error
        assert any("cannot open workspace" in n.message for n in app._notifications)
        await pilot.press("2")
        await settle(pilot)
        assert app.is_running


def test_database_work_is_refused_on_the_ui_thread(workspace):
    import threading

    import pytest

    from screens.app import create_app

    app = create_app(workspace)
    app._ui_thread = threading.get_ident()
    with pytest.raises(RuntimeError, match="worker thread"):
        app.open_store()
