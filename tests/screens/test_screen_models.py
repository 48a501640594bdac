"""Models screen: metadata, add by path (refusals shown), load/unload, GPU layers, benchmark."""

from __future__ import annotations

import pytest
from screen_support import screen_text, settle, wait_for
from textual.widgets import DataTable, Input

from screens.dialogs import FormDialog, MessageDialog

BUNDLED = "smollm2-135m-instruct-q4_1"


def store_of(root):
    from workbench.store import Store

    return Store(root / "workbench.db")


async def open_models(pilot):
    await settle(pilot)
    await pilot.press("1")
    await settle(pilot)


async def add_by_path(pilot, path):
    app = pilot.app
    await pilot.press("a")
    await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), what="the add dialog")
    app.screen.query_one("#field-path", Input).value = str(path)
    await pilot.press("enter")


async def test_lists_the_bundled_model_with_its_metadata(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_models(pilot)
        table = app.screen.query_one("#models-table", DataTable)
        row = table.get_row(BUNDLED)
        assert row[:4] == [BUNDLED, "llama", "135M", "Q4_1"]
        text = screen_text(app)
        assert "sha256" in text and "chat template" in text


async def test_a_file_that_is_not_a_gguf_is_refused_with_the_registry_message(
        workspace, make_app, tmp_path):
    bogus = tmp_path / "notes.gguf"
    bogus.write_bytes(b"this is a text file, not a model" * 4)
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_models(pilot)
        await add_by_path(pilot, bogus)
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), what="the refusal")
        assert "not a GGUF file" in str(app.screen.body)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.query_one("#models-table", DataTable).row_count == 1


async def test_a_model_that_fails_to_load_is_reported_and_the_app_goes_on(
        workspace, make_app, tiny_broken_gguf):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_models(pilot)
        await add_by_path(pilot, tiny_broken_gguf)
        await settle(pilot)
        table = app.screen.query_one("#models-table", DataTable)
        assert table.row_count == 2
        assert app.screen.selected_id() == "broken-llama"
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), 60, "the load error")
        assert "failed to load" in str(app.screen.body)
        await pilot.press("escape")
        await settle(pilot)
        assert table.get_row("broken-llama")[-1] == "load failed"
        assert "broken-llama" not in app.loaded_models
        await pilot.press("2")
        await settle(pilot)
        assert app.is_running


@pytest.mark.slow
async def test_load_unload_and_gpu_layers_of_the_bundled_model(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_models(pilot)
        screen = app.screen
        await pilot.press("l")
        await wait_for(pilot, lambda: screen.states.get(BUNDLED, "").startswith("loaded"), 60,
                       "the model to load")
        worker = app.loaded_models[BUNDLED]
        assert worker.alive and worker.pid
        await pilot.press("u")
        await wait_for(pilot, lambda: screen.states.get(BUNDLED) == "", 30, "the unload")
        assert not worker.alive and BUNDLED not in app.loaded_models

        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), what="the GPU dialog")
        app.screen.query_one("#field-n_gpu_layers", Input).value = "-1"
        await pilot.press("enter")
        await settle(pilot)
        await wait_for(pilot, lambda: screen.query_one("#models-table", DataTable)
                       .get_row(BUNDLED)[6] == "-1", what="the new GPU layers")
    with store_of(workspace) as store:
        assert store.get_model(BUNDLED).n_gpu_layers == -1


@pytest.mark.slow
async def test_benchmark_shows_progress_and_stores_the_result(workspace, make_app):
    from textual.widgets import ProgressBar

    app = make_app(workspace, benchmark_runs=1, benchmark_max_tokens=8)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_models(pilot)
        screen = app.screen
        await pilot.press("b")
        await pilot.pause(0.05)
        assert screen.query_one("#benchmark-progress", ProgressBar).display
        await wait_for(pilot, lambda: screen.rows[BUNDLED].benchmarks, 90, "the benchmark")
        await settle(pilot)
        assert not screen.query_one("#benchmark-progress", ProgressBar).display
        assert "tok/s" in screen_text(app)
    with store_of(workspace) as store:
        (bench,) = store.benchmarks(BUNDLED)
        assert bench["decode_tps"] > 0 and bench["ttft_ms"] > 0
