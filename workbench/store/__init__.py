"""SQLite store: append-only migrations and typed queries."""

from .db import open_database, utcnow
from .errors import (DiskFull, NewerDatabase, NotAWorkbenchDatabase, ReadOnlyWorkspace,
                     WorkspaceError)
from .records import Endpoint, Experiment, Item, ModelRecord, Variant
from .store import NotFound, Store

__all__ = ["DiskFull", "Endpoint", "Experiment", "Item", "ModelRecord", "NewerDatabase",
           "NotAWorkbenchDatabase", "NotFound", "ReadOnlyWorkspace", "Store", "Variant",
           "WorkspaceError", "open_database", "utcnow"]
