"""Two answers side by side, the words that differ highlighted (difflib over words)."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.strip import Strip
from textual.widget import Widget

from workbench.terminal_text import safe_text

from .safe import Text, plain

ONLY_IN_A = "bold on #5f1f1f"
ONLY_IN_B = "bold on #1f4f2a"
_TOKEN = re.compile(r"\S+\s*")


def _tokens(text: str) -> tuple[str, list[str]]:
    """Leading whitespace and the words of ``text``, each word keeping its trailing space."""
    stripped = text.lstrip()
    return text[: len(text) - len(stripped)], _TOKEN.findall(stripped)


def word_diff(a: str, b: str) -> tuple[Text, Text]:
    """Both texts as Rich Text, words only in A and only in B highlighted."""
    lead_a, words_a = _tokens(a)
    lead_b, words_b = _tokens(b)
    matcher = SequenceMatcher(None, [w.rstrip() for w in words_a], [w.rstrip() for w in words_b],
                              autojunk=False)
    left, right = Text(lead_a), Text(lead_b)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        chunk_a, chunk_b = "".join(words_a[a0:a1]), "".join(words_b[b0:b1])
        if op == "equal":
            left.append(chunk_a)
            right.append(chunk_b)
            continue
        if chunk_a:
            left.append(chunk_a.rstrip(), style=ONLY_IN_A)
            left.append(chunk_a[len(chunk_a.rstrip()):])
        if chunk_b:
            right.append(chunk_b.rstrip(), style=ONLY_IN_B)
            right.append(chunk_b[len(chunk_b.rstrip()):])
    return left, right


def run_text(run: dict | None, planned: bool) -> Text | None:
    """What a pane shows instead of an answer (None when there is an answer to diff)."""
    if not planned:
        return Text("Not routed to this arm (split/canary traffic).", style="dim italic")
    if run is None:
        return Text("Waiting for this arm's answer…", style="dim italic")
    if run.get("error"):
        return Text(f"Failed: {safe_text(run['error'], multiline=True)}", style="red")
    return None


class OutputPane(Widget, can_focus=True):
    """A fixed-size pane showing one answer, wrapped once per change and scrolled by line.

    Its size never depends on the text, so showing another answer repaints two panes and never
    reflows the screen (what keeps key presses fast while a replay streams in).
    """

    BINDINGS = [Binding("up", "scroll(-1)", "Scroll up", show=False),
                Binding("down", "scroll(1)", "Scroll down", show=False),
                Binding("pageup", "scroll(-10)", "Page up", show=False),
                Binding("pagedown", "scroll(10)", "Page down", show=False)]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.text = Text("")
        self.top = 0
        self._lines: list[Strip] = []
        self._wrapped_at = -1

    def show(self, text: Text) -> None:
        self.text, self.top, self._wrapped_at = text, 0, -1
        self._describe_position()
        self.refresh()

    def _describe_position(self) -> None:
        """'1-12 of 30 lines' under the pane when the answer is longer than the pane."""
        if not self.content_region.width:
            return
        total, height = len(self.lines()), self.content_region.height
        subtitle = f"{self.top + 1}-{min(total, self.top + height)} of {total} lines" \
            if total > height else ""
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    def lines(self) -> list[Strip]:
        width = self.content_region.width
        if width != self._wrapped_at:
            console = self.app.console
            rendered = console.render_lines(self.text, console.options.update_width(max(width, 1)),
                                            pad=True)
            self._lines = [Strip(line, width) for line in rendered]
            self._wrapped_at = width
        return self._lines

    def render_line(self, y: int) -> Strip:
        lines = self.lines()
        index = self.top + y
        strip = lines[index] if index < len(lines) else Strip.blank(self.content_region.width)
        return strip.apply_style(self.rich_style)

    def action_scroll(self, lines: int) -> None:
        most = max(0, len(self.lines()) - self.content_region.height)
        top = min(max(0, self.top + lines), most)
        if top != self.top:
            self.top = top
            self._describe_position()
            self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._describe_position()

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self.action_scroll(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.action_scroll(-3)


class SideBySide(Horizontal):
    """A's answer on the left, B's on the right."""

    def compose(self) -> ComposeResult:
        for arm in ("a", "b"):
            yield OutputPane(id=f"output-{arm}", classes="output-pane panel")

    def show(self, titles: tuple[str, str], runs: tuple[dict | None, dict | None],
             planned: tuple[bool, bool]) -> None:
        """Show two runs (dicts with output/error) under their titles."""
        texts = [run_text(run, plan) for run, plan in zip(runs, planned)]
        outputs = [safe_text((run or {}).get("output") or "", multiline=True) for run in runs]
        if texts[0] is None and texts[1] is None:
            texts = list(word_diff(outputs[0], outputs[1]))
        texts = [text if text is not None else Text(output) for text, output in zip(texts, outputs)]
        for arm, title, text in zip(("a", "b"), titles, texts):
            pane = self.query_one(f"#output-{arm}", OutputPane)
            pane.border_title = plain(title, multiline=False)
            pane.show(text)

    def clear(self, message: str = "") -> None:
        for arm in ("a", "b"):
            pane = self.query_one(f"#output-{arm}", OutputPane)
            pane.border_title = arm.upper()
            pane.show(Text(message, style="dim"))
