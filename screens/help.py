"""`?`: every key of the current screen, with what the screen is for."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from .widgets.safe import Label, Static, Text


def declared_keys(node) -> set[str]:
    """Keys bound by the workbench's own classes of ``node`` (not Textual's built-ins)."""
    keys: set[str] = set()
    for cls in type(node).__mro__:
        if cls.__module__.startswith("screens"):
            for binding in cls.__dict__.get("BINDINGS", []):
                key = binding.key if isinstance(binding, Binding) else binding[0]
                keys.update(k.strip() for k in key.split(","))
    return keys


GROUPS = ("this screen", "focused widget", "everywhere", "built in")


def binding_rows(screen: Screen) -> list[tuple[str, str, str]]:
    """(group, key, description) for every active binding of ``screen``, screen keys first."""
    app = screen.app
    own = {id(screen): declared_keys(screen), id(app): declared_keys(app)}
    rows = []
    for key, active in screen.active_bindings.items():
        binding, node = active.binding, active.node
        if node is screen or node is app:
            mine = key in own[id(node)]
            group = ("this screen" if node is screen else "everywhere") if mine else "built in"
        elif isinstance(node, Widget):
            group = "focused widget"
        else:
            continue
        description = (binding.tooltip or binding.description
                       or binding.action.replace("_", " ").capitalize())
        rows.append((group, app.get_key_display(binding), description))
    rows.sort(key=lambda row: GROUPS.index(row[0]))
    return rows


def paragraphs(text: str) -> Text:
    """Blank-line separated paragraphs, each reflowed to the dialog's width."""
    parts = [" ".join(p.split()) for p in text.strip().split("\n\n") if p.strip()]
    return Text("\n\n".join(parts))


class HelpScreen(ModalScreen[None]):
    """A modal listing the keys of the screen below it."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, title: str, about: str, rows: list[tuple[str, str, str]]):
        super().__init__(classes="dialog")
        self.title_text, self.about, self.rows = title, about, rows

    @classmethod
    def for_screen(cls, screen: Screen) -> "HelpScreen":
        title = getattr(screen, "TITLE", None) or type(screen).__name__
        return cls(f"Keys: {title}", getattr(screen, "HELP", ""), binding_rows(screen))

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("Key", style="bold cyan", no_wrap=True)
        table.add_column("Action")
        table.add_column("Where", style="dim", no_wrap=True)
        for group, key, description in self.rows:
            table.add_row(key, description, group)
        with Vertical(classes="dialog-body help-body"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-scroll"):
                yield Static(table, id="help-keys")
                if self.about:
                    yield Static(paragraphs(self.about), classes="help-about")
            yield Static("Esc or ? closes this help.  Ctrl+P opens the command palette.",
                         classes="dialog-note")

    def action_close(self) -> None:
        self.dismiss(None)
