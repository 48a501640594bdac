"""The browser rater's app (screens.rate_app) in Textual's pilot: one locked Rate screen, no way
to another screen or experiment, and nothing at all for a wrong or missing token."""

from __future__ import annotations

import time

import pytest
from screen_support import screen_text
from support import experiment_with_runs

from screens.rate_app import INVALID, InvalidLinkApp, RateApp, build_app
from screens.widgets.side_by_side import OutputPane


@pytest.fixture
def linked_ws(tmp_path):
    """A workspace with a 4-item experiment and a link token for ana."""
    from workbench.rating.tokens import issue_token
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root, seed=False)
    try:
        exp = experiment_with_runs(opened.store, 4, name="remote")
        experiment_with_runs(opened.store, 2, name="other")  # another experiment: unreachable
        token = issue_token(opened.store, exp.id, "ana")
    finally:
        opened.close()
    return root, exp.id, token


async def idle(pilot, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    await pilot.pause(0.1)
    while any(w.is_running for w in pilot.app.workers):
        assert time.monotonic() < deadline, "workers did not finish"
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def stored(root) -> list[dict]:
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        return store.rows("""SELECT s.rater, s.experiment_id, r.choice, r.notes FROM ratings r
                             JOIN rating_sessions s ON s.id = r.session_id ORDER BY r.id""")


async def test_the_locked_screen_rates_only_its_own_session(linked_ws):
    root, exp_id, token = linked_ws
    app = build_app(root, token)
    assert isinstance(app, RateApp)
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(pilot)
        text = screen_text(app)
        assert "Blind rating" in text and f"Experiment #{exp_id}" in text and "rater ana" in text
        for word in ("Models", "Datasets", "Results", "Fine-tune", "Experiments", "Change"):
            assert word not in text
        for key in ("3", "4", "5", "6", "7", "8", "9", "0", "c", "ctrl+p"):
            await pilot.press(key)
            await idle(pilot)
            assert type(app.screen).__name__ == "RateScreen" and len(app.screen_stack) == 2
        assert app.screen.query_one("#rate-chooser").display is False
        await pilot.press("1", "enter")
        await idle(pilot)
        assert "1 / 4 rated" in screen_text(app)
        await pilot.press("question_mark")
        await idle(pilot)
        help_text = " ".join(str(app.screen.query_one(".help-about").content).split())
        assert "your own rating session" in help_text and "Ctrl+P" not in help_text
    assert stored(root) == [{"rater": "ana", "experiment_id": exp_id, "choice": "1", "notes": None}]


@pytest.mark.parametrize("token", [None, "", "not-a-real-token", "x" * 500])
async def test_a_wrong_or_missing_token_gets_only_a_sentence(linked_ws, token):
    root, _, _ = linked_ws
    app = build_app(root, token)
    assert isinstance(app, InvalidLinkApp)
    async with app.run_test(size=(100, 30)) as pilot:
        await idle(pilot)
        text = " ".join(screen_text(app).split())
        assert "This rating link is not valid" in text
        assert "queue backlog" not in text and "answer" not in text.replace(INVALID, "")
        assert not app.query(OutputPane)


async def test_a_withdrawn_link_stops_working(linked_ws):
    from workbench.rating.tokens import issue_token
    from workbench.store import Store

    root, exp_id, token = linked_ws
    with Store(root / "workbench.db") as store:
        new = issue_token(store, exp_id, "ana")  # a new link for ana withdraws the old one
    assert isinstance(build_app(root, token), InvalidLinkApp)
    assert isinstance(build_app(root, new), RateApp)
