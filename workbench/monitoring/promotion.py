"""Completing an experiment with a winner: the experiment's end, and the start of monitoring."""

from __future__ import annotations

from ..store import Store, utcnow
from .monitor import record_promotion_baseline


def complete_experiment(store: Store, exp_id: int, winner: str | None) -> dict | None:
    """Mark experiment ``exp_id`` completed with ``winner`` (an arm, or None for no winner) and
    record the winner's runs as its variant's monitoring baseline (returned; None without one)."""
    store.set_experiment(exp_id, status="completed", winner=winner, completed_at=utcnow())
    if winner is None:
        return None
    return record_promotion_baseline(store, exp_id, winner)
