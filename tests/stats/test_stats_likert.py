"""Likert ratings: within-item averaging, paired BCa bootstrap, Wilcoxon, P(B>A)+P(B=A)/2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import bootstrap, wilcoxon

from workbench.stats.bootstrap import bca_mean_interval
from workbench.stats.likert import item_means, likert_mean, paired_likert


def _ratings(n=120, seed=0, shift=0.4):
    rng = np.random.default_rng(seed)
    a = np.clip(np.round(rng.normal(3.5, 1.0, n)), 1, 5)
    b = np.clip(np.round(a + rng.normal(shift, 0.8, n)), 1, 5)
    return a, b


def test_item_means_average_raters_within_item():
    items, means = item_means([7, 7, 3, 3, 3, 9], [4, 5, 1, 2, np.nan, 5])
    assert list(items) == [3, 7, 9]
    assert list(means) == pytest.approx([1.5, 4.5, 5.0])


def test_wilcoxon_matches_scipy_pratt():
    a, b = _ratings()
    res = paired_likert(a, b, n_resamples=1000)
    assert res.p_value == pytest.approx(wilcoxon(b, a, zero_method="pratt").pvalue, rel=1e-12)
    assert res.diff == pytest.approx(np.mean(b - a))


def test_paired_bca_matches_scipy_bootstrap_with_same_generator():
    a, b = _ratings(n=80, seed=2)
    res = paired_likert(a, b, n_resamples=2000, rng=np.random.default_rng(11))
    ref = bootstrap((b, a), lambda x, y, axis: np.mean(x - y, axis=axis), paired=True,
                    vectorized=True, method="BCa", n_resamples=2000,
                    rng=np.random.default_rng(11))
    ci = ref.confidence_interval
    assert res.diff_ci == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert res.ci_method.startswith("BCa")


def test_closed_form_bca_equals_scipy_bca_on_the_same_resamples():
    # the large-n path (closed-form jackknife) against scipy.stats.bootstrap(method="BCa"):
    # both draw rng.integers(0, n, (R, n)) from the same seeded generator
    x = np.random.default_rng(4).exponential(1.0, 600)
    ours = bca_mean_interval(x, n_resamples=4000, rng=np.random.default_rng(1))
    ref = bootstrap((x,), np.mean, method="BCa", n_resamples=4000, rng=np.random.default_rng(1))
    assert ours == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high),
                                 rel=1e-12)


def test_large_n_uses_closed_form_path():
    a, b = _ratings(n=2500, seed=5)
    res = paired_likert(a, b, n_resamples=500)
    se = np.std(b - a) / math.sqrt(a.size)
    assert res.diff_ci[0] < res.diff < res.diff_ci[1]
    assert (res.diff_ci[1] - res.diff_ci[0]) == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_probability_of_superiority():
    a = np.array([3, 4, 2, 5, 1.0])
    b = np.array([4, 4, 1, 5, 3.0])
    res = paired_likert(a, b, n_resamples=200)
    assert res.prob_superiority == pytest.approx((1 + 0.5 + 0 + 0.5 + 1) / 5)


def test_missing_items_dropped_and_degenerate_cases():
    res = paired_likert([3, np.nan, 4, 5], [4, 2, np.nan, 5], n_resamples=200)
    assert res.n_items == 2
    same = paired_likert([3, 4, 5], [3, 4, 5], n_resamples=200)
    assert same.p_value == 1.0 and same.diff_ci == (0.0, 0.0)
    shifted = paired_likert([3, 4, 2], [4, 5, 3], n_resamples=200)
    assert shifted.diff_ci == (1.0, 1.0)
    one = paired_likert([3], [4])
    assert one.n_items == 1 and one.to_dict()["diff_ci"] == [None, None]


def test_likert_mean_interval():
    x = np.array([4, 5, 3, 4, 4, 5, 2, 4.0])
    res = likert_mean(x, n_resamples=2000, rng=3)
    assert res.mean == pytest.approx(x.mean())
    assert res.ci[0] < x.mean() < res.ci[1]
    assert likert_mean([4, 4, 4]).ci == (4.0, 4.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=3, max_size=30))
def test_swap_mirrors_difference(pairs):
    a = np.array([p[0] for p in pairs], dtype=float)
    b = np.array([p[1] for p in pairs], dtype=float)
    ab = paired_likert(a, b, n_resamples=300, rng=1)
    ba = paired_likert(b, a, n_resamples=300, rng=1)
    assert ba.diff == pytest.approx(-ab.diff)
    assert ba.p_value == pytest.approx(ab.p_value)
    assert ba.prob_superiority == pytest.approx(1 - ab.prob_superiority)
    assert 0 <= ab.p_value <= 1
    lo, hi = ab.diff_ci
    if math.isfinite(lo):
        assert lo - 1e-9 <= hi


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=25))
def test_always_valid_is_never_below_wilcoxon_and_contains_the_bca_interval(pairs):
    a = np.array([p[0] for p in pairs], dtype=float)
    b = np.array([p[1] for p in pairs], dtype=float)
    res = paired_likert(a, b, n_resamples=300, rng=1)
    assert 0 < res.p_value_always_valid <= 1
    assert res.p_value_always_valid >= res.p_value
    lo, hi = res.diff_ci_always_valid
    assert lo <= res.diff_ci[0] + 1e-12 and res.diff_ci[1] - 1e-12 <= hi
    assert -4 <= lo <= res.diff <= hi <= 4


def test_always_valid_at_n_5_with_zero_sd():
    # five items, B one point better on each (SD 0): Wilcoxon 0.0625, the always-valid p must
    # not be 0 (the plug-in normal mixture) nor below it
    res = paired_likert([3, 3, 3, 3, 3], [4, 4, 4, 4, 4], n_resamples=200)
    assert res.sd_diff == 0 and res.p_value == pytest.approx(0.0625)
    assert res.p_value_always_valid >= 0.0625 and "betting" in res.always_valid_method
    off_scale = paired_likert([0, 3], [7, 4], n_resamples=200)
    assert math.isnan(off_scale.p_value_always_valid) and any("scale" in n for n in off_scale.notes)
