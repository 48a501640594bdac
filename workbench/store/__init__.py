"""SQLite store: append-only migrations and typed queries."""

from .db import open_database, utcnow
from .records import Endpoint, Experiment, Item, ModelRecord, Variant
from .store import NotFound, Store

__all__ = ["Endpoint", "Experiment", "Item", "ModelRecord", "NotFound", "Store", "Variant", "open_database",
           "utcnow"]
