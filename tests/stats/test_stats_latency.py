"""Latency: geometric-mean ratio, percentiles, the windowed quantile bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, ttest_ind, wilcoxon
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from workbench.stats.bootstrap import WINDOW_SDS, quantile_bootstrap
from workbench.stats.latency import paired_latency, percentiles, unpaired_latency


def _latencies(n=400, seed=0, factor=0.9):
    rng = np.random.default_rng(seed)
    a = rng.lognormal(6.0, 0.5, n)
    b = a * factor * rng.lognormal(0, 0.2, n)
    return a, b


def test_ratio_and_interval_match_statsmodels_on_log_differences():
    a, b = _latencies()
    res = paired_latency(a, b, n_resamples=500)
    d = DescrStatsW(np.log(b) - np.log(a))
    lo, hi = d.tconfint_mean(alpha=0.05)
    assert res.ratio == pytest.approx(math.exp(d.mean), rel=1e-12)
    assert res.ratio_ci == pytest.approx((math.exp(lo), math.exp(hi)), rel=1e-10)
    assert res.ratio_p_value == pytest.approx(d.ttest_mean(0)[1], rel=1e-8)
    assert res.wilcoxon_p_value == pytest.approx(
        wilcoxon(np.log(b) - np.log(a), zero_method="pratt").pvalue, rel=1e-12)
    assert res.ratio < 1


def test_percentiles_and_p95_difference():
    a, b = _latencies()
    res = paired_latency(a, b, n_resamples=500)
    assert res.percentiles_a == pytest.approx(
        dict(zip(("p50", "p95", "p99"), np.percentile(a, [50, 95, 99]))))
    assert res.p95_diff_ms == pytest.approx(np.percentile(b, 95) - np.percentile(a, 95))
    assert res.p95_diff_ci[0] < res.p95_diff_ms < res.p95_diff_ci[1]
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def test_invalid_latencies_are_dropped_with_a_note():
    a, b = _latencies(50)
    a[3], b[7] = np.nan, 0.0
    res = paired_latency(a, b, n_resamples=200)
    assert res.n_a == 48 and any("left out" in n for n in res.notes)


def _reconstruct(x, counts, col, low, lo, hi, q):
    """np.percentile of a resample rebuilt from the window counts (the reference)."""
    n = x.size
    window = np.argsort(x, kind="stable")[lo:hi]
    c = counts[col[window]]
    values = np.concatenate([np.full(low, -1e300), np.repeat(x[window], c),
                             np.full(n - low - c.sum(), 1e300)])
    return np.percentile(values, q * 100)


@pytest.mark.parametrize("n", [7, 200, 5000])
def test_windowed_quantile_bootstrap_is_exact_per_resample(n):
    rng = np.random.default_rng(n)
    a = rng.lognormal(6, 0.5, n)
    b = a * rng.lognormal(0, 0.3, n)
    (qa, qb), (counts, col, low) = quantile_bootstrap(a, b, q=0.95, n_resamples=40,
                                                      rng=np.random.default_rng(1),
                                                      return_counts=True)
    j = int((n - 1) * 0.95)
    width = int(WINDOW_SDS * math.sqrt(n * 0.95 * 0.05)) + 3
    lo, hi = max(0, j - width), min(n, j + 2 + width)
    for r in range(40):
        assert qa[r] == pytest.approx(_reconstruct(a, counts[r], col, low[0][r], lo, hi, 0.95))
        assert qb[r] == pytest.approx(_reconstruct(b, counts[r], col, low[1][r], lo, hi, 0.95))
        assert counts[r].sum() <= n and low[0][r] <= j + 1


def test_windowed_bootstrap_has_the_distribution_of_the_plain_bootstrap():
    rng = np.random.default_rng(9)
    n = 20_000
    a = rng.lognormal(6, 0.5, n)
    b = a * rng.lognormal(-0.02, 0.2, n)
    qa, qb = quantile_bootstrap(a, b, q=0.95, n_resamples=2000, rng=np.random.default_rng(2))
    idx = np.random.default_rng(3).integers(0, n, size=(300, n))
    na, nb = np.percentile(a[idx], 95, axis=1), np.percentile(b[idx], 95, axis=1)
    assert ks_2samp(qb - qa, nb - na).pvalue > 0.001
    assert np.std(qb - qa) == pytest.approx(np.std(nb - na), rel=0.2)


def test_noninferiority_p_value_follows_the_margin():
    a, b = _latencies(n=1500, factor=1.0)
    wide = paired_latency(a, b, margin_ms=200, n_resamples=1000)
    tight = paired_latency(a, b, margin_ms=-200, n_resamples=1000)
    assert wide.p_noninferiority < 0.01 < 0.99 < tight.p_noninferiority


def test_unpaired_matches_welch_t_on_logs():
    rng = np.random.default_rng(1)
    a = rng.lognormal(6.0, 0.5, 300)
    b = rng.lognormal(5.9, 0.6, 250)
    res = unpaired_latency(a, b, margin_ms=50, n_resamples=500)
    t = ttest_ind(np.log(b), np.log(a), equal_var=False)
    cm = CompareMeans(DescrStatsW(np.log(b)), DescrStatsW(np.log(a)))
    lo, hi = cm.tconfint_diff(usevar="unequal")
    assert res.ratio_p_value == pytest.approx(t.pvalue, rel=1e-10)
    assert res.ratio_ci == pytest.approx((math.exp(lo), math.exp(hi)), rel=1e-8)
    assert res.design == "unpaired" and res.wilcoxon_p_value is None
    assert res.p95_diff_ms == pytest.approx(np.percentile(b, 95) - np.percentile(a, 95))


def test_too_few_items():
    res = paired_latency([100.0], [120.0])
    assert res.n_a == 1 and res.to_dict()["ratio"] is None


@settings(max_examples=20, deadline=None)
@given(st.integers(5, 300), st.integers(0, 10_000))
def test_swap_inverts_ratio_and_negates_p95_difference(n, seed):
    a, b = _latencies(n=n, seed=seed)
    ab = paired_latency(a, b, n_resamples=300, rng=4)
    ba = paired_latency(b, a, n_resamples=300, rng=4)
    assert ba.ratio == pytest.approx(1 / ab.ratio, rel=1e-10)
    assert ba.ratio_ci == pytest.approx((1 / ab.ratio_ci[1], 1 / ab.ratio_ci[0]), rel=1e-8)
    assert ba.p95_diff_ms == pytest.approx(-ab.p95_diff_ms)
    assert ba.p95_diff_ci == pytest.approx((-ab.p95_diff_ci[1], -ab.p95_diff_ci[0]), rel=1e-9)
    assert ab.ratio_ci[0] <= ab.ratio <= ab.ratio_ci[1]
    assert 0 <= ab.ratio_p_value <= 1 and 0 <= ab.wilcoxon_p_value <= 1


@pytest.mark.parametrize("paired", [True, False])
def test_p95_difference_interval_is_b_minus_a(paired):
    # B is 90 ms slower on every item: the p95 difference and its interval are around +90,
    # never around -90
    rng = np.random.default_rng(8)
    a = rng.lognormal(6.0, 0.3, 3000)
    b = a + 90 + rng.normal(0, 2, a.size) if paired else rng.lognormal(6.0, 0.3, 3000) + 90
    res = (paired_latency if paired else unpaired_latency)(a, b, n_resamples=1000, rng=1)
    assert res.p95_diff_ms == pytest.approx(np.percentile(b, 95) - np.percentile(a, 95))
    assert 40 < res.p95_diff_ci[0] <= res.p95_diff_ms <= res.p95_diff_ci[1] < 140
    swapped = (paired_latency if paired else unpaired_latency)(b, a, n_resamples=1000, rng=1)
    assert swapped.p95_diff_ci[1] < 0


@pytest.mark.parametrize("paired", [True, False])
def test_noninferiority_p_is_the_bootstrap_share_at_or_above_the_margin(paired):
    rng = np.random.default_rng(9)
    a = rng.lognormal(6.0, 0.4, 800)
    b = a * rng.lognormal(0.05, 0.1, a.size) if paired else rng.lognormal(6.05, 0.4, 800)
    fn = paired_latency if paired else unpaired_latency
    observed = fn(a, b, n_resamples=2000, rng=4).p95_diff_ms
    # the same resamples, rebuilt: H0 p95_B - p95_A >= margin, p = (1 + #{boot >= margin}) / (R + 1)
    gen = np.random.default_rng(4)
    if paired:
        qa, qb = quantile_bootstrap(a, b, q=0.95, n_resamples=2000, rng=gen)
    else:
        (qa,) = quantile_bootstrap(a, q=0.95, n_resamples=2000, rng=gen)
        (qb,) = quantile_bootstrap(b, q=0.95, n_resamples=2000, rng=gen)
    boot = qb - qa
    for margin in (observed - 60, observed, observed + 60):
        res = fn(a, b, margin_ms=margin, n_resamples=2000, rng=4)
        assert res.p_noninferiority == pytest.approx((1 + np.sum(boot >= margin)) / 2001)
    at_observed = fn(a, b, margin_ms=observed, n_resamples=2000, rng=4).p_noninferiority
    assert 0.3 < at_observed < 0.7  # a margin at the estimate: about even odds
    assert fn(a, b, margin_ms=observed + 200, n_resamples=2000, rng=4).p_noninferiority < 0.01
