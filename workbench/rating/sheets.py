"""Blinded evaluation sheets (CSV) for experts who do not use the app.

A sheet holds, per item, the incident and the two responses as "response 1" and "response 2", plus
the id of the rating session whose stored plan fixed the sides; nothing in it identifies a variant.
Several experts may fill copies of one sheet: each import under another rater name gets its own
session with a copy of the sheet's plan. Import is all-or-nothing: one bad row and nothing is
stored (no rating, no new session); the error names the row by line and item. Cells a spreadsheet would run as formulas (starting with = + - @, tab or CR)
are written with a leading ' (OWASP's CSV-injection rule) and read back as they were.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from ..private_files import open_private
from .sessions import RatingError, Session, open_session, record_rating
from ..store import Store, utcnow
from ..terminal_text import safe_text

COLUMNS = ("sheet", "item", "incident", "response_1", "response_2", "choice", "accuracy_1",
           "safety_1", "accuracy_2", "safety_2", "notes")
SCORES = ("accuracy_1", "safety_1", "accuracy_2", "safety_2")
CHOICE_ALIASES = {"1": "1", "2": "2", "tie": "tie", "t": "tie", "=": "tie", "both_bad": "both_bad",
                  "both bad": "both_bad", "b": "both_bad", "skip": "skip", "s": "skip"}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """OWASP CSV-injection rule: a cell a spreadsheet would run as a formula gets a leading '."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def restore(cell: str) -> str:
    """Undo ``neutralise`` (a cell read back is the text that was exported)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


class SheetRejected(RatingError):
    """A sheet with bad rows, of which nothing was stored; ``errors`` is [(line, reason)]."""

    def __init__(self, message: str, errors: list[tuple[int, str]]):
        super().__init__(message)
        self.errors = errors


@dataclass
class SheetImport:
    rater: str = ""
    imported: int = 0
    blank: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def export_sheet(store: Store, exp_id: int, path: str | Path, rater: str | None = None) -> int:
    """Write a blinded sheet of the pairs still to rate; return the number of rows."""
    if rater is None:
        taken = {s["rater"] for s in store.rows(
            "SELECT rater FROM rating_sessions WHERE experiment_id = ?", [exp_id])}
        rater = next(f"sheet-{n}" for n in range(1, 10_000) if f"sheet-{n}" not in taken)
    session = open_session(store, exp_id, rater, source="sheet")
    rows = store.rows(
        """SELECT a.item_id, a.left_arm, a.right_arm, i.key FROM rating_assignments a
           JOIN items i ON i.id = a.item_id
           WHERE a.session_id = ? AND NOT EXISTS (SELECT 1 FROM ratings r
                 WHERE r.session_id = a.session_id AND r.item_id = a.item_id)
           ORDER BY a.position""", [session.id])
    outputs = {(r["item_id"], r["arm"]): r["output"] for r in store.rows(
        "SELECT item_id, arm, output FROM runs WHERE experiment_id = ?", [exp_id])}
    with open_private(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            cells = [row["key"], store.get_item(row["item_id"]).prompt_text,
                     outputs.get((row["item_id"], row["left_arm"])) or "",
                     outputs.get((row["item_id"], row["right_arm"])) or ""]
            writer.writerow([f"S{session.id}", *map(neutralise, cells), "", "", "", "", "", ""])
    return len(rows)


def _sheet_session(store: Store, exp_id: int, token: str) -> Session:
    found = store.rows("SELECT * FROM rating_sessions WHERE id = ? AND experiment_id = ?",
                       [int(token[1:]) if token[1:].isdigit() else -1, exp_id])
    if not token.startswith("S") or not found:
        raise RatingError(f"sheet {token!r} does not belong to experiment {exp_id}")
    row = found[0]
    return Session(row["id"], exp_id, row["rater"], row["seed"])


def _session_for(store: Store, sheet: Session, rater: str | None) -> Session:
    """The sheet's own session, or a copy of its plan for another rater."""
    if not rater or rater == sheet.rater:
        return sheet
    if store.rows("SELECT 1 FROM rating_sessions WHERE experiment_id = ? AND rater = ?",
                  [sheet.experiment_id, rater]):
        raise RatingError(f"rater {rater!r} already has a session in this experiment; "
                          "import this sheet under another name")
    with store.db.atomic():
        sid = store.db["rating_sessions"].insert({
            "experiment_id": sheet.experiment_id, "rater": rater, "seed": sheet.seed,
            "source": "sheet", "created_at": utcnow()}).last_pk
        store.db.execute(
            """INSERT INTO rating_assignments (session_id, item_id, position, left_arm, right_arm)
               SELECT ?, item_id, position, left_arm, right_arm FROM rating_assignments
               WHERE session_id = ?""", [sid, sheet.id])
    return Session(sid, sheet.experiment_id, rater, sheet.seed)


def import_sheet(store: Store, exp_id: int, path: str | Path, rater: str | None = None) -> SheetImport:
    """Read a filled sheet in one transaction: every row is stored, or none is.

    Raises ``SheetRejected`` naming the first bad row (line and item) and how many there are.
    """
    name = Path(path).name
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            missing = {"sheet", "item", "choice"} - set(reader.fieldnames or ())
            if missing:
                raise RatingError(f"{name}: missing column(s) {', '.join(sorted(missing))}")
            rows = [(reader.line_num, row) for row in reader]
        except csv.Error as exc:
            raise RatingError(f"{name}: line {reader.line_num}: not a readable CSV sheet "
                              f"({exc}); nothing was imported") from None
    tokens = {(row.get("sheet") or "").strip() for _, row in rows} - {""}
    if len(tokens) != 1:
        raise RatingError(f"{name}: expected one sheet id in column 'sheet', "
                          f"found {sorted(tokens) or 'none'}")
    with store.db.atomic():  # a bad row rolls back every rating and the new session too
        session = _session_for(store, _sheet_session(store, exp_id, tokens.pop()), rater)
        result = SheetImport(rater=session.rater)
        _store_rows(store, session, rows, result)
        if result.errors:
            line, reason = result.errors[0]
            more = len(result.errors) - 1
            raise SheetRejected(
                f"{name}: line {line}: {reason}"
                + (f" (and {more} more bad row(s): lines "
                   f"{', '.join(str(n) for n, _ in result.errors[1:6])}"
                   f"{', ...' if more > 5 else ''})" if more else "")
                + "; nothing was imported: fix the sheet and import it again", result.errors)
    return result


def _store_rows(store: Store, session: Session, rows: list[tuple[int, dict]],
                result: SheetImport) -> None:
    keys = {r["key"]: r["item_id"] for r in store.rows(
        """SELECT i.key, a.item_id FROM rating_assignments a JOIN items i ON i.id = a.item_id
           WHERE a.session_id = ?""", [session.id])}
    for line, row in rows:
        choice = (row.get("choice") or "").strip().lower()
        if not choice:
            result.blank += 1
            continue
        key = restore((row.get("item") or "").strip())
        item_id = keys.get(key)
        where = f"item {safe_text(key)!r}"
        if item_id is None:
            result.errors.append((line, f"unknown {where} for this sheet"))
        elif choice not in CHOICE_ALIASES:
            result.errors.append((line, f"{where}: choice must be 1, 2, tie, both_bad or skip, "
                                        f"not {safe_text(choice)!r}"))
        else:
            try:
                record_rating(store, session, item_id, CHOICE_ALIASES[choice],
                              **{k: (row.get(k) or "").strip() or None for k in SCORES},
                              notes=restore((row.get("notes") or "").strip()) or None)
                result.imported += 1
            except RatingError as exc:
                result.errors.append((line, f"{where}: {safe_text(exc)}"))
