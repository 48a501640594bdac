"""Blind pairwise preference with ties, and position bias.

W = (wins + ties/2) / N from B's side; decisive share w / (w + l) with a Wilson interval; the tie
rate is always reported. Votes on the same item are one cluster: the interval of W comes from a
cluster bootstrap over items (and over raters too when there are several, two-way). The sign test
``binomtest(w, w + l, 0.5)`` counts votes as independent; when items carry more than one vote the
item-level sign test (each item's mean score vs 1/2) is the one that respects clustering.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binomtest

from ._base import NAN, Interval, Result, as_float_array, make_rng
from .bootstrap import percentile_interval, resample_counts
from .proportions import wilson_interval

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
    item_score_sd: float  # SD of those per-item scores (for always-valid sequences)
    notes: list[str] = field(default_factory=list)


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
    if clustered:
        notes.append("several votes per item: the vote-level sign test treats them as independent; "
                     "the item-level sign test is the p-value to use")
    return Preference(
        n_votes=n, n_items=n_items, n_raters=n_raters, wins_b=wins_b, wins_a=wins_a, ties=ties,
        skips=int(skips), tie_rate=ties / n if n else NAN,
        win_rate=(wins_b + ties / 2) / n if n else NAN, win_rate_ci=ci, win_rate_ci_method=method,
        decisive_share=wins_b / decisive if decisive else NAN,
        decisive_ci=wilson_interval(wins_b, decisive, confidence),
        sign_test_p=sign_p, item_sign_test_p=item_p, items_b_better=better_b,
        items_a_better=better_a, items_even=n_items - better_a - better_b,
        p_value=item_p if clustered else sign_p,
        p_value_test=("item-level sign test" if clustered
                      else "sign test on decisive votes: binomtest(w, w + l, 0.5)"),
        n_resamples=used, item_score_mean=float(item_mean.mean()) if n_items else NAN,
        item_score_sd=float(item_mean.std(ddof=1)) if n_items > 1 else NAN, notes=notes)


@dataclass
class PositionBias(Result):
    """Whether the left-hand response is chosen more often than chance among decisive votes."""

    decisive: int
    left_chosen: int
    right_chosen: int
    left_share: float
    left_share_ci: Interval
    p_value: float
    test: str = "binomtest(left_chosen, decisive, 0.5)"


def position_bias(left_chosen: int, decisive: int, confidence: float = 0.95) -> PositionBias:
    """Test P(left chosen | decisive vote) = 0.5."""
    left_chosen, decisive = int(left_chosen), int(decisive)
    if left_chosen < 0 or left_chosen > decisive:
        raise ValueError("left_chosen must be between 0 and decisive")
    return PositionBias(
        decisive=decisive, left_chosen=left_chosen, right_chosen=decisive - left_chosen,
        left_share=left_chosen / decisive if decisive else NAN,
        left_share_ci=wilson_interval(left_chosen, decisive, confidence),
        p_value=float(binomtest(left_chosen, decisive, 0.5).pvalue) if decisive else 1.0)
