"""Rater agreement: Krippendorff's alpha (ordinal by default), raters x units, missing values allowed.

The point estimate comes from the PyPI ``krippendorff`` package. The interval is a percentile
bootstrap over items (clusters of units: an item's two responses are resampled together), computed
with a vectorised coincidence-matrix implementation of alpha that is checked against the package.
Gate (STATISTICS.md): ratings count only when the lower bound is >= 0.667; >= 0.8 is reliable.
Degenerate data (fewer than 2 raters, no unit coded by 2 raters, a single value throughout) gives a
"not computable" result, never NaN or an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import krippendorff
import numpy as np

from ._base import NAN, Interval, Result, make_rng
from .bootstrap import percentile_interval, resample_counts

MIN_LOWER = 0.667
RELIABLE = 0.8
LEVELS = ("nominal", "ordinal", "interval")


def value_counts(data: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """(units, values) how many raters gave each value to each unit; NaN = missing."""
    return (data.T[..., None] == domain[None, None, :]).sum(axis=1)


def unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """(units, V, V) coincidence contributions; units with fewer than 2 values contribute 0."""
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(counts.shape[1])
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return outer * scale[:, None, None]


def alpha_from_coincidences(o: np.ndarray, domain: np.ndarray, level: str) -> np.ndarray:
    """Alpha from coincidence matrices o (..., V, V); NaN where there is no variation."""
    n_v = o.sum(axis=-1)
    n = n_v.sum(axis=-1)
    V = o.shape[-1]
    if level == "nominal":
        delta = np.broadcast_to(1.0 - np.eye(V), o.shape)
    elif level == "interval":
        diff = domain[:, None] - domain[None, :]
        delta = np.broadcast_to(diff.astype(float) ** 2, o.shape)
    elif level == "ordinal":
        cum = np.cumsum(n_v, axis=-1)
        lo = np.minimum.outer(np.arange(V), np.arange(V))
        hi = np.maximum.outer(np.arange(V), np.arange(V))
        between = cum[..., hi] - cum[..., lo] + n_v[..., lo]
        delta = (between - (n_v[..., :, None] + n_v[..., None, :]) / 2) ** 2
    else:
        raise ValueError(f"level must be one of {LEVELS}")
    observed = (o * delta).sum(axis=(-2, -1))
    expected = (n_v[..., :, None] * n_v[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan)


@dataclass
class Agreement(Result):
    level: str
    computable: bool
    reason: str | None
    alpha: float | None
    ci: Interval
    ci_method: str
    n_raters: int
    n_units: int
    n_pairable_units: int
    n_pairable_values: int
    gate: str  # "pass" | "fail" | "not computable"
    reliability: str | None  # "reliable" (lower >= 0.8) | "tentative" | "unreliable"
    counts: bool  # whether results from these ratings count (gate passed)
    min_lower: float
    n_resamples: int
    notes: list[str] = field(default_factory=list)


def krippendorff_alpha(data, *, level: str = "ordinal", clusters=None, n_resamples: int = 1000,
                       confidence: float = 0.95, min_lower: float = MIN_LOWER,
                       reliable: float = RELIABLE, rng=None) -> Agreement:
    """Krippendorff's alpha of a raters x units matrix (NaN = not rated) with a bootstrap interval.

    ``clusters`` (one label per unit, e.g. the item of an (item, arm) unit) makes the bootstrap
    resample whole clusters; by default every unit is its own cluster.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise ValueError("data must be a raters x units matrix")
    n_raters_total, n_units = data.shape
    present = np.isfinite(data)
    n_raters = int(np.sum(present.any(axis=1)))
    m = present.sum(axis=0)
    pairable_units = int(np.sum(m >= 2))
    pairable_values = int(m[m >= 2].sum())
    domain = np.unique(data[present])

    def empty(reason: str) -> Agreement:
        return Agreement(level, False, reason, None, (NAN, NAN), "none", n_raters, n_units,
                         pairable_units, pairable_values, "not computable", None, False,
                         min_lower, 0)

    if n_raters < 2:
        return empty(f"fewer than 2 raters ({n_raters})")
    if pairable_units == 0:
        return empty("no unit was rated by 2 or more raters (no pairable values)")
    pairable_domain = np.unique(data[:, m >= 2][present[:, m >= 2]])
    if pairable_domain.size < 2:
        return empty("no variation: every pairable rating has the same value")
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    counts = value_counts(data, domain)
    per_unit = unit_coincidences(counts).reshape(n_units, -1)
    clusters = np.arange(n_units) if clusters is None else np.asarray(clusters).reshape(-1)
    if clusters.size != n_units:
        raise ValueError("clusters needs one label per unit")
    _, cluster_idx = np.unique(clusters, return_inverse=True)
    n_clusters = int(cluster_idx.max() + 1)
    rng = make_rng(rng)
    draws = resample_counts(n_clusters, n_resamples, rng)[:, cluster_idx]
    o = (draws @ per_unit).reshape(n_resamples, domain.size, domain.size)
    boot = alpha_from_coincidences(o, domain, level)
    notes = []
    lost = int(np.sum(~np.isfinite(boot)))
    if lost:
        notes.append(f"{lost} of {n_resamples} resamples had no variation and were left out")
    ci = percentile_interval(boot, confidence)
    lower = ci[0]
    if not np.isfinite(lower):
        gate, reliability = "not computable", None
    else:
        gate = "pass" if lower >= min_lower else "fail"
        reliability = ("reliable" if lower >= reliable else "tentative" if lower >= min_lower
                       else "unreliable")
    if n_raters == 2:
        notes.append("only 2 raters: alpha describes this pair, not a rater population")
    return Agreement(level=level, computable=True, reason=None, alpha=alpha, ci=ci,
                     ci_method=f"percentile bootstrap over {'clusters' if n_clusters < n_units else 'units'}",
                     n_raters=n_raters, n_units=n_units, n_pairable_units=pairable_units,
                     n_pairable_values=pairable_values, gate=gate, reliability=reliability,
                     counts=gate == "pass", min_lower=min_lower, n_resamples=n_resamples,
                     notes=notes)
