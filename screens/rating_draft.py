"""The rating being entered on the Rate screen: preference, four scores, a note (no Textual here).

Scores are typed after ``a``: the next digits 1-5 fill, in turn, accuracy and safety of
response 1, then accuracy and safety of response 2. Outside that mode 1 and 2 are preferences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

SLOTS = ("accuracy_1", "safety_1", "accuracy_2", "safety_2")
CHOICE_WORDS = {"1": "response 1", "2": "response 2", "tie": "tie", "skip": "skip"}


@dataclass
class Draft:
    """What the rater has entered for the pair on screen; nothing is stored until Enter."""

    choice: str | None = None  # '1', '2' or 'tie'
    scores: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(SLOTS))
    note: str = ""
    cursor: int | None = None  # index into SLOTS while scores are being typed

    @property
    def scoring(self) -> bool:
        return self.cursor is not None

    def start_scores(self) -> None:
        self.cursor = 0

    def stop_scores(self) -> None:
        self.cursor = None

    def type_score(self, value: int) -> None:
        """Set the score under the cursor and move on; leave score mode after the last one."""
        if self.cursor is None:
            return
        self.scores[SLOTS[self.cursor]] = value
        self.cursor = self.cursor + 1 if self.cursor + 1 < len(SLOTS) else None

    def back(self) -> None:
        """Step back one score and clear it."""
        if self.cursor is None:
            self.cursor = len(SLOTS) - 1
        elif self.cursor > 0:
            self.cursor -= 1
        self.scores[SLOTS[self.cursor]] = None

    def fields(self) -> dict:
        """Keyword arguments of ``rating.sessions.record_rating`` (besides choice and seconds)."""
        return {**self.scores, "notes": self.note.strip() or None}

    def scores_line(self, side: str) -> Text:
        """'accuracy 4   safety –' for response ``side``; the score being typed is highlighted."""
        text = Text()
        for name in ("accuracy", "safety"):
            slot = f"{name}_{side}"
            value = self.scores[slot]
            active = self.cursor is not None and SLOTS[self.cursor] == slot
            text.append(f"{name} ", style="bold" if active else "")
            cell = f" {value if value is not None else '–'} "
            text.append(cell, style="reverse bold" if active else "bold" if value else "dim")
            text.append("   ")
        return text

    def status_line(self) -> Text:
        """What Enter would store, or what the digits are typing now."""
        if self.cursor is not None:
            name, side = SLOTS[self.cursor].split("_")
            return Text.assemble(("Typing scores: ", "bold"),
                                 (f"{name} of response {side}", "bold"),
                                 ": press 1-5 · Backspace back · Esc done")
        text = Text("Preferred: ", style="bold")
        text.append(CHOICE_WORDS[self.choice] if self.choice else "none yet (1, 2 or t)",
                    style="bold reverse" if self.choice else "dim")
        if self.note.strip():
            text.append("   note: ", style="bold")
            text.append(self.note.strip()[:60])
        text.append("   " + ("Enter stores the rating" if self.choice else
                             "a types the four scores, n adds a note"), style="dim")
        return text
