"""Blind pairwise preference with ties, and position bias.

W = (wins + ties/2) / N from B's side; decisive share w / (w + l) with a Wilson interval; the tie
rate is always reported. Votes on the same item are one cluster: the interval of W comes from a
cluster bootstrap over items (and over raters too when there are several, two-way).

The tested estimand (what a win-rate primary uses for its value, interval and p-value) is the
**per-item score**: each item's (wins + ties/2) / votes (raters averaged within the item), averaged
over items, against 1/2. Its interval is a bootstrap over items of that mean, its fixed-horizon
p-value the exact sign-flip (randomization) test of the same mean: under H0 swapping the labels A
and B of an item flips the sign of its score - 1/2 (otherwise exact enumeration up to 2^13 sign
patterns, Monte Carlo up to 1000 items, then the normal approximation of the same randomization
distribution; exact at any size by convolution when the scores sit on a small lattice, as vote
scores do). With one vote per item it is exactly the sign test ``binomtest(w, w + l, 0.5)``.
Its always-valid form is the betting sequence of ``sequential.betting_sequence`` (exact at any n).
The vote-level and item-level sign tests are kept as ``sign_test_p`` / ``item_sign_test_p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import math

import numpy as np
from scipy.stats import binomtest, norm, permutation_test

from ._base import NAN, Interval, Result, as_float_array, make_rng
from .bootstrap import percentile_interval, resample_counts
from .proportions import wilson_interval
from .sequential import betting_p_value, betting_sequence, never_below

MAX_BOOT_CELLS = 4_000_000


@dataclass
class Preference(Result):
    """Pairwise votes for B against A (outcome 1 = B preferred, 0 = A preferred, 0.5 = tie)."""

    n_votes: int
    n_items: int
    n_raters: int
    wins_b: int
    wins_a: int
    ties: int
    skips: int
    tie_rate: float
    win_rate: float
    win_rate_ci: Interval
    win_rate_ci_method: str
    decisive_share: float
    decisive_ci: Interval
    sign_test_p: float
    item_sign_test_p: float
    items_b_better: int
    items_a_better: int
    items_even: int
    p_value: float
    p_value_test: str
    n_resamples: int
    item_score_mean: float  # mean over items of each item's (wins + ties/2) / votes
    item_score_sd: float  # SD of those per-item scores
    item_score_ci: Interval = (NAN, NAN)  # bootstrap over items of item_score_mean
    item_score_av_ci: Interval = (NAN, NAN)  # always-valid (betting confidence sequence)
    p_value_always_valid: float = NAN  # always-valid p of the same test (never below p_value)
    notes: list[str] = field(default_factory=list)


EXACT_MAX = 13  # up to 2^13 sign patterns enumerated
MONTE_CARLO_MAX = 1000
SIGN_FLIP_RESAMPLES = 9999
LATTICE_MAX = 4_000_000  # support of the exact lattice distribution


def _lattice_p(k: np.ndarray) -> float:
    """Exact P(|sum s_i k_i| >= |sum k_i|) over fair signs s_i, for integers k_i (convolution of
    one binomial per distinct |k|)."""
    from scipy.signal import fftconvolve
    from scipy.stats import binom

    dist = np.ones(1)
    for value, count in zip(*np.unique(np.abs(k), return_counts=True)):
        spread = np.zeros(2 * value * count + 1)
        spread[::2 * value] = binom.pmf(np.arange(count + 1), count, 0.5)
        dist = np.clip(fftconvolve(dist, spread), 0.0, None)
    total = int(np.abs(k).sum())
    support = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(support) >= abs(int(k.sum()))].sum()))


def sign_flip_test(x, *, lattice: int | None = None, n_resamples: int = SIGN_FLIP_RESAMPLES,
                   rng=None) -> tuple[float, str]:
    """Two-sided randomization test of H0: x symmetric about 0, statistic sum(x): (p, method).

    ``lattice``: the values are multiples of 1 / lattice (e.g. vote scores), which makes the
    randomization distribution exact by convolution at any size.
    """
    x = as_float_array(x)
    x = x[np.isfinite(x) & (x != 0)]
    m = int(x.size)
    if m == 0:
        return 1.0, "sign-flip test (no item differs from 1/2)"
    if lattice:
        k = np.rint(x * lattice).astype(np.int64)
        if np.allclose(k, x * lattice, atol=1e-6) and np.abs(k).sum() <= LATTICE_MAX:
            return _lattice_p(k), "exact sign-flip test"
    if m <= MONTE_CARLO_MAX:
        exact = m <= EXACT_MAX
        res = permutation_test((x,), lambda v, axis: np.sum(v, axis=axis), vectorized=True,
                               permutation_type="samples", alternative="two-sided",
                               n_resamples=2 ** m if exact else n_resamples,
                               batch=max(1, 2_000_000 // m), rng=make_rng(rng))
        return (float(min(1.0, res.pvalue)),
                "exact sign-flip test" if exact else f"sign-flip test, {n_resamples} random flips")
    z = abs(x.sum()) / math.sqrt(float(np.sum(x * x)))
    return float(min(1.0, 2 * norm.sf(z))), "sign-flip test, normal approximation"


def _codes(values) -> np.ndarray:
    _, inverse = np.unique(np.asarray(values), return_inverse=True)
    return inverse.reshape(-1)


def pairwise_preference(outcome, item_ids, rater_ids=None, *, skips: int = 0,
                        n_resamples: int = 2000, confidence: float = 0.95,
                        rng=None) -> Preference:
    """Win/tie/loss of B against A with a cluster bootstrap interval for W."""
    y = as_float_array(outcome)
    if np.any(~np.isin(y, (0.0, 0.5, 1.0))):
        raise ValueError("outcome must be 1 (B preferred), 0 (A preferred) or 0.5 (tie)")
    items = _codes(item_ids) if y.size else np.zeros(0, dtype=int)
    raters = _codes(rater_ids) if rater_ids is not None and y.size else np.zeros(y.size, dtype=int)
    n = int(y.size)
    wins_b, wins_a = int(np.sum(y == 1)), int(np.sum(y == 0))
    ties = n - wins_b - wins_a
    decisive = wins_b + wins_a
    n_items = int(items.max() + 1) if n else 0
    n_raters = int(raters.max() + 1) if n else 0
    notes: list[str] = []
    if skips:
        notes.append(f"{skips} skipped vote(s) left out (neither a preference nor a tie)")
    score = np.bincount(items, weights=y, minlength=n_items)
    votes = np.bincount(items, minlength=n_items)
    item_mean = score / np.maximum(votes, 1)
    better_b = int(np.sum(item_mean > 0.5))
    better_a = int(np.sum(item_mean < 0.5))
    sign_p = float(binomtest(wins_b, decisive, 0.5).pvalue) if decisive else 1.0
    item_p = float(binomtest(better_b, better_b + better_a, 0.5).pvalue) if better_a + better_b else 1.0
    clustered = n_items < n
    rng = make_rng(rng)
    ci, method, used = (NAN, NAN), "none", 0
    if n_items >= 2:
        two_way = n_raters >= 2
        cells = n_resamples * n_items * (n_raters if two_way else 1)
        used = max(200, min(n_resamples, MAX_BOOT_CELLS * n_resamples // max(cells, 1)))
        ci_items = resample_counts(n_items, used, rng)
        if two_way:
            # a vote's weight is (draws of its item) x (draws of its rater); summed per
            # (item, rater) cell so each resample is two small matrix products
            c_raters = resample_counts(n_raters, used, rng)
            cell_score = np.zeros((n_items, n_raters))
            cell_votes = np.zeros((n_items, n_raters))
            np.add.at(cell_score, (items, raters), y)
            np.add.at(cell_votes, (items, raters), 1.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = (((ci_items @ cell_score) * c_raters).sum(axis=1)
                        / ((ci_items @ cell_votes) * c_raters).sum(axis=1))
            method = "two-way cluster bootstrap over items and raters, percentile"
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = (ci_items @ score) / (ci_items @ votes)
            method = "cluster bootstrap over items, percentile"
        ci = percentile_interval(boot, confidence)
        item_ci = percentile_interval((ci_items @ item_mean) / n_items, confidence)
    else:
        item_ci = (NAN, NAN)
    if clustered:
        notes.append("several votes per item: the per-item score (raters averaged within an "
                     "item) is what is tested; the vote-level sign test treats votes as "
                     "independent and is shown for reference only")
    lattice = 2 * int(np.lcm.reduce(np.unique(votes[votes > 0]))) if n_items else None
    flip_p, flip_test = (sign_flip_test(item_mean - 0.5, lattice=lattice, rng=rng) if n_items
                         else (NAN, "none"))
    av = betting_sequence(item_mean - 0.5, 0.5, alpha=1 - confidence, fixed_p=flip_p,
                          fixed_interval=tuple(v - 0.5 for v in item_ci)) if n_items else None
    return Preference(
        n_votes=n, n_items=n_items, n_raters=n_raters, wins_b=wins_b, wins_a=wins_a, ties=ties,
        skips=int(skips), tie_rate=ties / n if n else NAN,
        win_rate=(wins_b + ties / 2) / n if n else NAN, win_rate_ci=ci, win_rate_ci_method=method,
        decisive_share=wins_b / decisive if decisive else NAN,
        decisive_ci=wilson_interval(wins_b, decisive, confidence),
        sign_test_p=sign_p, item_sign_test_p=item_p, items_b_better=better_b,
        items_a_better=better_a, items_even=n_items - better_a - better_b,
        p_value=flip_p, p_value_test=f"{flip_test} on per-item scores vs 1/2",
        n_resamples=used, item_score_mean=float(item_mean.mean()) if n_items else NAN,
        item_score_sd=float(item_mean.std(ddof=1)) if n_items > 1 else NAN,
        item_score_ci=item_ci,
        item_score_av_ci=tuple(v + 0.5 for v in av.interval) if av else (NAN, NAN),
        p_value_always_valid=av.p_value if av else NAN, notes=notes)


@dataclass
class PositionBias(Result):
    """Whether the left-hand response is chosen more often than chance among decisive votes."""

    decisive: int
    left_chosen: int
    right_chosen: int
    left_share: float
    left_share_ci: Interval
    p_value: float
    p_value_always_valid: float = NAN  # betting sequence, never below p_value
    test: str = "binomtest(left_chosen, decisive, 0.5)"


def position_bias(left_chosen: int, decisive: int, confidence: float = 0.95) -> PositionBias:
    """Test P(left chosen | decisive vote) = 0.5."""
    left_chosen, decisive = int(left_chosen), int(decisive)
    if left_chosen < 0 or left_chosen > decisive:
        raise ValueError("left_chosen must be between 0 and decisive")
    p = float(binomtest(left_chosen, decisive, 0.5).pvalue) if decisive else 1.0
    votes = np.r_[np.full(left_chosen, 0.5), np.full(decisive - left_chosen, -0.5)]
    return PositionBias(
        decisive=decisive, left_chosen=left_chosen, right_chosen=decisive - left_chosen,
        left_share=left_chosen / decisive if decisive else NAN,
        left_share_ci=wilson_interval(left_chosen, decisive, confidence), p_value=p,
        p_value_always_valid=never_below(betting_p_value(votes, 0.5), p) if decisive else 1.0)
