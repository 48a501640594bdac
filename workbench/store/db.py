"""Opening the workspace database: WAL, busy timeout, foreign keys, migrations applied.

Before anything is written the file is checked: an SQLite file of this workbench (or a new, empty
one), never another application's database or random bytes (those are refused and left as they
are). A file or folder that is not writable, or a database migrated by a newer workbench, is opened
read-only: reading works, every write raises ``ReadOnlyWorkspace``. Write transactions start with
``BEGIN IMMEDIATE`` so a second writer waits for the busy timeout instead of failing with
"database is locked". A new database (and its -wal/-shm) is owner-only (0600).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Generator
from urllib.parse import quote

from sqlite_utils import Database

from .errors import (NewerDatabase, NotAWorkbenchDatabase, ReadOnlyWorkspace, WorkspaceError,
                     read_only_message, translate)
from .migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


def utcnow() -> str:
    """An ISO-8601 UTC timestamp with milliseconds, the format every table uses."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class WorkbenchDatabase(Database):
    """A sqlite-utils ``Database`` whose write transactions are ``BEGIN IMMEDIATE`` and whose
    environment errors (disk full, read-only, damaged) are raised as one-line ``WorkspaceError``s.
    ``read_only`` is why writes are refused (None when the database is writable)."""

    path: Path = Path("workbench.db")
    read_only: str | None = None
    refusal: type[ReadOnlyWorkspace] = ReadOnlyWorkspace  # NewerDatabase for a newer database

    def _refuse_writes(self) -> None:
        """Raise the read-only error when writes are refused (a no-op when writable)."""
        if self.read_only:
            raise self.refusal(read_only_message(self.read_only))

    @contextlib.contextmanager
    def atomic(self) -> Generator["WorkbenchDatabase", None, None]:
        """One write transaction (a savepoint when nested), taking the write lock at its start."""
        self._refuse_writes()
        if self.conn.in_transaction:
            with self._translated(), super().atomic():
                yield self
            return
        with self._translated():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self.rollback()
                raise
            try:
                self.conn.execute("COMMIT")
            except BaseException:
                self.rollback()
                raise

    def execute(self, sql: str, parameters=None) -> sqlite3.Cursor:
        with self._translated():
            return super().execute(sql, parameters)

    @contextlib.contextmanager
    def _translated(self) -> Generator[None, None, None]:
        try:
            yield
        except sqlite3.Error as exc:
            replacement = translate(exc, self.path, self.read_only)
            if replacement is exc:
                raise
            raise replacement from exc


def _not_writable(path: Path) -> str | None:
    """Why ``path`` (a database file, maybe not there yet) cannot be written; None if it can."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.exists() and not os.access(path, os.W_OK):
        return f"{path} is not writable"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    return None


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:  # a WAL database whose -shm cannot be created: read as is
        conn.close()
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)


def _identity(conn: sqlite3.Connection, path: Path) -> tuple[list[str], str | None]:
    """Refuse another application's database; return the migrations applied and the first one
    this version does not know (a newer workbench's), else None. Reads only."""
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        applied = ([r[0] for r in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
            [MIGRATIONS.name])] if "_sqlite_migrations" in tables else [])
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    if tables and not applied:
        shown = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
        raise NotAWorkbenchDatabase(f"{path} is not a workbench database (an SQLite file of another "
                                    f"application, tables: {shown}); it was left untouched: move "
                                    "it away or use another --workspace")
    known = {m.name for m in MIGRATIONS._migrations}
    return applied, next((name for name in applied if name not in known), None)


def open_database(path: str | Path, *, migrate: bool = True, read_only: bool = False) -> Database:
    """Open (and by default migrate) one SQLite file. One connection per thread: never share it.

    Raises ``NotAWorkbenchDatabase`` for a file that is not this workbench's database and
    ``ReadOnlyWorkspace`` when a missing database cannot be created. ``read_only`` (or a file or
    folder that is not writable, or a database from a newer workbench) opens it for reading only.
    """
    # Never open() and close() the file outside SQLite: closing any descriptor of it drops every
    # POSIX lock this process holds on it, and another connection's WAL can then be corrupted.
    path = Path(path)
    reason = "opened read-only" if read_only else _not_writable(path)
    if not path.exists():
        if reason:
            raise ReadOnlyWorkspace(read_only_message(f"cannot create {path}: {reason}"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ReadOnlyWorkspace(read_only_message(f"cannot create {path}: {exc.strerror}")) from None
    elif not path.is_file():
        raise NotAWorkbenchDatabase(f"{path} is not a workbench database (not a regular file)")
    new = not path.exists()
    try:
        conn = _connect(path, read_only=bool(reason))
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    if new:  # owner-only before anything is written; SQLite gives -wal and -shm the same mode
        os.chmod(path, 0o600)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        applied, newer = _identity(conn, path)
        if reason and not applied:
            raise ReadOnlyWorkspace(read_only_message(f"{path} is empty and cannot be set up: "
                                                      f"{reason}"))
    except WorkspaceError:
        conn.close()
        raise
    if newer:
        if not reason:  # reopen for reading only: this version never writes a newer schema
            conn.close()
            conn = _connect(path, read_only=True)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        reason = (f"{path.name} was created by a newer workbench (migration {newer}); upgrade "
                  "the workbench to change it")
    try:
        if not reason:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path) from exc
    db = WorkbenchDatabase(conn, execute_plugins=False)
    db.path, db.read_only = path, reason
    if newer:
        db.refusal = NewerDatabase
    pending = MIGRATIONS.pending(db) if migrate and not reason else []
    if pending and all(m.transactional for m in pending):
        with db.atomic():  # one writer migrates; another opening at once waits, then skips
            MIGRATIONS.apply(db)
    elif pending:
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
