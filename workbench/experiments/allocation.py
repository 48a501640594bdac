"""Traffic allocation simulated on recorded items: shadow, weighted split, canary.

Assignment is sticky per user: a stable hash of (seed, user id) decides the arm, so every item of
one user goes to the same variant, as it would behind a real router. Items without a user id are
hashed by their own id.
"""

from __future__ import annotations

import hashlib

from ..store import Item

MODES = ("shadow", "split", "canary")


def unit_hash(seed: int, key: str) -> float:
    """A stable number in [0, 1) for ``key`` (same on every machine and Python version)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    return int(digest[:15], 16) / 16 ** 15


def assign_arm(item: Item, *, mode: str, weight_b: float, seed: int = 0,
               canary_users: list[str] | None = None) -> str:
    """The arm ('A' or 'B') that serves ``item`` in split or canary mode."""
    if mode not in ("split", "canary"):
        raise ValueError(f"assign_arm is for split/canary, not {mode!r}")
    if mode == "canary" and item.user_id and item.user_id in set(canary_users or ()):
        return "B"
    return "B" if unit_hash(seed, item.user_id or f"item:{item.key}") < weight_b else "A"


def arms_for(item: Item, *, mode: str, arms: list[str], weight_b: float, seed: int = 0,
             canary_users: list[str] | None = None) -> list[str]:
    """Which arms answer ``item``: all of them in shadow mode, one otherwise."""
    if mode == "shadow":
        return list(arms)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    return [assign_arm(item, mode=mode, weight_b=weight_b, seed=seed, canary_users=canary_users)]
