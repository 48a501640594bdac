"""Experiments screen: create, run a live shadow replay on the bundled model, pause and resume."""

from __future__ import annotations

import re

import pytest
from screen_support import incident_lines, screen_text, settle, wait_for, write_jsonl
from textual.widgets import Checkbox, Input, Select, TextArea

from screens.experiment_form import NewExperimentForm, NewVariantForm
from screens.widgets.run_table import RunTable

BUNDLED = "smollm2-135m-instruct-q4_1"


def prepare(root, n_items: int) -> dict[str, int]:
    """A workspace with an n-item dataset and two tiny variants (8 tokens) on the bundled model."""
    from workbench.workspace import open_workspace

    write_jsonl(root / "datasets" / "incidents.jsonl", incident_lines(n_items))
    opened = open_workspace(root)
    try:
        return {name: opened.store.create_variant(name, BUNDLED, max_tokens=8, system_prompt=
                                                  "You are an SRE. State the severity.").id
                for name in ("tiny-a", "tiny-b")}
    finally:
        opened.close()


async def open_new_experiment(pilot) -> NewExperimentForm:
    """Settle, press n, and return the New experiment form."""
    app = pilot.app
    await settle(pilot)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewExperimentForm), what="the form")
    return app.screen


async def fill_new_experiment(pilot, variants: dict[str, int]) -> NewExperimentForm:
    form = await open_new_experiment(pilot)
    form.query_one("#variant-a", Select).value = variants["tiny-a"]
    form.query_one("#variant-b", Select).value = variants["tiny-b"]
    await pilot.pause()
    return form


def stored_runs(root) -> list[dict]:
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        return store.runs(store.list_experiments()[-1].id)


@pytest.mark.slow
async def test_shadow_replay_runs_live_then_pauses_and_resumes(tmp_path, make_app):
    root = tmp_path / "ws"
    variants = prepare(root, 6)
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        await fill_new_experiment(pilot, variants)
        await pilot.press("enter")  # "Create and start"
        await wait_for(pilot, lambda: screen.view is not None and screen.live, 30, "the start")
        # Pause as soon as the first answer is stored and shown.
        await wait_for(pilot, lambda: any(r.runs for r in screen.view.rows.values()), 90,
                       "the first run")
        await pilot.press("p")
        await wait_for(pilot, lambda: not screen.live and not app.replays, 60, "the pause")
        await settle(pilot)
        assert screen.view.exp.status == "paused"
        first_pass = len(stored_runs(root))
        assert 1 <= first_pass < 12
        assert "paused" in screen_text(app)

        await pilot.press("s")  # resume: a new Replay continues where the first stopped
        await wait_for(pilot, lambda: screen.live, 10, "the resume")
        await wait_for(pilot, lambda: not screen.live and not app.replays, 120, "the end")
        await settle(pilot)
        runs = stored_runs(root)
        assert len(runs) == 12
        assert len({(r["item_id"], r["arm"]) for r in runs}) == 12
        assert all(r["error"] is None and r["output"] for r in runs)
        assert screen.view.stored == screen.view.planned == 12

        table = screen.query_one(RunTable)
        assert table.row_count == 6
        cells = [str(c) for i in range(6) for c in table.get_row_at(i)[1:3]]
        # a latency in ms, or in s on a loaded machine
        assert all(re.fullmatch(r"✓ [\d.]+ m?s", c) for c in cells), cells
        text = screen_text(app)
        assert "all runs stored" in text and "pending" not in text
        first = screen.view.rows[table.selected_item()]
        assert first.runs["A"]["output"].split()[0] in text  # A's answer is on screen
        assert "A · tiny-a ·" in text and "B · tiny-b ·" in text


async def test_new_variant_from_the_form_becomes_b(workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_new_experiment(pilot)
        await pilot.click("#new-variant")
        await wait_for(pilot, lambda: isinstance(app.screen, NewVariantForm), what="variant form")
        variant_form = app.screen
        variant_form.query_one("#variant-name", Input).value = "json-t02"
        variant_form.query_one("#temperature", Input).value = "0.2"
        variant_form.query_one("#max-tokens", Input).value = "16"
        variant_form.query_one("#json-schema", Checkbox).value = True
        assert "on-call SRE" in variant_form.query_one("#system-prompt", TextArea).text
        await pilot.click("#ok")
        await wait_for(pilot, lambda: app.screen is form, what="back to the form")
        await settle(pilot)
        b = form.query_one("#variant-b", Select)
        created = [v for v in form.choices.variants if v.name == "json-t02"][0]
        assert b.value == created.id
        assert created.temperature == 0.2 and created.max_tokens == 16
        assert created.json_schema["required"] == ["severity", "root_cause", "first_step"]


async def test_form_refuses_the_same_variant_twice_and_enables_split_settings(
        workspace, make_app):
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_new_experiment(pilot)
        assert form.query_one("#weight", Input).disabled
        form.query_one("#mode", Select).value = "split"
        await pilot.pause()
        assert not form.query_one("#weight", Input).disabled
        assert form.query_one("#canary", Input).disabled and form.query_one("#stages", Input).disabled
        form.query_one("#mode", Select).value = "canary"
        await pilot.pause()  # a staged canary: its share follows the stages, not the weight
        assert form.query_one("#weight", Input).disabled
        assert not form.query_one("#canary", Input).disabled
        assert not form.query_one("#stages", Input).disabled
        assert not form.query_one("#max-p95", Input).disabled
        form.query_one("#stages", Input).value = "fixed"
        await pilot.pause()
        assert not form.query_one("#weight", Input).disabled
        assert form.query_one("#max-p95", Input).disabled
        form.query_one("#variant-b", Select).value = form.query_one("#variant-a", Select).value
        await pilot.pause()
        await pilot.click("#create")
        await pilot.pause()
        assert app.screen is form
        assert "different variants" in str(form.query_one("#dialog-error").render())


async def test_form_creates_a_staged_canary_with_its_schedule(workspace, make_app):
    from workbench.store import Store

    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_new_experiment(pilot)
        form.query_one("#mode", Select).value = "canary"
        await pilot.pause()
        form.query_one("#stages", Input).value = "navaflow"
        form.query_one("#max-p95", Input).value = "900"
        form.query_one("#min-b", Input).value = "0"
        await pilot.pause()
        await pilot.click("#create")
        await pilot.pause()
        assert app.screen is form and "min_b" in str(form.query_one("#dialog-error").render())
        form.query_one("#min-b", Input).value = "10"
        form.query_one("#max-unsafe", Input).value = "0.1"
        button = form.query_one("#create")  # a button ignores clicks for 0.2 s after a press
        await wait_for(pilot, lambda: not button.has_class("-active"), what="the button")
        await pilot.click("#create")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewExperimentForm),
                       what="the form to close")
    store = Store(workspace / "workbench.db")
    exp = store.list_experiments()[-1]
    store.close()
    assert exp.mode == "canary"
    assert exp.canary_schedule["stages"] == [10.0, 50.0, 100.0]
    assert exp.canary_schedule["max_p95_ms"] == 900.0 and exp.canary_schedule["min_b"] == 10
    assert exp.canary_schedule["max_safety_rate"] == 0.1


async def test_opening_an_experiment_shows_its_stored_runs(tmp_path, make_app):
    from screen_support import prefilled_workspace

    root = prefilled_workspace(tmp_path)
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.view.stored == 5 and screen.view.planned == 6
        text = screen_text(app)
        assert "paused · 5/6 runs · 1 run(s) to go" in text
        assert "✗ error" in text and "· pending" in text
        await pilot.press("down", "down")
        await settle(pilot)
        assert "worker timed out" in screen_text(app)


def test_word_diff_highlights_only_the_words_that_differ():
    from screens.widgets.side_by_side import ONLY_IN_A, ONLY_IN_B, word_diff

    left, right = word_diff("Severity SEV-1: restart  the pool", "Severity SEV-2: restart the pool")
    assert left.plain == "Severity SEV-1: restart  the pool"
    marked_a = [left.plain[s.start:s.end] for s in left.spans if s.style == ONLY_IN_A]
    marked_b = [right.plain[s.start:s.end] for s in right.spans if s.style == ONLY_IN_B]
    assert marked_a == ["SEV-1:"] and marked_b == ["SEV-2:"]


def test_coalescer_batches_fast_updates_and_loses_none():
    import threading
    import time

    from screens.replay_feed import Coalescer

    batches, done = [], threading.Event()
    feed = Coalescer(batches.append, interval_s=0.05)
    for i in range(500):
        feed.push(i)
    time.sleep(0.2)
    for i in range(500, 510):
        feed.push(i)
        time.sleep(0.001)
    feed.close()
    assert [x for batch in batches for x in batch] == list(range(510))
    assert len(batches) <= 6


async def test_a_live_update_repaints_its_row_and_the_selected_answers(tmp_path, make_app):
    from screen_support import prefilled_workspace

    from screens.experiments import LiveReplay
    from screens.replay_feed import ReplayTick, ReplayUpdate

    app = make_app(prefilled_workspace(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        view = screen.view
        screen.live[view.exp.id] = LiveReplay(base=view.stored)
        row = list(view.rows.values())[2]
        await pilot.press("down", "down")
        run = {"item_id": row.item_id, "arm": "A", "output": "SEV-3: batch node restart",
               "latency_ms": 777.0, "severity_pred": "SEV-3", "severity_ok": 1}
        screen.post_message(ReplayUpdate(view.exp.id, [ReplayTick(1, 1, 0.0, 0, 0, run)]))
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "inc-003  ✓ 777 ms" in text and "SEV-3: batch node restart" in text
        assert "100% running · 6/6 runs" in text


def staged_canary(root, *, blocks: int | None, b_latency_ms: float = 90.0, **schedule) -> None:
    """A 6-item staged canary (two tiny variants) with its first ``blocks`` blocks of runs
    stored as the replay would route them (None: the whole rollout)."""
    from workbench.experiments.canary import CanarySchedule, plan_canary
    from workbench.workspace import open_workspace

    variants = prepare(root, 6)
    opened = open_workspace(root)
    store = opened.store
    try:
        ds = store.list_datasets()[0]["id"]
        exp = store.create_experiment(
            "staged", ds, {"A": variants["tiny-a"], "B": variants["tiny-b"]}, mode="canary",
            canary_schedule=CanarySchedule(stages=(50.0, 100.0), **schedule).to_dict())
        served = 0
        while (blocks is None or served < blocks) and (
                block := plan_canary(store, store.get_experiment(exp.id)).next_block):
            for item, arm in block:
                store.record_run({"experiment_id": exp.id, "item_id": item.id, "arm": arm,
                                  "variant_id": variants["tiny-a" if arm == "A" else "tiny-b"],
                                  "output": "SEV-2",
                                  "latency_ms": b_latency_ms if arm == "B" else 90.0})
            served += 1
    finally:
        opened.close()


async def test_k_shows_a_staged_canary_rollout_with_its_rollback(tmp_path, make_app):
    root = tmp_path / "ws"  # B is slow: 900 ms > the 500 ms limit
    staged_canary(root, blocks=None, b_latency_ms=900.0, check_every=2, min_b=1)
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("k")
        from screens.canary_dialog import CanaryDialog

        await wait_for(pilot, lambda: isinstance(app.screen, CanaryDialog), what="the canary")
        text = screen_text(app)
        assert "ROLLBACK after request" in text and "p95 latency > 500 ms" in text
        assert "rolled back" in text
        table = app.screen.query_one("#canary-checks")
        assert table.row_count >= 1 and "ROLLBACK" in [str(c) for c in table.get_row_at(
            table.row_count - 1)]
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CanaryDialog)


async def test_a_staged_canary_half_way_counts_one_run_per_item(tmp_path, make_app):
    root = tmp_path / "ws"
    staged_canary(root, blocks=1, check_every=2, min_b=1)  # only the first block has run
    app = make_app(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "2/6 runs · 4 run(s) to go" in screen_text(app)  # not 2/4: the whole rollout
