"""Widgets that show text as text: never parsed as markup, control characters made visible.

Names, ids, dataset texts and model answers come from files and models the operator does not
control. Parsed as Textual markup, ``[/oops]`` is an exception and ``[link=…]`` a live link;
written raw, an ESC sequence can clear the screen or retitle the terminal. The screens import
``Static``, ``Label`` and ``DataTable`` from here instead of ``textual.widgets``; ``plain()``
wraps any other string shown to the operator (Select options, titles).
"""

from __future__ import annotations

from rich import text as rich_text
from rich.markup import escape as escape_rich
from textual import widgets
from textual.content import Content

from workbench.terminal_text import safe_text


class Text(rich_text.Text):
    """A Rich Text whose strings (given or appended) have their control characters escaped."""

    def __init__(self, text: str = "", *args, **kwargs):
        super().__init__(safe_text(text, multiline=True), *args, **kwargs)

    def append(self, text, style=None):
        if isinstance(text, str):
            text = safe_text(text, multiline=True)
        return super().append(text, style)


def plain(value: object, *, multiline: bool = True) -> Content:
    """``value`` as literal text: no markup, control characters escaped."""
    if isinstance(value, (Content, rich_text.Text)):
        return value
    return Content(safe_text(value, multiline=multiline))


def _visual(content):
    return plain(content) if isinstance(content, str) else content


class _Literal:
    """Strings given to the widget or its ``update`` are literal text (mixed into Static, Label)."""

    def __init__(self, content="", **kwargs):
        kwargs["markup"] = False
        super().__init__(_visual(content), **kwargs)

    def update(self, content="", *, layout: bool = True) -> None:
        super().update(_visual(content), layout=layout)


class Static(_Literal, widgets.Static):
    """A Static whose strings are literal text."""


class Label(_Literal, widgets.Label):
    """A Label whose strings are literal text."""


def _cell(value):
    # DataTable parses string cells as Rich markup; escaped, they stay strings (get_row works).
    return escape_rich(safe_text(value, multiline=False)) if isinstance(value, str) else value


class DataTable(widgets.DataTable):
    """A DataTable whose string cells and labels are literal text."""

    def add_row(self, *cells, height: int | None = 1, key=None, label=None):
        return super().add_row(*map(_cell, cells), height=height, key=key,
                               label=_cell(label) if label is not None else None)

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, _cell(value), update_width=update_width)


def _options(options):
    return [(plain(prompt, multiline=False) if isinstance(prompt, str) else prompt, value)
            for prompt, value in options]


class Select(widgets.Select):
    """A Select whose option prompts are literal text (they hold names from the workspace)."""

    def __init__(self, options=(), **kwargs):
        super().__init__(_options(options), **kwargs)

    def set_options(self, options) -> None:
        super().set_options(_options(options))
