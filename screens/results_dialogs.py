"""The Results screen's confirm dialog: mark an experiment completed with a winner."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button

from .widgets.safe import Label, Static

SUGGESTED = {"promote B": "B", "keep A": "A"}


class WinnerDialog(ModalScreen[str | None]):
    """Returns 'A', 'B' or 'none' (no winner); Escape returns None (nothing changes)."""

    BINDINGS = [Binding("a", "answer('A')", "A wins"), Binding("b", "answer('B')", "B wins"),
                Binding("n", "answer('none')", "No winner"),
                Binding("escape", "answer(None)", "Cancel")]

    def __init__(self, exp_id: int, decision: str | None):
        super().__init__(classes="dialog")
        self.exp_id, self.decision = exp_id, decision

    def compose(self) -> ComposeResult:
        verdict = f"The verdict says: {self.decision}." if self.decision else "There is no verdict."
        with Vertical(classes="dialog-body"):
            yield Label(f"Complete experiment {self.exp_id}?", classes="dialog-title")
            yield Static(f"{verdict} Marking it completed records the winner; a completed "
                         "experiment is not replayed again. Keys: a, b, n, Esc cancels.")
            with Horizontal(classes="dialog-buttons"):
                yield Button("A wins", id="winner-A")
                yield Button("B wins", id="winner-B")
                yield Button("No winner", id="winner-none")
                yield Button("Cancel", variant="primary", id="winner-cancel")

    def on_mount(self) -> None:
        suggested = SUGGESTED.get(self.decision or "", "none")
        self.query_one(f"#winner-{suggested}", Button).variant = "success"
        self.query_one(f"#winner-{suggested}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        answer = event.button.id.removeprefix("winner-")
        self.dismiss(None if answer == "cancel" else answer)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
