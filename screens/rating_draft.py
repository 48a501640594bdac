"""The rating being entered on the Rate screen: preference, four scores, a note (no Textual here).

Scores are typed after ``a``: the next digits 1-5 fill, in turn, accuracy and safety of
response 1, then accuracy and safety of response 2. Outside that mode 1 and 2 are preferences.
Also, without Textual too: the Rate screen's help texts, the session step it shows (``Step``,
``advance``), the experiments it offers and its end-of-session text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text

from workbench.terminal_text import safe_text

SLOTS = ("accuracy_1", "safety_1", "accuracy_2", "safety_2")
CHOICE_WORDS = {"1": "response 1", "2": "response 2", "tie": "tie", "both_bad": "both bad",
                "skip": "skip"}

_KEYS = """
Rate pairs of answers blind. For each incident: read both responses, then
1 or 2 prefers that response, t marks a tie, b says both are bad, and Enter stores the rating;
s skips the pair (stored as a skip at once; a skip is not counted as rated). a types the four
1-5 scores: the next four digits are accuracy and safety of response 1, then accuracy and safety
of response 2 (Backspace steps back, Esc stops). n adds a note. u undoes your last stored rating
and shows that pair again.

Tab moves between the incident and the two responses; the arrow keys and PageUp/PageDown scroll
the focused one. Time per pair is recorded.
"""
RATE_HELP = _KEYS + """
During a session the number keys only rate: they never switch screens, not even after the last
pair (Ctrl+P changes screens; c leaves the session for the chooser). Leave at any time: the
session resumes at the next unrated pair for the same experiment and rater name. c changes
experiment or rater.
"""
LOCKED_HELP = _KEYS + """
This page is your own rating session: close it at any time and open your link again to resume
at the next unrated pair.
"""


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
        text.append(CHOICE_WORDS[self.choice] if self.choice else "none yet (1, 2, t or b)",
                    style="bold reverse" if self.choice else "dim")
        if self.note.strip():
            text.append("   note: ", style="bold")
            text.append(self.note.strip()[:60])
        text.append("   " + ("Enter stores the rating" if self.choice else
                             "a types the four scores, n adds a note"), style="dim")
        return text


@dataclass
class Step:
    """Where a session stands after a job: the next pair (None when done) and the counts."""

    session: object  # workbench.rating.sessions.Session
    pair: object | None  # workbench.rating.sessions.PairView
    rated: int  # skips are not ratings: they are counted apart
    total: int
    undone: int | None = None
    skipped: int = 0


def advance(store, session, undone: int | None = None) -> Step:
    from workbench.rating.sessions import next_pair, progress

    counts = progress(store, session)
    return Step(session, next_pair(store, session), counts.rated, counts.total, undone,
                counts.skipped)


def rateable_experiments(store) -> list[tuple[str, int]]:
    """(label, id) of experiments with at least one item answered by both A and B."""
    from workbench.rating.sessions import ratable_items

    options = []
    for exp in store.list_experiments():
        if {"A", "B"} <= set(exp.arms) and (n := len(ratable_items(store, exp.id))):
            dataset = safe_text(store.get_dataset(exp.dataset_id)["name"])
            options.append((f"#{exp.id} · {dataset} · {n} pair{'s' * (n != 1)} · {exp.status}",
                            exp.id))
    return options


def done_text(step: Step, *, locked: bool = False) -> Text:
    """What the Rate screen says after the last pair of a session."""
    session = step.session
    text = Text("Session complete. ", style="bold")
    text.append(f"Every pair of experiment #{session.experiment_id} has a vote from "
                f"{safe_text(session.rater)}: {step.rated} rated")
    text.append(f", {step.skipped} skipped.\n\n" if step.skipped else ".\n\n")
    if locked:
        text.append("Thank you. u undoes your last rating; you may close this page.")
        return text
    text.append("Ctrl+P, then Results, shows the verdict, win/tie/loss and rater agreement.\n"
                "u undoes your last rating · c rates another experiment or as another rater.\n"
                "New answers from a resumed replay join this session when you reopen it.")
    return text
