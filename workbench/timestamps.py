"""Timestamps as the store keeps them: UTC ISO-8601 with milliseconds (a leaf: imports nothing)."""

from __future__ import annotations

import math
from datetime import datetime, timezone


def parse_timestamp(value: object) -> str:
    """An ISO-8601 string or epoch seconds (milliseconds when > 1e11) as the store's UTC
    ISO format; ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError("a timestamp, not true/false")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a time")
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            moment = datetime.fromtimestamp(seconds, timezone.utc)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"{value!r} is out of range for a time") from exc
    elif isinstance(value, str) and value.strip():
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    else:
        raise ValueError(f"{value!r} is not ISO-8601 or epoch seconds")
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
