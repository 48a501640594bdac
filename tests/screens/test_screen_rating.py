"""The Rate screen: a blind session by keys (scores, note, skip, undo, resume), several raters,
counterbalanced sides, and nothing on screen that identifies a variant."""

from __future__ import annotations

import re

import pytest
from screen_support import prefilled_workspace, screen_text, settle, steady, wait_for
from support import experiment_with_runs
from textual.widgets import Input, Select

from screens.app import create_app
from screens.widgets.side_by_side import OutputPane

ITEMS = 8
LATENCY = {"A": 48213.0, "B": 51977.0}  # distinctive numbers that must never reach the screen
TOKENS = {"A": (7391, 1187), "B": (8264, 1429)}


@pytest.fixture
def rating_ws(tmp_path):
    """A workspace with one shadow experiment of ITEMS items answered by A ('alpha …') and B
    ('omega …'); runs carry distinctive latencies and token counts."""
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root, seed=False)
    try:
        store = opened.store
        exp = experiment_with_runs(store, ITEMS, name="ident")
        for arm in ("A", "B"):
            store.db.execute(
                "UPDATE runs SET latency_ms = ?, prompt_tokens = ?, completion_tokens = ?, "
                "decode_tps = 33.3 WHERE arm = ?", [LATENCY[arm], *TOKENS[arm], arm])
    finally:
        opened.close()
    return root, exp.id


def shown(app) -> tuple[str, str]:
    return tuple(app.screen.query_one(f"#response-{s}", OutputPane).text.plain for s in "12")


def left_arm(app) -> str:
    """Which arm is response 1 (the fixture's answers say it: alpha = A, omega = B)."""
    return "A" if shown(app)[0].startswith("alpha") else "B"


def ratings(root, rater: str) -> list[dict]:
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        return store.rows("""SELECT r.* FROM ratings r JOIN rating_sessions s ON s.id = r.session_id
                             WHERE s.rater = ? ORDER BY r.position""", [rater])


def balanced_prefixes(rows: list[dict]) -> bool:
    """In every prefix of a rater's ratings each arm is response 1 at most once more."""
    lead = 0
    for row in rows:
        lead += 1 if row["left_arm"] == "A" else -1
        if abs(lead) > 1:
            return False
    return True


async def press(pilot, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


async def test_a_full_session_by_keys_with_undo_and_resume(rating_ws, make_app):
    root, exp_id = rating_ws
    app = make_app(root, seed_workspace=False, start_screen="rate", rate=(exp_id, "ana"))
    sides = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "0 / 8 rated" in screen_text(app)
        await press(pilot, "3")  # a score typed without a: a hint, not the Experiments screen
        assert type(app.screen).__name__ == "RateScreen"
        assert any("press a" in n.message for n in app._notifications)
        sides.append(left_arm(app))
        await press(pilot, "a", "4", "5", "3", "2")  # scores of responses 1 and 2, then...
        assert "accuracy  4" in screen_text(app)
        await press(pilot, "1", "enter")  # ...prefer response 1 and store
        sides.append(left_arm(app))
        await press(pilot, "t", "n")
        await pilot.press(*"same fix")
        await press(pilot, "enter", "enter")  # keep the note, store the tie
        sides.append(left_arm(app))
        await press(pilot, "s")  # skip: stored at once
        fourth = shown(app)
        await press(pilot, "2", "enter")
        assert "3 / 8 rated · 1 skipped" in screen_text(app)  # a skip is not a rating
        await press(pilot, "u")
        assert shown(app) == fourth and "2 / 8 rated · 1 skipped" in screen_text(app)

    rows = ratings(root, "ana")
    assert [r["choice"] for r in rows] == ["1", "tie", "skip"]
    assert [r["left_arm"] for r in rows] == sides
    first = rows[0]
    assert (first["accuracy_1"], first["safety_1"], first["accuracy_2"], first["safety_2"]) \
        == (4, 5, 3, 2)
    assert first["preferred_arm"] == sides[0] and first["seconds"] is not None
    assert rows[1]["notes"] == "same fix" and rows[1]["preferred_arm"] is None

    app = make_app(root, seed_workspace=False, start_screen="rate", rate=(exp_id, "ana"))
    async with app.run_test(size=(120, 40)) as pilot:  # resumes at the undone pair
        await settle(pilot)
        assert shown(app) == fourth and "2 / 8 rated · 1 skipped" in screen_text(app)
        for _ in range(ITEMS - 3):
            await press(pilot, "2", "enter")
        text = screen_text(app)
        assert "Session complete" in text and "7 / 8 rated · 1 skipped" in text
        assert "Ctrl+P, then Results" in text
        for key in "123456":  # after the last pair too, digits never switch screens
            await press(pilot, key)
            assert type(app.screen).__name__ == "RateScreen"
    rows = ratings(root, "ana")
    assert len(rows) == ITEMS and balanced_prefixes(rows)
    for row in rows[3:]:
        assert row["preferred_arm"] == row["right_arm"]


async def test_two_raters_rate_the_same_experiment_independently(rating_ws, make_app):
    root, exp_id = rating_ws
    app = make_app(root, seed_workspace=False, start_screen="rate")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#rate-experiment", Select).value == exp_id
        for rater, count in (("ana", 3), ("bob", 5)):
            name = app.screen.query_one("#rate-rater", Input)
            name.value = ""
            name.focus()
            await pilot.press(*rater)
            await press(pilot, "enter")
            assert f"rater {rater}" in screen_text(app)
            for _ in range(count):
                await press(pilot, "1", "enter")
            await press(pilot, "c")  # back to the chooser; the name is remembered
            assert app.screen.query_one("#rate-rater", Input).value == rater
        app.screen.query_one("#rate-rater", Input).value = "ana"
        await pilot.click("#rate-start")
        await settle(pilot)
        assert "3 / 8 rated" in screen_text(app)  # ana's own session, where she stopped
    ana, bob = ratings(root, "ana"), ratings(root, "bob")
    assert len(ana) == 3 and len(bob) == 5
    assert balanced_prefixes(ana) and balanced_prefixes(bob)
    assert all(r["session_id"] != bob[0]["session_id"] for r in ana)


def visible_and_hidden_text(app) -> str:
    """Everything the Rate screen could show: the painted screen, every widget's text and titles
    (hidden ones too), the experiment list, the footer and the notifications."""
    parts = [screen_text(app)]
    for widget in app.screen.walk_children():
        parts += [str(widget.border_title or ""), str(widget.border_subtitle or "")]
        if isinstance(widget, OutputPane):
            parts.append(widget.text.plain)
        elif isinstance(widget, Select):
            parts += [str(prompt) for prompt, _ in widget._options]
        elif hasattr(widget, "content"):
            parts.append(str(widget.content))
    parts += [n.message + " " + (n.title or "") for n in app._notifications]
    return "\n".join(parts)


IDENTITY = [
    re.compile(r"ident-(prod|cand)"),  # variant names
    re.compile(r"\bfake\b"),  # model id
    re.compile(r"\b(arm|variant|model|side)\s*[:=]?\s*[AB]\b", re.I),
    re.compile(r"\b(response|answer)\s+[AB]\b", re.I),
    re.compile(r"(^|\s)[AB]\s*[·:]"),
    re.compile(r"\b(production|candidate|baseline|prod)\b", re.I),
    re.compile(r"48213|51977|48\.2 s|52\.0 s"),  # latencies
    re.compile(r"7391|1187|8264|1429|8578|9693|33\.3"),  # token counts and tok/s
    re.compile(r"\b(latency|tokens?|tok/s|ms)\b", re.I),
]


def assert_no_identity(text: str) -> None:
    for pattern in IDENTITY:
        found = pattern.search(text)
        assert found is None, f"{pattern.pattern!r} revealed {found.group(0)!r} in:\n{text}"


async def test_nothing_on_the_rate_screen_identifies_a_variant(rating_ws, make_app):
    root, exp_id = rating_ws
    app = make_app(root, seed_workspace=False, start_screen="rate")
    async with app.run_test(size=(120, 40)) as pilot:
        app.sub_title = "ws"  # the tmp path is named after this test
        await settle(pilot)
        assert_no_identity(visible_and_hidden_text(app))  # the chooser
        app.screen.query_one("#rate-rater", Input).value = "ana"
        await pilot.click("#rate-start")
        await settle(pilot)
        for keys in (("a", "4"), ("3", "5", "2"), ("t",), ("enter",), ("1",), ("n",)):
            await press(pilot, *keys)
            assert_no_identity(visible_and_hidden_text(app))
        await press(pilot, "escape")
        for _ in range(ITEMS - 1):
            await press(pilot, "2", "enter")
        await wait_for(pilot, lambda: "Session complete" in screen_text(app), what="the end")
        assert_no_identity(visible_and_hidden_text(app))
        await press(pilot, "question_mark")
        assert_no_identity(screen_text(app))


async def test_errors_are_notifications_and_enter_needs_a_choice(tmp_path, rating_ws, make_app):
    from workbench.workspace import open_workspace

    root, exp_id = rating_ws
    opened = open_workspace(root, seed=False)
    try:  # an experiment with no answers at all: nothing to rate
        dataset = opened.store.list_datasets()[0]["id"]
        variants = opened.store.list_variants()
        empty = opened.store.create_experiment("empty", dataset, {"A": variants[0].id,
                                                                  "B": variants[1].id})
    finally:
        opened.close()
    app = make_app(root, seed_workspace=False, start_screen="rate", rate=(empty.id, "ana"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        messages = " ".join(n.message for n in app._notifications)
        assert "nothing to rate yet" in messages
        assert app.screen.query_one("#rate-chooser").display  # back on the chooser
        app.screen.query_one("#rate-experiment", Select).value = exp_id
        app.screen.query_one("#rate-rater", Input).value = "ana"
        await pilot.click("#rate-start")
        await settle(pilot)
        await press(pilot, "enter")
        assert any("Choose first" in n.message for n in app._notifications)
        assert ratings(root, "ana") == []


def rate_snapshot_workspace(tmp_path):
    """The snapshot workspace with ana's session drawn from a fixed seed."""
    from workbench.rating.sessions import open_session
    from workbench.workspace import open_workspace

    root = prefilled_workspace(tmp_path)
    opened = open_workspace(root, seed=False)
    try:
        open_session(opened.store, opened.store.list_experiments()[0].id, "ana", seed=3)
    finally:
        opened.close()
    return root


def test_rate_screen_snapshot(snap_compare, tmp_path):
    app = create_app(rate_snapshot_workspace(tmp_path), start_screen="rate", rate=(1, "ana"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady("1", "a", "4", "5"))


async def test_both_bad_reference_answer_and_help(rating_ws, make_app):
    from workbench.rating.settings import update_settings
    from workbench.store import Store

    root, exp_id = rating_ws
    app = make_app(root, seed_workspace=False, start_screen="rate", rate=(exp_id, "ana"))
    async with app.run_test(size=(120, 40)) as pilot:  # default: no reference answer
        await settle(pilot)
        incident = app.screen.query_one("#rate-incident", OutputPane).text.plain
        assert "queue backlog" in incident and "Reference answer" not in incident
        assert "SEV-2" not in incident
        await press(pilot, "b", "enter")
        await press(pilot, "question_mark")
        about = " ".join(str(app.screen.query_one(".help-about").content).split())
        assert "number keys only rate: they never switch screens" in about
    with Store(root / "workbench.db") as store:
        update_settings(store, exp_id, show_reference=True)
    app = make_app(root, seed_workspace=False, start_screen="rate", rate=(exp_id, "ana"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        incident = app.screen.query_one("#rate-incident", OutputPane).text.plain
        assert "Reference answer (from the dataset)" in incident and "severity: SEV-2" in incident
    rows = ratings(root, "ana")
    assert [(r["choice"], r["preferred_arm"]) for r in rows] == [("both_bad", None)]
