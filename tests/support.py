"""Helpers shared by the core tests (import as ``from support import ...``)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, records: list, *, raw_lines: list[str] | None = None) -> Path:
    """Write records (dicts or raw strings) one per line."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    if raw_lines:
        lines += raw_lines
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def incident(i: int, severity: str = "SEV-1", user: str | None = None, **extra) -> dict:
    """A small, realistic incident item."""
    return {
        "id": f"inc-{i:03d}",
        "input": f"Alert {i}: api-gateway 5xx rate at 35% for 10 minutes; all regions; "
                 f"deploy 2.{i} rolled out 5 minutes earlier.",
        "reference": {"severity": severity, "root_cause": "bad deploy"},
        "user_id": user or f"u-{i % 4}",
        "category": "deploy",
        **extra,
    }
