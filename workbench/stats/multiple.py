"""Multiplicity: Holm for the guardrails (family-wise), Benjamini-Hochberg for exploratory metrics."""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control

from ._base import as_float_array


def holm(p_values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down: (adjusted p-values, rejected) in the input order.

    adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) over the sorted p-values.
    NaN p-values are left out of the family and come back as NaN / not rejected.
    """
    p = as_float_array(p_values)
    adjusted = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m:
        order = np.argsort(q, kind="stable")
        stepped = np.minimum(1.0, (m - np.arange(m)) * q[order])
        adj = np.empty(m)
        adj[order] = np.maximum.accumulate(stepped)
        adjusted[ok] = adj
    return adjusted, np.where(ok, adjusted <= alpha, False)


def benjamini_hochberg(p_values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """BH false-discovery-rate adjusted p-values (``scipy.stats.false_discovery_control``)."""
    p = as_float_array(p_values)
    adjusted = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        adjusted[ok] = false_discovery_control(p[ok], method="bh")
    return adjusted, np.where(ok, adjusted <= alpha, False)
