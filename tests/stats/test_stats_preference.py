"""Pairwise preference with ties, cluster bootstrap, position bias."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest
from statsmodels.stats.descriptivestats import sign_test
from statsmodels.stats.proportion import proportion_confint

from workbench.stats.preference import pairwise_preference, position_bias


def test_counts_win_rate_tie_rate_and_wilson():
    outcome = [1] * 30 + [0] * 14 + [0.5] * 6
    items = list(range(50))
    res = pairwise_preference(outcome, items, skips=2, n_resamples=500)
    assert (res.wins_b, res.wins_a, res.ties, res.skips) == (30, 14, 6, 2)
    assert res.win_rate == pytest.approx((30 + 3) / 50)
    assert res.tie_rate == pytest.approx(6 / 50)
    assert res.decisive_share == pytest.approx(30 / 44)
    assert res.decisive_ci == pytest.approx(proportion_confint(30, 44, method="wilson"), abs=1e-12)
    assert any("skipped" in n for n in res.notes)


def test_sign_test_matches_statsmodels_sign_test():
    outcome = [1] * 30 + [0] * 14 + [0.5] * 6
    res = pairwise_preference(outcome, list(range(50)), n_resamples=200)
    # statsmodels' sign test on the per-vote differences (ties = 0 are dropped)
    _, p = sign_test(np.array(outcome) - 0.5, 0)
    assert res.sign_test_p == pytest.approx(p, rel=1e-10)
    # one vote per item: the sign-flip test of the per-item score is exactly the sign test
    assert res.p_value == pytest.approx(res.sign_test_p, rel=1e-9)
    assert res.p_value_test.startswith("exact sign-flip test")


def test_cluster_bootstrap_uses_items_not_votes():
    # 60 items, 5 raters who always agree: 5 identical votes per item. Treating the 300 votes as
    # independent would give an interval sqrt(5) too narrow; the item-level SE is the reference.
    rng = np.random.default_rng(3)
    item_pref = (rng.random(60) < 0.6).astype(float)
    outcome = np.repeat(item_pref, 5)
    items = np.repeat(np.arange(60), 5)
    res = pairwise_preference(outcome, items, n_resamples=3000, rng=1)
    se_items = item_pref.std() / math.sqrt(60)
    half = (res.win_rate_ci[1] - res.win_rate_ci[0]) / 2
    assert half == pytest.approx(1.96 * se_items, rel=0.15)
    se_votes = outcome.std() / math.sqrt(outcome.size)
    assert half > 1.8 * 1.96 * se_votes
    # items carry several votes: the item-level tests are the ones that respect clustering
    b, a = int(item_pref.sum()), int(60 - item_pref.sum())
    assert res.item_sign_test_p == pytest.approx(binomtest(b, a + b, 0.5).pvalue)
    # identical votes within an item: each item's score is 0 or 1, so the sign-flip test of the
    # per-item score is the item-level sign test, not the (too small) vote-level one
    assert res.p_value == pytest.approx(res.item_sign_test_p, rel=1e-9)
    assert res.p_value > res.sign_test_p


def test_two_way_bootstrap_with_several_raters_is_wider_when_raters_disagree():
    rng = np.random.default_rng(5)
    n_items, raters = 80, 4
    items = np.repeat(np.arange(n_items), raters)
    rater = np.tile(np.arange(raters), n_items)
    bias = np.array([0.9, 0.8, 0.3, 0.2])  # raters differ a lot
    outcome = (rng.random(items.size) < bias[rater]).astype(float)
    two_way = pairwise_preference(outcome, items, rater, n_resamples=2000, rng=2)
    one_way = pairwise_preference(outcome, items, None, n_resamples=2000, rng=2)
    assert "raters" in two_way.win_rate_ci_method and "raters" not in one_way.win_rate_ci_method
    width = lambda r: r.win_rate_ci[1] - r.win_rate_ci[0]  # noqa: E731
    assert width(two_way) > 1.5 * width(one_way)


def test_invalid_outcome_rejected_and_empty_ok():
    with pytest.raises(ValueError):
        pairwise_preference([2], [1])
    res = pairwise_preference([], [])
    assert res.n_votes == 0 and res.to_dict()["win_rate"] is None


def test_position_bias_matches_binomtest():
    res = position_bias(70, 100)
    assert res.p_value == pytest.approx(binomtest(70, 100, 0.5).pvalue)
    assert (res.left_chosen, res.right_chosen, res.decisive) == (70, 30, 100)
    assert res.left_share_ci == pytest.approx(proportion_confint(70, 100, method="wilson"))
    assert position_bias(0, 0).p_value == 1.0
    with pytest.raises(ValueError):
        position_bias(5, 3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=2, max_size=40))
def test_swap_mirrors_win_rate_and_interval(outcome):
    items = list(range(len(outcome)))
    ab = pairwise_preference(outcome, items, n_resamples=300, rng=7)
    ba = pairwise_preference([1 - y for y in outcome], items, n_resamples=300, rng=7)
    assert ba.win_rate == pytest.approx(1 - ab.win_rate)
    assert ba.win_rate_ci == pytest.approx((1 - ab.win_rate_ci[1], 1 - ab.win_rate_ci[0]), abs=1e-9)
    assert ba.sign_test_p == pytest.approx(ab.sign_test_p)
    assert ab.win_rate_ci[0] - 1e-12 <= ab.win_rate <= ab.win_rate_ci[1] + 1e-12 or \
        ab.win_rate_ci[0] == ab.win_rate_ci[1]
    assert 0 <= ab.sign_test_p <= 1 and 0 <= ab.item_sign_test_p <= 1


def _item_scores(outcome, items):
    outcome, items = np.asarray(outcome, dtype=float), np.asarray(items)
    return np.array([outcome[items == i].mean() for i in np.unique(items)])


def test_one_estimand_per_item_score_for_value_interval_and_p():
    # items with 1, 2 and 3 votes: the per-item score (raters averaged within the item) differs
    # from the pooled W, and it is what the interval and the p-value are about
    outcome = [1, 1, 0.5, 0, 1, 1, 1, 0.5, 0, 0, 1, 0.5, 1, 1]
    items = [0, 1, 1, 2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 9]
    res = pairwise_preference(outcome, items, n_resamples=4000, rng=3)
    scores = _item_scores(outcome, items)
    assert res.item_score_mean == pytest.approx(scores.mean())
    assert res.item_score_mean != pytest.approx(res.win_rate)
    assert res.item_score_ci[0] < res.item_score_mean < res.item_score_ci[1]
    # the exact randomization distribution of sum(score - 1/2) over all 2^10 sign flips
    d = scores - 0.5
    signs = np.array(np.meshgrid(*[[-1, 1]] * d.size)).reshape(d.size, -1).T
    ref = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    assert res.p_value == pytest.approx(ref, rel=1e-9)
    # the always-valid p-value of the same estimand is never below it, and its sequence holds the
    # fixed-horizon interval
    assert res.p_value_always_valid >= res.p_value
    assert res.item_score_av_ci[0] <= res.item_score_ci[0] <= res.item_score_ci[1] \
        <= res.item_score_av_ci[1]


def test_item_scores_average_the_raters_within_an_item():
    # item 0: two raters split (B, A) -> score 1/2, not two independent votes
    res = pairwise_preference([1, 0, 1, 1], [0, 0, 1, 2], ["r1", "r2", "r1", "r1"],
                              n_resamples=200)
    assert (res.items_b_better, res.items_a_better, res.items_even) == (2, 0, 1)
    assert res.item_score_mean == pytest.approx((0.5 + 1 + 1) / 3)
