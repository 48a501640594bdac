"""Modal dialogs shared by the screens: a small form, a message, a yes/no question."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input
from .widgets.safe import Label, Static


@dataclass
class Field:
    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    type: str = "text"  # "text", "integer" or "number" (Input types)


class FormDialog(ModalScreen[dict | None]):
    """A few labelled inputs; Enter or OK returns {name: text}, Escape returns None."""

    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[Field], *, ok: str = "OK",
                 validate: Callable[[dict], str | None] | None = None, note: str = ""):
        super().__init__(classes="dialog")
        self.title_text = title
        self.fields = fields
        self.ok_label = ok
        self.validate = validate
        self.note = note

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-body"):
            yield Label(self.title_text, classes="dialog-title")
            if self.note:
                yield Static(self.note, classes="dialog-note")
            for field in self.fields:
                yield Label(field.label)
                yield Input(field.value, placeholder=field.placeholder, type=field.type,
                            id=f"field-{field.name}")
            yield Static("", id="dialog-error", classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok_label, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def values(self) -> dict:
        return {f.name: self.query_one(f"#field-{f.name}", Input).value.strip() for f in self.fields}

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        values = self.values()
        problem = self.validate(values) if self.validate else None
        if problem:
            self.query_one("#dialog-error", Static).update(problem)
            return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


class MessageDialog(ModalScreen[None]):
    """A titled, scrollable message (an error, an import report); any close key dismisses it."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, title: str, body: RenderableType, *, error: bool = False):
        super().__init__(classes="dialog" + (" -error" if error else ""))
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-body"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Static(self.body, id="dialog-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; Escape means no."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, title: str, question: str, *, yes: str = "Yes", no: str = "No"):
        super().__init__(classes="dialog")
        self.title_text, self.question, self.yes, self.no = title, question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-body"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.question)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.yes, variant="error", id="yes")
                yield Button(self.no, variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
