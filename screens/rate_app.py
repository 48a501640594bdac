"""The rating-only app a remote rater's browser runs (``workbench serve-rating`` starts one per
browser connection): its only screen is the Rate screen, locked on the session that the link's
token grants. No other screen, no command palette, no chooser.

``python -m screens.rate_app --workspace DIR`` reads the token from $WORKBENCH_RATING_TOKEN (so
it never shows in a process list). A missing, wrong or withdrawn token gets an app that says
only that the link is not valid: nothing of any experiment is read or sent.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from types import SimpleNamespace

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

TOKEN_ENV = "WORKBENCH_RATING_TOKEN"
INVALID = ("This rating link is not valid (or it was withdrawn). "
           "Ask the person who runs the study for a new one.")


class InvalidLinkApp(App[int]):
    """What a browser with a bad token sees: one sentence, nothing else."""

    TITLE = "Blind rating"
    ENABLE_COMMAND_PALETTE = False

    def compose(self) -> ComposeResult:
        yield Static(INVALID, id="invalid-link")


class RateApp(App[int]):
    """One locked Rate screen on ``rate=(experiment id, rater)``."""

    TITLE = "Blind rating"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("question_mark", "help", "Help", key_display="?")]

    def __init__(self, db_path: Path, rate: tuple[int, str]):
        super().__init__()
        self.db_path = Path(db_path)
        self.settings = SimpleNamespace(rate=rate)
        self.sub_title = ""

    def on_mount(self) -> None:
        from .rating import RateScreen

        self.push_screen(RateScreen(locked=True))

    def open_store(self):
        """A Store for the calling worker thread."""
        from workbench.store import Store

        return Store(self.db_path)

    def report_error(self, title: str, error: BaseException | str) -> None:
        from .format import describe_error

        message = error if isinstance(error, str) else describe_error(error)
        self.notify(message, title=title, severity="error", timeout=12)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        from textual.screen import ModalScreen

        if action == "help" and isinstance(self.screen, ModalScreen):
            return False
        return True

    def action_help(self) -> None:
        from .help import HelpScreen

        self.push_screen(HelpScreen.for_screen(self.screen))


def build_app(workspace: str | Path, token: str | None) -> App:
    """The app for ``token``: the locked Rate screen of its grant, or the invalid-link app."""
    from workbench.config import resolve_workspace
    from workbench.rating.tokens import resolve_token
    from workbench.store import Store

    db_path = resolve_workspace(str(workspace)).db_path
    if not token or not db_path.is_file():
        return InvalidLinkApp()
    with Store(db_path) as store:
        grant = resolve_token(store, token)
    if grant is None:
        return InvalidLinkApp()
    return RateApp(db_path, (grant.experiment_id, grant.rater))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m screens.rate_app")
    parser.add_argument("--workspace", required=True)
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, None)
    result = build_app(args.workspace, token).run()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
