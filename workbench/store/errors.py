"""Environment faults of the workspace database, each a one-line message an operator can act on.

SQLite reports them as ``sqlite3.OperationalError`` / ``DatabaseError`` with terse texts; the
store turns the ones that are about the environment (read-only, disk full, not a database, damaged,
locked) into a ``WorkspaceError`` that names the file and says what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class WorkspaceError(Exception):
    """The workspace (its folder or database) cannot be used as asked; the message is one line."""


class ReadOnlyWorkspace(WorkspaceError):
    """A write was asked of a workspace that is only readable (or of a newer database)."""


class NotAWorkbenchDatabase(WorkspaceError):
    """``workbench.db`` is not an SQLite file, is damaged, or belongs to another application."""


class NewerDatabase(ReadOnlyWorkspace):
    """The database was migrated by a newer workbench; this one only reads it."""


class DiskFull(WorkspaceError):
    """SQLite could not grow the database: the disk (or its quota) is full."""


def read_only_message(reason: str) -> str:
    return f"workspace is read-only: {reason}"


def translate(exc: BaseException, path: Path | str, read_only: str | None = None) -> BaseException:
    """The ``WorkspaceError`` an environment-level SQLite error stands for (else ``exc`` itself)."""
    if not isinstance(exc, sqlite3.Error) or isinstance(exc, WorkspaceError):
        return exc
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name == "SQLITE_FULL" or "database or disk is full" in text:
        return DiskFull(f"disk full: cannot write {path} (database or disk is full); "
                        "nothing from this step was stored: free some space and try again")
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return ReadOnlyWorkspace(read_only_message(read_only or f"{path} cannot be written"))
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return NotAWorkbenchDatabase(f"{path} is not a workbench database (not an SQLite file); "
                                     "it was left untouched: move it away or use another --workspace")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return NotAWorkbenchDatabase(f"{path} is damaged ({text}); restore it from a backup")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open database" in text:
        return WorkspaceError(f"cannot open {path}: {text}")
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        return WorkspaceError(f"disk I/O error on {path} ({text}); check the disk and free space")
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return WorkspaceError(f"{path} is locked by another process ({text}); "
                              "try again when it has finished")
    return exc
