"""Latency per item: ratio of geometric means, tail percentiles, p95 difference.

Paired (same items): ratio = exp(mean(log b - log a)) with the back-transformed interval of
``ttest_rel(log b, log a)``; Wilcoxon signed-rank on the log differences as robustness; p95
difference B - A (ms) with a paired bootstrap percentile interval. Unpaired (split traffic):
Welch t on logs (``ttest_ind(equal_var=False)``), arms resampled independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import ttest_ind, ttest_rel, wilcoxon

from ._base import NAN, Interval, Result, as_float_array, make_rng
from .bootstrap import percentile_interval, quantile_bootstrap

PERCENTILES = (50, 95, 99)


def percentiles(x) -> dict[str, float | None]:
    """p50/p95/p99 (numpy linear interpolation) of finite values; None when empty."""
    x = as_float_array(x)
    x = x[np.isfinite(x)]
    if not x.size:
        return {f"p{p}": None for p in PERCENTILES}
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES))}


@dataclass
class LatencyComparison(Result):
    """B vs A latency. ``ratio`` < 1 means B is faster."""

    design: str
    n_a: int
    n_b: int
    ratio: float
    ratio_ci: Interval
    ratio_p_value: float
    ratio_test: str
    wilcoxon_p_value: float | None
    percentiles_a: dict
    percentiles_b: dict
    p95_diff_ms: float
    p95_diff_ci: Interval
    p95_ci_method: str
    n_resamples: int
    mean_log_diff: float
    se_log_diff: float
    sd_log_diff: float
    margin_ms: float | None = None
    p_noninferiority: float | None = None
    notes: list[str] = field(default_factory=list)


def _clean(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & (x > 0)


def _ni_p(boot_diff: np.ndarray, margin: float) -> float:
    """Bootstrap p-value for H0: p95_B - p95_A >= margin (share of resamples at or above it)."""
    boot_diff = boot_diff[np.isfinite(boot_diff)]
    return float((1 + np.sum(boot_diff >= margin)) / (boot_diff.size + 1))


def paired_latency(a, b, *, margin_ms: float | None = None, n_resamples: int = 2000,
                   confidence: float = 0.95, rng=None) -> LatencyComparison:
    """Paired latency comparison; items with a missing or non-positive latency are dropped."""
    a, b = as_float_array(a), as_float_array(b)
    if a.shape != b.shape:
        raise ValueError("paired arrays must have the same length")
    keep = _clean(a) & _clean(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    notes = []
    if keep.size - n:
        notes.append(f"{keep.size - n} item(s) without a valid latency in both arms were left out")
    pa, pb = percentiles(a), percentiles(b)
    if n < 2:
        return LatencyComparison("paired", n, n, NAN, (NAN, NAN), NAN, "paired t on log latency",
                                 None, pa, pb, NAN, (NAN, NAN), "paired bootstrap percentile", 0,
                                 NAN, NAN, NAN, margin_ms, None, notes + ["fewer than 2 items"])
    d = np.log(b) - np.log(a)
    mean_d = float(d.mean())
    sd_d = float(d.std(ddof=1))
    se_d = sd_d / math.sqrt(n)
    if sd_d == 0:
        ratio_ci, p_t = (math.exp(mean_d), math.exp(mean_d)), (1.0 if mean_d == 0 else 0.0)
        notes.append("log differences have no variation")
    else:
        t = ttest_rel(np.log(b), np.log(a))
        ci = t.confidence_interval(confidence_level=confidence)
        ratio_ci, p_t = (math.exp(ci.low), math.exp(ci.high)), float(t.pvalue)
    p_w = float(wilcoxon(d, zero_method="pratt").pvalue) if np.any(d != 0) else 1.0
    rng = make_rng(rng)
    qa, qb = quantile_bootstrap(a, b, q=0.95, n_resamples=n_resamples, rng=rng)
    boot = qb - qa
    result = LatencyComparison(
        design="paired", n_a=n, n_b=n, ratio=math.exp(mean_d), ratio_ci=ratio_ci,
        ratio_p_value=p_t, ratio_test="paired t on log latency (ttest_rel)", wilcoxon_p_value=p_w,
        percentiles_a=pa, percentiles_b=pb, p95_diff_ms=pb["p95"] - pa["p95"],
        p95_diff_ci=percentile_interval(boot, confidence),
        p95_ci_method="paired bootstrap over items, percentile", n_resamples=n_resamples,
        mean_log_diff=mean_d, se_log_diff=se_d, sd_log_diff=sd_d, notes=notes)
    if margin_ms is not None:
        result.margin_ms = float(margin_ms)
        result.p_noninferiority = _ni_p(boot, margin_ms)
    return result


def unpaired_latency(a, b, *, margin_ms: float | None = None, n_resamples: int = 2000,
                     confidence: float = 0.95, rng=None) -> LatencyComparison:
    """Latency of different items per arm (split traffic): Welch t on logs, independent bootstrap."""
    a, b = as_float_array(a), as_float_array(b)
    a, b = a[_clean(a)], b[_clean(b)]
    pa, pb = percentiles(a), percentiles(b)
    notes = ["independent traffic (different items per arm): unpaired tests"]
    if a.size < 2 or b.size < 2:
        return LatencyComparison("unpaired", int(a.size), int(b.size), NAN, (NAN, NAN), NAN,
                                 "Welch t on log latency", None, pa, pb, NAN, (NAN, NAN),
                                 "independent bootstrap percentile", 0, NAN, NAN, NAN,
                                 margin_ms, None, notes + ["fewer than 2 runs in an arm"])
    la, lb = np.log(a), np.log(b)
    mean_d = float(lb.mean() - la.mean())
    se_d = float(math.sqrt(lb.var(ddof=1) / lb.size + la.var(ddof=1) / la.size))
    if se_d == 0:
        ratio_ci, p_t = (math.exp(mean_d), math.exp(mean_d)), (1.0 if mean_d == 0 else 0.0)
    else:
        t = ttest_ind(lb, la, equal_var=False)
        ci = t.confidence_interval(confidence_level=confidence)
        ratio_ci, p_t = (math.exp(ci.low), math.exp(ci.high)), float(t.pvalue)
    rng = make_rng(rng)
    (qa,) = quantile_bootstrap(a, q=0.95, n_resamples=n_resamples, rng=rng)
    (qb,) = quantile_bootstrap(b, q=0.95, n_resamples=n_resamples, rng=rng)
    boot = qb - qa
    result = LatencyComparison(
        design="unpaired", n_a=int(a.size), n_b=int(b.size), ratio=math.exp(mean_d),
        ratio_ci=ratio_ci, ratio_p_value=p_t, ratio_test="Welch t on log latency (ttest_ind)",
        wilcoxon_p_value=None, percentiles_a=pa, percentiles_b=pb,
        p95_diff_ms=pb["p95"] - pa["p95"], p95_diff_ci=percentile_interval(boot, confidence),
        p95_ci_method="independent bootstrap per arm, percentile", n_resamples=n_resamples,
        mean_log_diff=mean_d, se_log_diff=se_d, sd_log_diff=NAN, notes=notes)
    if margin_ms is not None:
        result.margin_ms = float(margin_ms)
        result.p_noninferiority = _ni_p(boot, margin_ms)
    return result
