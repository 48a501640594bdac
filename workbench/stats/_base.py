"""Shared pieces of the statistics modules: result base class, conversion to plain data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NAN = float("nan")
Interval = tuple[float, float]


def plain(value: Any) -> Any:
    """Numbers, lists and dicts only: numpy scalars become Python ones, NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


@dataclass
class Result:
    """Base of every statistics result: a small dataclass with ``to_dict()``."""

    def to_dict(self) -> dict:
        return plain(asdict(self))


def as_float_array(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def make_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator, or None (seed 0: reports are reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def z_crit(confidence: float) -> float:
    """Two-sided normal critical value for a confidence level."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def finite_interval(lo: float, hi: float) -> Interval:
    return (float(lo), float(hi))
