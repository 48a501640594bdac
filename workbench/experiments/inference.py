"""Which interval and p-value are shown for a statistic, fixed-horizon or always-valid.

One place for the choice, so the verdict, the comparisons and the exploratory p-values of a report
agree: ``sequential=False`` gives the fixed-horizon test of each statistic (valid only at the
planned n); ``sequential=True`` gives its always-valid form (valid at any look):

- paired / independent pass-fail differences: the score-type confidence sequence of
  ``stats.sequential`` (tuned for N* = the planned n);
- expert-rating differences and per-item vote scores: the exact betting sequence computed by
  ``paired_likert`` / ``pairwise_preference`` (bounded values, valid at any n);
- the latency ratio: the asymptotic confidence sequence on the paired log differences;
- position bias: the betting sequence on the decisive votes.

An always-valid p-value is never below the fixed-horizon p-value of the same test, and its
interval always contains the fixed-horizon one. A statistic without an always-valid form (p95
difference, Wilcoxon on log latency) keeps its fixed-horizon p-value and says so in its label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..stats._base import Result
from ..stats.proportions import IndependentProportions, PairedProportions
from ..stats.sequential import (ALWAYS_VALID, FIXED, confidence_sequence,
                                independent_binary_sequence, never_below,
                                paired_binary_sequence)

NO_FORM = f"{FIXED}, no always-valid form"


@dataclass
class Shown(Result):
    """An estimate with the interval and p-value shown for it, and which kind they are."""

    estimate: float | None
    interval: tuple[float, float] | None
    p_value: float | None
    label: str  # "fixed-horizon" | "always-valid" | "fixed-horizon, no always-valid form"
    method: str


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def hull(inner, outer):
    """``outer`` widened to contain ``inner`` (either may be missing)."""
    if not (outer and all(_finite(v) for v in outer)):
        return tuple(inner) if inner else None
    if not (inner and all(_finite(v) for v in inner)):
        return tuple(outer)
    return (min(inner[0], outer[0]), max(inner[1], outer[1]))


def binary_sequence(stat, n_planned: int | None, alpha: float, null: float):
    """The always-valid sequence of a pass/fail difference for H0: p_B - p_A = null."""
    if isinstance(stat, PairedProportions):
        return paired_binary_sequence(stat.b_only, stat.a_only, stat.n, n_planned or stat.n,
                                      alpha=alpha, null=null)
    if isinstance(stat, IndependentProportions):
        return independent_binary_sequence(stat.events_b, stat.n_b, stat.events_a, stat.n_a,
                                           n_planned or stat.n_a + stat.n_b, alpha=alpha,
                                           null=null)
    raise TypeError(f"not a pass/fail comparison: {type(stat).__name__}")


def binary(stat, *, sequential: bool, n_planned: int | None, alpha: float = 0.05) -> Shown:
    """p_B - p_A with its interval and two-sided p-value for H0: no difference."""
    if not sequential:
        return Shown(stat.diff, tuple(stat.ci), stat.p_value, FIXED, stat.test)
    res = binary_sequence(stat, n_planned, alpha, 0.0)
    return Shown(stat.diff, hull(stat.ci, res.interval), never_below(res.p_value, stat.p_value),
                 ALWAYS_VALID, res.method)


def expert(stat, *, sequential: bool) -> Shown:
    """Mean paired rating difference B - A (a ``LikertComparison``)."""
    if not sequential:
        return Shown(stat.diff, tuple(stat.diff_ci), stat.p_value, FIXED, stat.test)
    return Shown(stat.diff, tuple(stat.diff_ci_always_valid), stat.p_value_always_valid,
                 ALWAYS_VALID, stat.always_valid_method)


def win_rate(pref, *, sequential: bool) -> Shown:
    """The per-item vote score minus 1/2 (a ``Preference``): one estimand for value, interval and
    p-value (bootstrap over items and the sign-flip test, or their betting sequence)."""
    estimate = pref.item_score_mean - 0.5 if _finite(pref.item_score_mean) else None
    if not sequential:
        interval, p, label, method = pref.item_score_ci, pref.p_value, FIXED, pref.p_value_test
    else:
        interval, p, label = pref.item_score_av_ci, pref.p_value_always_valid, ALWAYS_VALID
        method = "betting confidence sequence on per-item scores vs 1/2"
    interval = tuple(v - 0.5 for v in interval) if interval and all(
        _finite(v) for v in interval) else None
    return Shown(estimate, interval, p if _finite(p) else None, label, method)


def latency_ratio(lat, *, sequential: bool, n_planned: int | None,
                  alpha: float = 0.05) -> Shown:
    """Ratio of geometric means B / A and the p-value of the t test on log latency."""
    fixed = Shown(lat.ratio, tuple(lat.ratio_ci), lat.ratio_p_value, FIXED, lat.ratio_test)
    if not sequential:
        return fixed
    n, sd = lat.n_a, lat.sd_log_diff
    if lat.design != "paired" or not (_finite(sd) and sd > 0 and n >= 2):
        fixed.label = NO_FORM
        return fixed
    res = confidence_sequence(lat.mean_log_diff, sd, n, n_planned or n, alpha=alpha)
    interval = tuple(math.exp(v) for v in res.interval)
    return Shown(lat.ratio, hull(lat.ratio_ci, interval),
                 never_below(res.p_value, lat.ratio_p_value), ALWAYS_VALID, res.method)


def position_bias(bias: dict | None, *, sequential: bool) -> tuple[float | None, str]:
    """(p-value, label) of the position-bias test (``PositionBias.to_dict()``)."""
    if not bias:
        return None, FIXED
    if sequential:
        return bias.get("p_value_always_valid"), ALWAYS_VALID
    return bias.get("p_value"), FIXED
