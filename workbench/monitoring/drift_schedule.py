"""Scheduled drift checks (``drift_schedules``) and the stored check history (``drift_checks``).

A schedule is one (kind, target, reference) with ``every_hours`` and its check's options (JSON).
It is *due* at ``now`` when it never ran or its last run is ``every_hours`` or more before
``now``. ``workbench drift run-due`` (cron) runs the due ones; nothing here runs a model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from ..store import Store
from ..timestamps import parse_timestamp
from .monitor import iso

KINDS = ("concept", "data")


@dataclass
class Schedule:
    id: int
    kind: str
    target: str
    reference: str
    every_hours: float
    options: dict
    created_at: str
    last_run_at: str | None

    def due(self, now: datetime) -> bool:
        """Never run, or last run at least ``every_hours`` before ``now``."""
        if self.last_run_at is None:
            return True
        last = datetime.fromisoformat(self.last_run_at)
        return now - last >= timedelta(hours=self.every_hours)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_every(text: str) -> float:
    """``24h``, ``2d``, ``1w``, ``30m`` or a bare number of hours, as hours (> 0)."""
    value = str(text).strip().lower()
    units = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
    scale = units.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        hours = float(number) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"--every must look like 24h, 2d, 1w or 30m, not {text!r}") from None
    if not hours > 0 or hours != hours or hours == float("inf"):
        raise ValueError(f"--every must be a positive duration, not {text!r}")
    return hours


def _schedule(row: dict) -> Schedule:
    return Schedule(row["id"], row["kind"], row["target"], row["reference"], row["every_hours"],
                    json.loads(row["options"] or "{}"), row["created_at"], row["last_run_at"])


def save_schedule(store: Store, kind: str, target: str, reference: str, every_hours: float,
                  options: dict | None = None, *, now: datetime | None = None) -> Schedule:
    """Add the schedule of (kind, target, reference), or update its period and options."""
    if kind not in KINDS:
        raise ValueError(f"a drift schedule is one of {', '.join(KINDS)}, not {kind!r}")
    if not every_hours > 0:
        raise ValueError("a schedule's period must be positive")
    with store.db.atomic():
        store.db.execute(
            "INSERT INTO drift_schedules (kind, target, reference, every_hours, options, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, target, reference) DO "
            "UPDATE SET every_hours = excluded.every_hours, options = excluded.options",
            [kind, target, reference, float(every_hours), json.dumps(options or {}), iso(now)])
    return _schedule(store.rows("SELECT * FROM drift_schedules WHERE kind = ? AND target = ? "
                                "AND reference = ?", [kind, target, reference])[0])


def list_schedules(store: Store) -> list[Schedule]:
    return [_schedule(r) for r in store.rows("SELECT * FROM drift_schedules ORDER BY id")]


def remove_schedule(store: Store, schedule_id: int) -> bool:
    with store.db.atomic():
        return store.db.execute("DELETE FROM drift_schedules WHERE id = ?",
                                [schedule_id]).rowcount == 1


def due_schedules(store: Store, now: datetime) -> list[Schedule]:
    """The schedules due at ``now``, oldest last run first (never run: first)."""
    due = [s for s in list_schedules(store) if s.due(now)]
    return sorted(due, key=lambda s: (s.last_run_at or "", s.id))


def mark_run(store: Store, schedule_id: int, now: datetime) -> None:
    with store.db.atomic():
        store.db.execute("UPDATE drift_schedules SET last_run_at = ? WHERE id = ?",
                         [iso(now), schedule_id])


def parse_now(text: str | None) -> datetime | None:
    """``--now ISO`` (or epoch seconds) as an aware datetime; None stays None."""
    if text is None:
        return None
    try:
        value: object = float(text)
    except ValueError:
        value = text
    return datetime.fromisoformat(parse_timestamp(value))


def insert_check(store: Store, kind: str, *, target: str, reference: str, statistic: float,
                 p_value: float | None, threshold: float, drifted: bool, details: dict,
                 created_at: str, experiment_id: int | None = None) -> int:
    """Store one drift check in ``drift_checks``; returns its id."""
    with store.db.atomic():
        return store.db["drift_checks"].insert({
            "experiment_id": experiment_id, "kind": kind, "target": target,
            "reference": reference, "statistic": statistic, "p_value": p_value,
            "threshold": threshold, "drifted": int(drifted), "details": json.dumps(details),
            "created_at": created_at}).last_pk


def check_history(store: Store, *, kind: str | None = None, target: str | None = None,
                  limit: int | None = None) -> list[dict]:
    """Stored drift checks, newest first, without their per-item details."""
    sql = ("SELECT id, kind, target, reference, statistic, p_value, threshold, drifted, "
           "experiment_id, created_at, json_extract(details, '$.baseline_role') AS baseline_role "
           "FROM drift_checks WHERE 1")
    params: list = []
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    if target:
        sql += " AND target = ?"
        params.append(target)
    sql += " ORDER BY created_at DESC, id DESC"
    if limit:
        sql += " LIMIT ?"
        params.append(int(limit))
    return store.rows(sql, params)
