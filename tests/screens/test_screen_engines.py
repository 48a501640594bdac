"""Engines in the UI: the Models screen's engine column and switch, endpoints added and probed
from the screen (a real llama-server on 127.0.0.1), variants on an endpoint, and a 3-arm
experiment shown with a column per arm."""

from __future__ import annotations

import pytest
from screen_support import screen_text, settle, wait_for
from textual.widgets import DataTable, Input, Select

from screens.dialogs import FormDialog
from screens.experiment_form import NewExperimentForm, NewVariantForm
from screens.widgets.run_table import RunTable

BUNDLED = "smollm2-135m-instruct-q4_1"


async def test_engine_column_and_e_switches_the_engine(workspace, make_app):
    from workbench.experiments.arm_engines import engine_choice
    from workbench.store import Store

    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        table = app.screen.query_one("#models-table", DataTable)
        with Store(workspace / "workbench.db") as store:
            expected = engine_choice(store.get_model(BUNDLED))[0]
        cell = table.get_row(BUNDLED)[7]
        assert cell == ("server x8" if expected == "server" else "worker")
        await pilot.press("e")  # auto -> worker
        await wait_for(pilot, lambda: table.get_row(BUNDLED)[7] == "worker", what="worker")
        with Store(workspace / "workbench.db") as store:
            assert store.get_model(BUNDLED).engine == "worker"
        assert "replays run on embedded llama.cpp worker" in screen_text(app)


@pytest.mark.slow
async def test_an_endpoint_added_on_the_models_screen_is_probed_and_offered_for_variants(
        workspace, make_app, llama_server):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, FormDialog), what="the endpoint form")
        form = app.screen
        form.query_one("#field-name", Input).value = "local"
        form.query_one("#field-base_url", Input).value = llama_server.base_url
        await pilot.click("#ok")
        await wait_for(pilot, lambda: "llama-server" in screen_text(app), 20, "the probe")
        text = screen_text(app)
        assert "local" in text and "smollm2, 4 slots, context 2048" in text
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewExperimentForm), what="the form")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewVariantForm), what="variant form")
        vform = app.screen
        options = [value for _, value in vform.targets]
        assert "endpoint:local:smollm2" in options and f"model:{BUNDLED}" in options
        vform.query_one("#variant-name", Input).value = "remote"
        vform.query_one("#model", Select).value = "endpoint:local:smollm2"
        await pilot.click("#ok")
        form = app.screen
        await wait_for(pilot, lambda: isinstance(form, NewExperimentForm)
                       and any(v.name == "remote" for v in form.choices.variants), 10, "variant")
        created = [v for v in form.choices.variants if v.name == "remote"][0]
        assert created.endpoint == "local" and created.endpoint_model == "smollm2"
        assert created.model_id is None


async def test_a_three_arm_experiment_has_a_column_per_arm_and_x_compares_the_next(
        tmp_path, make_app):
    from workbench.store import ModelRecord
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root)
    store = opened.store
    store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    arms = {arm: store.create_variant(f"v-{arm}", "fake").id for arm in "ABC"}
    ds = store.save_dataset("three", [{"key": f"k{i}", "input": f"incident {i}"} for i in range(2)],
                            source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("three arms", ds, arms)
    for item in store.items(ds):
        for arm, vid in arms.items():
            store.record_run({"experiment_id": exp.id, "item_id": item.id, "variant_id": vid,
                              "arm": arm, "output": f"answer of {arm}", "latency_ms": 100.0})
    opened.close()
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        await wait_for(pilot, lambda: screen.view is not None, what="the experiment")
        table = screen.query_one(RunTable)
        assert table.arms == ("A", "B", "C") and len(table.columns) == 5
        assert "severity  (ref, A, B, C)" in screen_text(app)
        assert "answer of B" in screen_text(app)
        await pilot.press("x")
        await settle(pilot)
        text = screen_text(app)
        assert "answer of C" in text and "C · v-C" in text


@pytest.mark.slow
async def test_quitting_during_a_replay_on_a_managed_server_stops_the_server(
        tmp_path, make_app, llama_server_binary):
    from server_support import running_llama_servers
    from test_screen_experiments import fill_new_experiment, prepare

    from workbench.store import Store

    root = tmp_path / "ws"
    variants = prepare(root, 12)
    with Store(root / "workbench.db") as store:
        store.set_model_settings(BUNDLED, engine="server", server_slots=2)
    before = running_llama_servers()
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await fill_new_experiment(pilot, variants)
        await pilot.press("enter")
        screen = app.screen
        await wait_for(pilot, lambda: screen.view is not None
                       and any(r.runs for r in screen.view.rows.values()), 60, "the first run")
        assert running_llama_servers() - before  # the managed server is up
        await pilot.press("q")
    import time

    deadline = time.monotonic() + 10
    while running_llama_servers() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running_llama_servers() - before
