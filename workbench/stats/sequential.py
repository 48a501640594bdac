"""Peeking: fixed-horizon vs always-valid inference.

A fixed-horizon p-value or interval is only valid at the planned n. While data is still arriving
the always-valid mode uses GrowthBook's asymptotic confidence sequence (Waudby-Smith et al. 2021 /
Howard et al. 2021, normal mixture), tuned so it is tightest at the planned n N*:

    rho = sqrt((-2 ln(alpha) + ln(-2 ln(alpha) + 1)) / N*)
    half-width = sd * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * ln( sqrt(n rho^2 + 1) / alpha ) )

where sd is the per-item standard deviation (sd = SE * sqrt(n)). Its inversion is the always-valid
p-value p = min(1, sqrt(n rho^2 + 1) * exp(-n^2 rho^2 (est - null)^2 / (2 sd^2 (n rho^2 + 1)))),
which is exactly the mSPRT p-value (Johari et al.) with a normal mixing distribution of variance
tau^2 = rho^2 sd^2. That form is asymptotic: with a plug-in SD it is far too small at small n (and
0 when the SD is 0).

For bounded per-item values (rating differences in [-4, 4], per-item vote scores in [0, 1]) the
always-valid inference is exact instead: ``betting_sequence`` is a betting confidence sequence
(Waudby-Smith & Ramdas 2023) with constant bets mixed over a fixed grid. For H0: mean = m and
values in [-B, B], each wealth process prod_i (1 + lam (x_i - m) / (B + |m|)) is a non-negative
martingale under H0 for every fixed |lam| < 1, so their average M_n is one too and Ville's
inequality gives P(exists n: M_n >= 1/alpha) <= alpha at every sample size, n = 1 included. The
p-value is 1 / M_n (the product does not depend on the order of the items); the sequence is the
set of means m with M_n(m) < 1/alpha. Shown p-values are never below the fixed-horizon p-value of
the same test (the larger of the two is still always-valid) and the shown interval always contains
the fixed-horizon one. Every result carries its label: "fixed-horizon" or "always-valid".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from ._base import NAN, Interval, Result, as_float_array

FIXED = "fixed-horizon"
ALWAYS_VALID = "always-valid"


def cs_rho(n_planned: float, alpha: float = 0.05) -> float:
    """GrowthBook's tuning parameter: the CS is narrowest at n = n_planned."""
    if n_planned <= 0:
        raise ValueError("n_planned must be positive")
    la = -2 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1)) / n_planned)


def cs_half_width(sd: float, n: float, n_planned: float, alpha: float = 0.05) -> float:
    """Half-width of the asymptotic confidence sequence for a mean after n observations."""
    if n <= 0:
        return math.inf
    r2 = cs_rho(n_planned, alpha) ** 2
    return sd * math.sqrt(2 * (n * r2 + 1) / (n * n * r2) * math.log(math.sqrt(n * r2 + 1) / alpha))


def always_valid_p_value(estimate: float, sd: float, n: float, n_planned: float, *,
                         null: float = 0.0, alpha: float = 0.05) -> float:
    """Always-valid two-sided p-value for H0: mean = null (mSPRT with a normal mixture)."""
    if n <= 0 or not math.isfinite(estimate):
        return NAN
    if sd <= 0:
        return 1.0 if estimate == null else 0.0
    r2 = cs_rho(n_planned, alpha) ** 2
    s = (estimate - null) / sd
    log_p = 0.5 * math.log(n * r2 + 1) - n * n * r2 * s * s / (2 * (n * r2 + 1))
    return float(min(1.0, math.exp(log_p)))


@dataclass
class SequentialEstimate(Result):
    """An estimate with its interval and p-value, labelled fixed-horizon or always-valid."""

    estimate: float
    interval: Interval
    p_value: float
    label: str
    n: float
    n_planned: float | None
    alpha: float
    null: float
    method: str


def confidence_sequence(estimate: float, sd: float, n: float, n_planned: float, *,
                        alpha: float = 0.05, null: float = 0.0) -> SequentialEstimate:
    """Always-valid interval and p-value for a mean (sd: per-item SD, e.g. of paired differences)."""
    half = cs_half_width(sd, n, n_planned, alpha)
    return SequentialEstimate(
        estimate=estimate, interval=(estimate - half, estimate + half),
        p_value=always_valid_p_value(estimate, sd, n, n_planned, null=null, alpha=alpha),
        label=ALWAYS_VALID, n=n, n_planned=n_planned, alpha=alpha, null=null,
        method=f"asymptotic confidence sequence (GrowthBook), N* = {n_planned:g}")


def fixed_horizon(estimate: float, sd: float, n: float, *, alpha: float = 0.05,
                  null: float = 0.0) -> SequentialEstimate:
    """The ordinary normal interval and two-sided p-value (valid only at the planned n)."""
    se = sd / math.sqrt(n) if n > 0 else NAN
    z = norm.ppf(1 - alpha / 2)
    if se > 0:
        p = float(2 * norm.sf(abs(estimate - null) / se))
    else:
        p = 1.0 if estimate == null else 0.0
    return SequentialEstimate(estimate=estimate, interval=(estimate - z * se, estimate + z * se),
                              p_value=p, label=FIXED, n=n, n_planned=None, alpha=alpha, null=null,
                              method="normal (z) interval")


@dataclass
class PValueLabel(Result):
    label: str  # "fixed-horizon" | "always-valid"
    valid_now: bool
    message: str


def p_value_label(n: int, n_planned: int | None, *, sequential: bool) -> PValueLabel:
    """Which kind of p-value is on screen, and whether it may be acted on at this n."""
    if sequential:
        extra = f" (tuned for N* = {n_planned})" if n_planned else ""
        return PValueLabel(ALWAYS_VALID, True,
                           f"always-valid: may be read at any look{extra}")
    if not n_planned:
        return PValueLabel(FIXED, False, "fixed-horizon with no planned n: valid only if this is "
                           "the final, pre-registered sample size")
    if n < n_planned:
        return PValueLabel(FIXED, False, f"fixed-horizon, interim look ({n}/{n_planned}): not "
                           "valid until the planned n is reached; switch to always-valid to peek")
    return PValueLabel(FIXED, True, f"fixed-horizon at the planned n ({n} >= {n_planned})")


def _score_sequence(estimate: float, sd_at, n: float, n_planned: float, alpha: float,
                    null: float, method: str) -> SequentialEstimate:
    """Always-valid interval/p-value with the SD evaluated under each null (score-type): the
    interval is the set of nulls whose always-valid p-value exceeds alpha, so the two agree."""
    def log_p(delta: float) -> float:
        return math.log(max(always_valid_p_value(estimate, sd_at(delta), n, n_planned,
                                                 null=delta, alpha=alpha), 1e-300))

    target = math.log(alpha)
    eps = 1e-9

    def root(lo: float, hi: float, edge: float) -> float:
        f_lo, f_hi = log_p(lo) - target, log_p(hi) - target
        if f_lo * f_hi > 0:
            return edge
        return brentq(lambda d: log_p(d) - target, lo, hi, xtol=1e-10)

    lower = root(-1 + eps, estimate, -1.0) if estimate > -1 else -1.0
    upper = root(estimate, 1 - eps, 1.0) if estimate < 1 else 1.0
    return SequentialEstimate(
        estimate=estimate, interval=(lower, upper),
        p_value=always_valid_p_value(estimate, sd_at(null), n, n_planned, null=null, alpha=alpha),
        label=ALWAYS_VALID, n=n, n_planned=n_planned, alpha=alpha, null=null,
        method=f"{method}; asymptotic confidence sequence (GrowthBook), N* = {n_planned:g}")


def paired_binary_sequence(b_only: int, a_only: int, n: int, n_planned: float, *,
                           alpha: float = 0.05, null: float = 0.0) -> SequentialEstimate:
    """Always-valid inference for p_B - p_A from paired 0/1 outcomes (b_only: only B had it).

    The per-item SD is taken under each null, from Tango's restricted MLE, so zero observed
    events do not give a zero-width sequence.
    """
    from .proportions import _tango_restricted_p

    def sd_at(delta: float) -> float:
        q = _tango_restricted_p(b_only, a_only, n, delta)
        return math.sqrt(max(2 * q + delta * (1 - delta), 0.0))

    return _score_sequence((b_only - a_only) / n, sd_at, n, n_planned, alpha, null,
                           "paired score variance (Tango)")


def independent_binary_sequence(events_b: int, n_b: int, events_a: int, n_a: int,
                                n_planned: float, *, alpha: float = 0.05,
                                null: float = 0.0) -> SequentialEstimate:
    """Always-valid inference for p_B - p_A from two independent samples (n = n_A + n_B)."""
    from .proportions import _fm_restricted

    n = n_a + n_b

    def sd_at(delta: float) -> float:
        q1, q2 = _fm_restricted(events_b, n_b, events_a, n_a, delta)
        return math.sqrt(max((q1 * (1 - q1) / n_b + q2 * (1 - q2) / n_a) * n, 0.0))

    return _score_sequence(events_b / n_b - events_a / n_a, sd_at, n, n_planned, alpha, null,
                           "score variance (Farrington-Manning)")


# -- exact always-valid inference for bounded values (betting) ----------------------------------
BET_GRID = np.concatenate([-np.geomspace(0.9, 0.005, 24), np.geomspace(0.005, 0.9, 24)])
BETTING = "betting confidence sequence (exact for bounded values, any n)"


def betting_log_wealth(x, bound: float, null: float = 0.0) -> float:
    """log M_n: the wealth of constant bets on x_i - null, averaged over ``BET_GRID``."""
    x = as_float_array(x)
    scale = bound + abs(null)
    z = (x - null) / scale  # in [-1, 1] for values in [-bound, bound]
    logs = np.log1p(np.clip(z[:, None] * BET_GRID[None, :], -1 + 1e-12, None)).sum(axis=0)
    top = logs.max()
    return float(top + math.log(np.mean(np.exp(logs - top))))


def betting_p_value(x, bound: float, null: float = 0.0) -> float:
    """Always-valid p-value for H0: mean(x) = null, x in [-bound, bound]: min(1, 1 / M_n)."""
    x = as_float_array(x)
    if not x.size:
        return NAN
    return float(min(1.0, math.exp(-betting_log_wealth(x, bound, null))))


def betting_sequence(x, bound: float, *, alpha: float = 0.05, fixed_p: float | None = None,
                     fixed_interval: Interval | None = None, null: float = 0.0,
                     n_planned: float | None = None) -> SequentialEstimate:
    """Exact always-valid interval and p-value for the mean of values in [-bound, bound].

    ``fixed_p`` / ``fixed_interval`` (the fixed-horizon test of the same estimand): the p-value
    shown is never below ``fixed_p`` and the interval always contains ``fixed_interval``.
    """
    x = as_float_array(x)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return SequentialEstimate(NAN, (NAN, NAN), NAN, ALWAYS_VALID, 0, n_planned, alpha, null,
                                  BETTING)
    if np.any(np.abs(x) > bound + 1e-9):
        raise ValueError(f"values must lie in [-{bound:g}, {bound:g}]")
    estimate = float(x.mean())
    target = math.log(1 / alpha)

    def excess(m: float) -> float:
        return betting_log_wealth(x, bound, m) - target

    def edge(direction: int) -> float:
        # walk out from the estimate (where the wealth is at most 1) to the first rejected mean
        far = direction * bound
        grid = np.linspace(estimate, far, 65)[1:]
        prev = estimate
        for m in grid:
            if excess(m) >= 0:
                return float(brentq(excess, prev, m, xtol=1e-10)) if prev != m else float(m)
            prev = m
        return float(far)

    lo, hi = edge(-1), edge(1)
    if fixed_interval is not None and all(v is not None and math.isfinite(v)
                                          for v in fixed_interval):
        lo, hi = min(lo, fixed_interval[0]), max(hi, fixed_interval[1])
    p = betting_p_value(x, bound, null)
    if fixed_p is not None and math.isfinite(fixed_p):
        p = max(p, float(fixed_p))
    return SequentialEstimate(estimate=estimate, interval=(lo, hi), p_value=p, label=ALWAYS_VALID,
                              n=n, n_planned=n_planned, alpha=alpha, null=null, method=BETTING)


def never_below(p_always_valid: float, p_fixed: float | None) -> float:
    """An always-valid p-value raised to the fixed-horizon one of the same test where it is lower
    (the maximum of a valid always-valid p-value and anything is still always-valid)."""
    if p_fixed is None or not math.isfinite(p_fixed) or not math.isfinite(p_always_valid):
        return p_always_valid
    return max(p_always_valid, float(p_fixed))
