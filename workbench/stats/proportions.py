"""Binary outcomes per item: pass/fail, error, safety failure.

Paired (both arms answered the same items, shadow mode):
- difference B - A with the paired SE sqrt((var_A + var_B - 2 cov_AB) / n) (Wald, shown for reference);
- primary interval: Tango (1998) asymptotic score interval, the inversion of the same score test the
  non-inferiority p-values use (its statistic at 0 is the McNemar z), good at small n;
- Newcombe (1998) square-and-add interval (method 10, with the phi adjustment of Newcombe & Altman
  and Fagerland et al. 2017) as a second small-sample interval;
- exact McNemar: ``binomtest(n_B_only, n_discordant, 0.5)``; Wilson interval per arm.

Independent (split / canary traffic): Newcombe hybrid score interval for the difference, Fisher
exact test (Boschloo for small tables), Farrington-Manning score test for non-inferiority, relative
risk via ``scipy.stats.contingency.relative_risk``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import binomtest, boschloo_exact, fisher_exact, norm
from scipy.stats.contingency import relative_risk

from ._base import NAN, Interval, Result, as_float_array, z_crit

SMALL_N = 300  # below this the note says which small-sample interval is used
BOSCHLOO_MAX_N = 400  # Boschloo's exact test is slow; only for small tables


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of one proportion.

    The closed form of scipy's ``binomtest(k, n).proportion_ci(method="wilson")`` (checked equal
    in the tests); computed directly because ``binomtest`` also evaluates an exact p-value, which
    costs milliseconds at n = 50k.
    """
    if n <= 0:
        return (NAN, NAN)
    z = z_crit(confidence)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, center - half)
    hi = 1.0 if successes == n else min(1.0, center + half)
    return (lo, hi)


def rule_of_three(events: int, n: int, label: str) -> str | None:
    """A note when an arm has zero events: the 95% upper bound is about 3/n."""
    if n <= 0 or events:
        return None
    exact = 1 - 0.05 ** (1 / n)
    return (f"no events in {label} out of {n}: 95% upper bound about 3/n = {3 / n:.2%} "
            f"(rule of three; exact one-sided {exact:.2%})")


# -- paired -------------------------------------------------------------------------------
def _tango_restricted_p(b_only: int, a_only: int, n: int, delta: float) -> float:
    """Restricted MLE of P(A=1, B=0) under p_B - p_A = delta (Tango 1998)."""
    w = -b_only - a_only + (2 * n - b_only + a_only) * delta
    disc = w * w + 8 * n * a_only * delta * (1 - delta)
    return (math.sqrt(max(disc, 0.0)) - w) / (4 * n)


def tango_score(b_only: int, a_only: int, n: int, delta: float) -> float:
    """Tango's score statistic for H0: p_B - p_A = delta (b_only: items where only B had the event).

    At delta = 0 it equals the (uncorrected) McNemar z = (b - c) / sqrt(b + c).
    """
    q = _tango_restricted_p(b_only, a_only, n, delta)
    var = n * (2 * q + delta * (1 - delta))
    diff = b_only - a_only - n * delta
    if var <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def tango_interval(b_only: int, a_only: int, n: int, confidence: float = 0.95) -> Interval:
    """Tango (1998) asymptotic score interval for p_B - p_A from the discordant counts."""
    if n <= 0:
        return (NAN, NAN)
    z = z_crit(confidence)
    est = (b_only - a_only) / n
    tol = 1e-10

    def root(target: float, lo: float, hi: float, edge: float) -> float:
        f = lambda d: tango_score(b_only, a_only, n, d) - target  # noqa: E731
        if f(lo) * f(hi) > 0:
            return edge
        return brentq(f, lo, hi, xtol=1e-12)

    lower = -1.0 if est <= -1 else root(z, -1 + tol, min(est, 1 - tol), -1.0)
    upper = 1.0 if est >= 1 else root(-z, max(est, -1 + tol), 1 - tol, 1.0)
    return (float(lower), float(upper))


def tango_noninferiority_p(b_only: int, a_only: int, n: int, margin: float, *,
                           lower_is_better: bool = True) -> float:
    """One-sided score-test p-value that B is not worse than A by ``margin`` (paired).

    lower_is_better (failures): H0 p_B - p_A >= margin.  Otherwise (pass rates): H0 p_B - p_A <= -margin.
    """
    if n <= 0:
        return NAN
    if lower_is_better:
        return float(norm.cdf(tango_score(b_only, a_only, n, margin)))
    return float(norm.sf(tango_score(b_only, a_only, n, -margin)))


def newcombe_paired_interval(n11: int, n10: int, n01: int, n00: int,
                             confidence: float = 0.95) -> Interval:
    """Newcombe (1998) square-and-add interval for p_B - p_A.

    Cells: n11 both arms had the event, n10 only A, n01 only B, n00 neither.
    Matches Fagerland, Lydersen & Laake (2017) ``Newcombe_square_and_add_CI_paired_2x2``.
    """
    n = n11 + n10 + n01 + n00
    if n <= 0:
        return (NAN, NAN)
    a_events, b_events = n11 + n10, n11 + n01
    p_a, p_b = a_events / n, b_events / n
    la, ua = wilson_interval(a_events, n, confidence)
    lb, ub = wilson_interval(b_events, n, confidence)
    margins = (a_events, n - a_events, b_events, n - b_events)
    if min(margins) == 0:
        phi = 0.0
    else:
        det = n11 * n00 - n10 * n01
        if det > n / 2:
            det -= n / 2
        elif det >= 0:
            det = 0
        phi = det / math.sqrt(float(np.prod(margins, dtype=float)))
    d = p_b - p_a
    lower = d - math.sqrt(max((p_b - lb) ** 2 + (ua - p_a) ** 2 - 2 * phi * (p_b - lb) * (ua - p_a), 0))
    upper = d + math.sqrt(max((ub - p_b) ** 2 + (p_a - la) ** 2 - 2 * phi * (ub - p_b) * (p_a - la), 0))
    return (max(-1.0, lower), min(1.0, upper))


@dataclass
class PairedProportions(Result):
    """B vs A on the same items; ``diff`` = p_B - p_A."""

    n: int
    events_a: int
    events_b: int
    p_a: float
    p_b: float
    ci_a: Interval
    ci_b: Interval
    diff: float
    se: float
    ci: Interval
    ci_method: str
    ci_newcombe: Interval
    ci_wald: Interval
    b_only: int
    a_only: int
    p_value: float
    test: str
    sd_diff: float
    ratio: float
    ratio_ci: Interval
    ratio_note: str
    margin: float | None = None
    p_noninferiority: float | None = None
    notes: list[str] = field(default_factory=list)
    design: str = "paired"


def paired_proportions(a, b, *, confidence: float = 0.95, margin: float | None = None,
                       lower_is_better: bool = False, label: str = "event") -> PairedProportions:
    """Paired binary outcomes (0/1 per item, same items in both arrays).

    ``margin`` (a proportion, e.g. 0.01) adds a one-sided non-inferiority p-value (Tango score
    test); ``lower_is_better`` says which direction is worse (True for failures/errors).
    """
    a, b = as_float_array(a), as_float_array(b)
    if a.shape != b.shape:
        raise ValueError("paired arrays must have the same length")
    n = int(a.size)
    n11 = int(np.sum((a == 1) & (b == 1)))
    n10 = int(np.sum((a == 1) & (b == 0)))
    n01 = int(np.sum((a == 0) & (b == 1)))
    n00 = n - n11 - n10 - n01
    ea, eb = n11 + n10, n11 + n01
    p_a = ea / n if n else NAN
    p_b = eb / n if n else NAN
    diff = p_b - p_a
    if n:
        cov = n11 / n - p_a * p_b
        var = p_a * (1 - p_a) + p_b * (1 - p_b) - 2 * cov
        se = math.sqrt(max(var, 0.0) / n)
        sd_diff = math.sqrt(max(var, 0.0))
    else:
        se = sd_diff = NAN
    z = z_crit(confidence)
    discordant = n10 + n01
    p_value = float(binomtest(n01, discordant, 0.5).pvalue) if discordant else 1.0
    notes = []
    if n and n < SMALL_N:
        notes.append(f"n = {n} < {SMALL_N}: the interval is Tango's score interval (Newcombe's "
                     "square-and-add also shown); the Wald interval from the paired SE is for "
                     "reference only")
    for events, arm in ((ea, "A"), (eb, "B")):
        note = rule_of_three(events, n, f"{arm} ({label})")
        if note:
            notes.append(note)
    ratio, ratio_ci, ratio_note = _relative_risk(eb, n, ea, n, paired=True)
    result = PairedProportions(
        n=n, events_a=ea, events_b=eb, p_a=p_a, p_b=p_b,
        ci_a=wilson_interval(ea, n, confidence), ci_b=wilson_interval(eb, n, confidence),
        diff=diff, se=se, ci=tango_interval(n01, n10, n, confidence),
        ci_method="Tango score (1998)", ci_newcombe=newcombe_paired_interval(n11, n10, n01, n00, confidence),
        ci_wald=(diff - z * se, diff + z * se) if n else (NAN, NAN),
        b_only=n01, a_only=n10, p_value=p_value,
        test="exact McNemar: binomtest(B-only, discordant, 0.5)", sd_diff=sd_diff,
        ratio=ratio, ratio_ci=ratio_ci, ratio_note=ratio_note, notes=notes)
    if margin is not None:
        result.margin = float(margin)
        result.p_noninferiority = tango_noninferiority_p(n01, n10, n, margin,
                                                         lower_is_better=lower_is_better)
    return result


def _relative_risk(eb: int, nb: int, ea: int, na: int, *, paired: bool) -> tuple[float, Interval, str]:
    if nb <= 0 or na <= 0:
        return NAN, (NAN, NAN), "no data"
    if ea == 0:
        return NAN, (NAN, NAN), "not defined: A has no events"
    res = relative_risk(eb, nb, ea, na)
    ci = res.confidence_interval(confidence_level=0.95)
    note = "p_B / p_A, scipy relative_risk interval"
    if paired:
        note += " (independent-samples formula: conservative for paired items)"
    return float(res.relative_risk), (float(ci.low), float(ci.high)), note


# -- independent --------------------------------------------------------------------------
def newcombe_independent_interval(xb: int, nb: int, xa: int, na: int,
                                  confidence: float = 0.95) -> Interval:
    """Newcombe (1998) hybrid score interval (method 10) for p_B - p_A, independent samples."""
    if na <= 0 or nb <= 0:
        return (NAN, NAN)
    pb, pa = xb / nb, xa / na
    lb, ub = wilson_interval(xb, nb, confidence)
    la, ua = wilson_interval(xa, na, confidence)
    d = pb - pa
    return (d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2),
            d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2))


def _fm_restricted(xb: int, nb: int, xa: int, na: int, delta: float) -> tuple[float, float]:
    """Restricted MLE (p_B, p_A) under p_B - p_A = delta (Farrington & Manning 1990)."""
    p1, p2 = xb / nb, xa / na
    theta = na / nb
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta ** 2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b ** 3 / (27 * a ** 3) - b * c / (6 * a ** 2) + d / (2 * a)
    u2 = b ** 2 / (9 * a ** 2) - c / (3 * a)
    u = math.copysign(math.sqrt(max(u2, 0.0)), v) if v != 0 else math.sqrt(max(u2, 0.0))
    if u == 0:
        q1 = -b / (3 * a)
    else:
        w = (math.pi + math.acos(min(1.0, max(-1.0, v / u ** 3)))) / 3
        q1 = 2 * u * math.cos(w) - b / (3 * a)
    q1 = min(1.0, max(0.0, q1))
    return q1, min(1.0, max(0.0, q1 - delta))


def fm_noninferiority_p(xb: int, nb: int, xa: int, na: int, margin: float, *,
                        lower_is_better: bool = True) -> float:
    """One-sided Farrington-Manning score test that B is not worse than A by ``margin``."""
    if na <= 0 or nb <= 0:
        return NAN
    delta = margin if lower_is_better else -margin
    q1, q2 = _fm_restricted(xb, nb, xa, na, delta)
    var = q1 * (1 - q1) / nb + q2 * (1 - q2) / na
    diff = xb / nb - xa / na - delta
    if var <= 0:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        z = diff / math.sqrt(var)
    return float(norm.cdf(z) if lower_is_better else norm.sf(z))


@dataclass
class IndependentProportions(Result):
    """B vs A on different items (split / canary traffic); ``diff`` = p_B - p_A."""

    n_a: int
    n_b: int
    events_a: int
    events_b: int
    p_a: float
    p_b: float
    ci_a: Interval
    ci_b: Interval
    diff: float
    se: float
    ci: Interval
    ci_method: str
    p_value: float
    test: str
    p_boschloo: float | None
    ratio: float
    ratio_ci: Interval
    ratio_note: str
    margin: float | None = None
    p_noninferiority: float | None = None
    notes: list[str] = field(default_factory=list)
    design: str = "unpaired"


def independent_proportions(events_a: int, n_a: int, events_b: int, n_b: int, *,
                            confidence: float = 0.95, margin: float | None = None,
                            lower_is_better: bool = False, label: str = "event") -> IndependentProportions:
    """Two independent proportions: Newcombe interval, Fisher exact test, relative risk."""
    ea, eb, na, nb = int(events_a), int(events_b), int(n_a), int(n_b)
    p_a = ea / na if na else NAN
    p_b = eb / nb if nb else NAN
    diff = p_b - p_a
    se = (math.sqrt(p_a * (1 - p_a) / na + p_b * (1 - p_b) / nb) if na and nb else NAN)
    table = [[eb, nb - eb], [ea, na - ea]]
    p_value = float(fisher_exact(table).pvalue) if na and nb else NAN
    p_boschloo = None
    if na and nb and na + nb <= BOSCHLOO_MAX_N:
        p_boschloo = float(boschloo_exact(table, alternative="two-sided").pvalue)
    notes = ["independent traffic (different items per arm): unpaired tests"]
    for events, n, arm in ((ea, na, "A"), (eb, nb, "B")):
        note = rule_of_three(events, n, f"{arm} ({label})")
        if note:
            notes.append(note)
    ratio, ratio_ci, ratio_note = _relative_risk(eb, nb, ea, na, paired=False)
    result = IndependentProportions(
        n_a=na, n_b=nb, events_a=ea, events_b=eb, p_a=p_a, p_b=p_b,
        ci_a=wilson_interval(ea, na, confidence), ci_b=wilson_interval(eb, nb, confidence),
        diff=diff, se=se, ci=newcombe_independent_interval(eb, nb, ea, na, confidence),
        ci_method="Newcombe hybrid score (1998, method 10)", p_value=p_value,
        test="Fisher exact (two-sided)", p_boschloo=p_boschloo, ratio=ratio, ratio_ci=ratio_ci,
        ratio_note=ratio_note, notes=notes)
    if margin is not None:
        result.margin = float(margin)
        result.p_noninferiority = fm_noninferiority_p(eb, nb, ea, na, margin,
                                                      lower_is_better=lower_is_better)
    return result
