"""Opening the workspace database: WAL, busy timeout, foreign keys, migrations applied."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> str:
    """An ISO-8601 UTC timestamp with milliseconds, the format every table uses."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def open_database(path: str | Path, *, migrate: bool = True) -> Database:
    """Open (and by default migrate) one SQLite file. One connection per thread: never share it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    db = Database(conn, execute_plugins=False)
    if migrate:
        MIGRATIONS.apply(db)
    return db


def dumps(value: Any, *, sort_keys: bool = True) -> str | None:
    """JSON-encode for a TEXT column (None stays NULL). ``sort_keys=False`` keeps the order
    where it means something (a JSON schema's properties: grammar-constrained generation
    writes them in that order)."""
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=sort_keys)


def loads(value: str | None) -> Any:
    """Decode a JSON TEXT column (NULL gives None)."""
    return None if value in (None, "") else json.loads(value)
