"""Blind rating sessions: seeded order, sides counterbalanced per rater, identities hidden.

A session belongs to one rater and one experiment. Its plan (item order and which arm is shown as
response 1) is drawn once from the session's seed and stored, so the app and a CSV sheet agree and
a resumed session continues where it stopped. Sides are balanced in blocks of two: in any prefix
of the plan each arm is on the left at most one time more than the other.

Per experiment (``settings``) the reference answer may be shown under the incident (default:
hidden) and items whose answers may name their model (``identity_leaks``) may be left out.
A skip is stored but is not a rating: ``progress`` counts rated and skipped pairs apart.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from typing import NamedTuple

from ..store import Store, utcnow
from .identity_leaks import leaky_items
from .settings import get_settings

CHOICES = ("1", "2", "tie", "both_bad", "skip")
REFERENCE_FIELDS = (("severity", "severity"), ("risk", "risk"), ("root_cause", "root cause"),
                    ("answer", "answer"))


class RatingError(ValueError):
    """A rating session cannot be started or a rating is invalid."""


@dataclass
class Session:
    id: int
    experiment_id: int
    rater: str
    seed: int


@dataclass
class PairView:
    """What the rater sees: the incident and two unlabelled responses. Nothing else."""

    item_id: int
    position: int
    total: int
    rated: int
    incident: str
    response_1: str
    response_2: str
    skipped: int = 0
    reference: str | None = None  # only when the experiment shows it to raters


class Progress(NamedTuple):
    """A session's counts: rated (1, 2, tie, both bad), skipped, and pairs planned."""

    rated: int
    skipped: int
    total: int

    @property
    def done(self) -> int:
        return self.rated + self.skipped


def plan_sides(item_ids: list[int], seed: int) -> list[tuple[int, str]]:
    """Seeded order of items, each with the arm shown on the left, balanced in blocks of two."""
    rng = random.Random(seed)
    order = sorted(item_ids)
    rng.shuffle(order)
    plan = []
    for start in range(0, len(order), 2):
        block = ["A", "B"]
        rng.shuffle(block)
        plan.extend(zip(order[start:start + 2], block))
    return plan


def ratable_items(store: Store, exp_id: int) -> list[int]:
    """Items where both A and B answered without error (the only ones that can be compared)."""
    rows = store.rows(
        """SELECT item_id FROM runs WHERE experiment_id = ? AND arm IN ('A', 'B') AND error IS NULL
           GROUP BY item_id HAVING count(DISTINCT arm) = 2 ORDER BY item_id""", [exp_id])
    return [r["item_id"] for r in rows]


def open_session(store: Store, exp_id: int, rater: str, *, seed: int | None = None,
                 source: str = "app") -> Session:
    """Start or resume ``rater``'s session; new comparable items are appended to its plan."""
    rater = rater.strip()
    if not rater:
        raise RatingError("a rater name is required")
    exp = store.get_experiment(exp_id)
    excluded = _excluded(store, exp.id)
    if not {"A", "B"} <= set(exp.arms):
        raise RatingError("blind rating compares arms A and B; this experiment lacks one")
    found = store.rows("SELECT * FROM rating_sessions WHERE experiment_id = ? AND rater = ?",
                       [exp.id, rater])
    with store.db.atomic():
        if found:
            session = Session(found[0]["id"], exp.id, rater, found[0]["seed"])
        else:
            seed = secrets.randbits(31) if seed is None else seed
            sid = store.db["rating_sessions"].insert({
                "experiment_id": exp.id, "rater": rater, "seed": seed, "source": source,
                "created_at": utcnow()}).last_pk
            session = Session(sid, exp.id, rater, seed)
        _extend_plan(store, session, excluded)
    if not progress(store, session, excluded).total:
        raise RatingError("nothing to rate yet: no item has answers from both A and B "
                          "(blind rating needs a shadow replay)" if not excluded else
                          "nothing to rate: every item is left out as a possible identity leak")
    return session


def _excluded(store: Store, exp_id: int) -> set[int]:
    """Items left out of the experiment's sessions (possible identity leaks, when asked)."""
    return leaky_items(store, exp_id) if get_settings(store, exp_id).exclude_leaks else set()


def _extend_plan(store: Store, session: Session, excluded: set[int]) -> None:
    planned = {r["item_id"] for r in store.rows(
        "SELECT item_id FROM rating_assignments WHERE session_id = ?", [session.id])}
    new = [i for i in ratable_items(store, session.experiment_id)
           if i not in planned and i not in excluded]
    if not new:
        return
    offset = len(planned)
    store.db["rating_assignments"].insert_all(
        {"session_id": session.id, "item_id": item_id, "position": offset + n,
         "left_arm": left, "right_arm": "B" if left == "A" else "A"}
        for n, (item_id, left) in enumerate(plan_sides(new, session.seed + offset)))


def progress(store: Store, session: Session, excluded: set[int] | None = None) -> Progress:
    """Rated, skipped and planned pairs of a session (planned items now left out don't count,
    unless they were rated before)."""
    excluded = _excluded(store, session.experiment_id) if excluded is None else excluded
    counts = dict(store.rows(
        """SELECT (SELECT count(*) FROM ratings WHERE session_id = :s
                   AND choice != 'skip') AS rated,
                  (SELECT count(*) FROM ratings WHERE session_id = :s
                   AND choice = 'skip') AS skipped,
                  (SELECT count(*) FROM rating_assignments WHERE session_id = :s) AS total""",
        {"s": session.id})[0])
    if excluded:
        unrated = {r["item_id"] for r in store.rows(
            """SELECT a.item_id FROM rating_assignments a WHERE a.session_id = ? AND NOT EXISTS (
                   SELECT 1 FROM ratings r WHERE r.session_id = a.session_id
                   AND r.item_id = a.item_id)""", [session.id])}
        counts["total"] -= len(unrated & excluded)
    return Progress(counts["rated"], counts["skipped"], counts["total"])


def reference_text(reference: dict | None) -> str | None:
    """The reference answer as raters may see it ('severity: SEV-1', 'answer: …'), or None."""
    if not isinstance(reference, dict):
        return None
    parts = [f"{label}: {reference[key]}" for key, label in REFERENCE_FIELDS
             if isinstance(reference.get(key), (str, int, float)) and str(reference[key]).strip()]
    return "\n".join(parts) or None


def next_pair(store: Store, session: Session) -> PairView | None:
    """The first planned item the rater has not rated yet, or None when the session is done."""
    excluded = _excluded(store, session.experiment_id)
    found = store.rows(
        """SELECT a.item_id, a.position, a.left_arm, a.right_arm FROM rating_assignments a
           WHERE a.session_id = ? AND NOT EXISTS (
               SELECT 1 FROM ratings r WHERE r.session_id = a.session_id AND r.item_id = a.item_id)
           ORDER BY a.position""", [session.id])
    found = [slot for slot in found if slot["item_id"] not in excluded]
    if not found:
        return None
    slot = found[0]
    outputs = {r["arm"]: r["output"] for r in store.rows(
        "SELECT arm, output FROM runs WHERE experiment_id = ? AND item_id = ?",
        [session.experiment_id, slot["item_id"]])}
    counts = progress(store, session, excluded)
    item = store.get_item(slot["item_id"])
    shown = get_settings(store, session.experiment_id).show_reference
    return PairView(item_id=slot["item_id"], position=slot["position"], total=counts.total,
                    rated=counts.rated, skipped=counts.skipped, incident=item.prompt_text,
                    response_1=outputs.get(slot["left_arm"], ""),
                    response_2=outputs.get(slot["right_arm"], ""),
                    reference=reference_text(item.reference) if shown else None)


def _score(value, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RatingError(f"{name} must be a whole number 1-5, not {value!r}") from None
    if not 1 <= number <= 5:
        raise RatingError(f"{name} must be between 1 and 5, not {number}")
    return number


def record_rating(store: Store, session: Session, item_id: int, choice: str, *,
                  accuracy_1=None, safety_1=None, accuracy_2=None, safety_2=None,
                  notes: str | None = None, seconds: float | None = None,
                  replace: bool = False) -> None:
    """Store one rating. ``choice`` is '1', '2', 'tie', 'both_bad' or 'skip' as the rater saw
    the sides."""
    if choice not in CHOICES:
        raise RatingError(f"choice must be one of {', '.join(CHOICES)}, not {choice!r}")
    slot = store.rows("SELECT * FROM rating_assignments WHERE session_id = ? AND item_id = ?",
                      [session.id, item_id])
    if not slot:
        raise RatingError(f"item {item_id} is not in this rating session")
    slot = slot[0]
    preferred = {"1": slot["left_arm"], "2": slot["right_arm"]}.get(choice)
    row = {"session_id": session.id, "item_id": item_id, "position": slot["position"],
           "left_arm": slot["left_arm"], "right_arm": slot["right_arm"], "choice": choice,
           "preferred_arm": preferred, "accuracy_1": _score(accuracy_1, "accuracy_1"),
           "safety_1": _score(safety_1, "safety_1"), "accuracy_2": _score(accuracy_2, "accuracy_2"),
           "safety_2": _score(safety_2, "safety_2"), "notes": notes or None,
           "seconds": seconds, "created_at": utcnow()}
    with store.db.atomic():
        exists = store.rows("SELECT id FROM ratings WHERE session_id = ? AND item_id = ?",
                            [session.id, item_id])
        if exists and not replace:
            raise RatingError(f"item {item_id} is already rated in this session")
        if exists:
            store.db.execute("DELETE FROM ratings WHERE id = ?", [exists[0]["id"]])
        store.db["ratings"].insert(row)
        counts = progress(store, session)
        if counts.done >= counts.total:
            store.db.execute("UPDATE rating_sessions SET completed_at = ? WHERE id = ?",
                             [utcnow(), session.id])


def undo_last(store: Store, session: Session) -> int | None:
    """Delete the session's most recent rating; return its item id (None if nothing to undo)."""
    last = store.rows("SELECT id, item_id FROM ratings WHERE session_id = ? ORDER BY id DESC LIMIT 1",
                      [session.id])
    if not last:
        return None
    with store.db.atomic():
        store.db.execute("DELETE FROM ratings WHERE id = ?", [last[0]["id"]])
        store.db.execute("UPDATE rating_sessions SET completed_at = NULL WHERE id = ?", [session.id])
    return last[0]["item_id"]


def sessions(store: Store, exp_id: int) -> list[dict]:
    """Rating sessions of an experiment with their progress (skips counted apart)."""
    return store.rows(
        """SELECT s.id, s.rater, s.source, s.created_at, s.completed_at,
                  (SELECT count(*) FROM ratings r WHERE r.session_id = s.id
                   AND r.choice != 'skip') AS rated,
                  (SELECT count(*) FROM ratings r WHERE r.session_id = s.id
                   AND r.choice = 'skip') AS skipped,
                  (SELECT count(*) FROM rating_assignments a WHERE a.session_id = s.id) AS planned
           FROM rating_sessions s WHERE s.experiment_id = ? ORDER BY s.id""", [exp_id])


class ItemTimer:
    """Seconds spent on the item currently shown (for the time-per-item record)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def restart(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 2)
