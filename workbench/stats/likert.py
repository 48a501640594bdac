"""Likert 1-5 ratings (accuracy, safety): raters averaged within an item, then paired.

- per-arm mean with a BCa bootstrap interval over items;
- mean paired difference B - A with a paired BCa bootstrap interval
  (``scipy.stats.bootstrap(..., paired=True, method="BCa")``; above ``SCIPY_BCA_MAX`` items the
  same BCa with a closed-form jackknife, see ``bootstrap.bca_mean_interval``);
- Wilcoxon signed-rank ``wilcoxon(b, a, zero_method="pratt")``;
- probability of superiority P(B > A) + P(B = A) / 2 over items;
- always-valid (peeking-safe) interval and p-value of the mean difference: the exact betting
  confidence sequence for values in [-(hi - lo), hi - lo] (``sequential.betting_sequence``), never
  below the Wilcoxon p-value and never narrower than the BCa interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import bootstrap, wilcoxon

from ._base import NAN, Interval, Result, as_float_array, make_rng
from .bootstrap import bca_mean_interval
from .sequential import betting_sequence

SCIPY_BCA_MAX = 2000


def item_means(item_ids, values) -> tuple[np.ndarray, np.ndarray]:
    """(items, mean value per item) over the non-missing values: raters averaged within an item."""
    values = as_float_array(values)
    item_ids = np.asarray(item_ids).reshape(-1)
    keep = np.isfinite(values)
    items, inverse = np.unique(item_ids[keep], return_inverse=True)
    sums = np.bincount(inverse, weights=values[keep], minlength=items.size)
    counts = np.bincount(inverse, minlength=items.size)
    return items, sums / np.maximum(counts, 1)


def _mean_ci(x: np.ndarray, n_resamples: int, confidence: float, rng) -> Interval:
    if x.size < 2:
        return (NAN, NAN)
    if np.ptp(x) == 0:
        return (float(x[0]), float(x[0]))
    if x.size > SCIPY_BCA_MAX:
        return bca_mean_interval(x, n_resamples=n_resamples, confidence=confidence, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap((x,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                        method="BCa", vectorized=True, rng=rng)
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


@dataclass
class LikertMean(Result):
    n_items: int
    mean: float
    ci: Interval
    ci_method: str = "BCa bootstrap over items"


def likert_mean(x, *, n_resamples: int = 2000, confidence: float = 0.95, rng=None) -> LikertMean:
    """Mean of per-item ratings with a BCa interval."""
    x = as_float_array(x)
    x = x[np.isfinite(x)]
    return LikertMean(n_items=int(x.size), mean=float(x.mean()) if x.size else NAN,
                      ci=_mean_ci(x, n_resamples, confidence, make_rng(rng)))


@dataclass
class LikertComparison(Result):
    """Paired per-item ratings of B vs A; ``diff`` = mean(B - A)."""

    n_items: int
    mean_a: float
    mean_b: float
    ci_a: Interval
    ci_b: Interval
    diff: float
    diff_ci: Interval
    ci_method: str
    p_value: float
    test: str
    prob_superiority: float
    prob_superiority_ci: Interval
    sd_diff: float
    diff_ci_always_valid: Interval = (NAN, NAN)
    p_value_always_valid: float = NAN
    always_valid_method: str = "none"
    notes: list[str] = field(default_factory=list)


def paired_likert(a, b, *, n_resamples: int = 2000, confidence: float = 0.95, rng=None,
                  scale: tuple[float, float] = (1.0, 5.0)) -> LikertComparison:
    """Paired per-item ratings (already averaged over raters); items missing in either arm dropped.

    ``scale``: the rating scale's (lowest, highest) value, which bounds the always-valid sequence.
    """
    a, b = as_float_array(a), as_float_array(b)
    if a.shape != b.shape:
        raise ValueError("paired arrays must have the same length")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    rng = make_rng(rng)
    notes = []
    d = b - a
    ps = (b > a) + 0.5 * (b == a)
    if n < 2:
        return LikertComparison(n, float(a.mean()) if n else NAN, float(b.mean()) if n else NAN,
                                (NAN, NAN), (NAN, NAN), float(d.mean()) if n else NAN, (NAN, NAN),
                                "BCa paired bootstrap", NAN, "Wilcoxon signed-rank (pratt)",
                                float(ps.mean()) if n else NAN, (NAN, NAN), NAN,
                                notes=["fewer than 2 items rated in both arms"])
    if np.ptp(d) == 0:
        diff_ci = (float(d[0]), float(d[0]))
        notes.append("every item has the same difference: the interval is a single point")
    elif n > SCIPY_BCA_MAX:
        diff_ci = bca_mean_interval(d, n_resamples=n_resamples, confidence=confidence, rng=rng)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bootstrap((b, a), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
                            vectorized=True, method="BCa", n_resamples=n_resamples,
                            confidence_level=confidence, rng=rng)
        diff_ci = (float(res.confidence_interval.low), float(res.confidence_interval.high))
    if np.all(d == 0):
        p = 1.0
        notes.append("no item differs between the arms: Wilcoxon p set to 1")
    else:
        p = float(wilcoxon(b, a, zero_method="pratt").pvalue)
    bound = float(scale[1] - scale[0])
    if np.all((a >= scale[0]) & (a <= scale[1]) & (b >= scale[0]) & (b <= scale[1])):
        av = betting_sequence(d, bound, alpha=1 - confidence, fixed_p=p, fixed_interval=diff_ci)
        av_ci, av_p, av_method = av.interval, av.p_value, av.method
    else:
        av_ci, av_p, av_method = (NAN, NAN), NAN, "none"
        notes.append(f"ratings outside the scale {scale[0]:g}-{scale[1]:g}: no always-valid form")
    return LikertComparison(
        n_items=n, mean_a=float(a.mean()), mean_b=float(b.mean()),
        ci_a=_mean_ci(a, n_resamples, confidence, rng), ci_b=_mean_ci(b, n_resamples, confidence, rng),
        diff=float(d.mean()), diff_ci=diff_ci, ci_method="BCa paired bootstrap over items",
        p_value=p, test="Wilcoxon signed-rank, zero_method='pratt'",
        prob_superiority=float(ps.mean()),
        prob_superiority_ci=_mean_ci(ps, n_resamples, confidence, rng),
        sd_diff=float(d.std(ddof=1)) if n > 1 else math.nan, diff_ci_always_valid=av_ci,
        p_value_always_valid=av_p, always_valid_method=av_method, notes=notes)
