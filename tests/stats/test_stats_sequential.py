"""Always-valid inference: GrowthBook's asymptotic confidence sequence, mSPRT, labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from workbench.stats.sequential import (ALWAYS_VALID, FIXED, always_valid_p_value,
                                        confidence_sequence, cs_half_width, cs_rho, fixed_horizon,
                                        independent_binary_sequence, paired_binary_sequence,
                                        p_value_label)


def test_rho_and_half_width_follow_the_growthbook_formula():
    alpha, n_star, n, sd = 0.05, 1000, 400, 2.0
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star
    assert cs_rho(n_star, alpha) ** 2 == pytest.approx(rho2)
    expected = sd * math.sqrt(2 * (n * rho2 + 1) / (n ** 2 * rho2)
                              * math.log(math.sqrt(n * rho2 + 1) / alpha))
    assert cs_half_width(sd, n, n_star, alpha) == pytest.approx(expected)
    # wider than the fixed-horizon interval at every n, tightest (relative to it) near N*
    ratios = [cs_half_width(1, k, n_star) / (1.96 / math.sqrt(k)) for k in (100, 1000, 10_000)]
    assert all(r > 1 for r in ratios) and ratios[1] < ratios[0] and ratios[1] < ratios[2]


def test_always_valid_p_is_the_msprt_with_normal_mixture():
    # Johari et al. mSPRT: Lambda_n = sqrt(s2/(s2 + n t2)) exp(n^2 t2 xbar^2 / (2 s2 (s2 + n t2)))
    est, sd, n, n_star = 0.12, 1.3, 500, 800
    t2 = cs_rho(n_star) ** 2 * sd ** 2
    s2 = sd ** 2
    lam = math.sqrt(s2 / (s2 + n * t2)) * math.exp(n * n * t2 * est ** 2 / (2 * s2 * (s2 + n * t2)))
    assert always_valid_p_value(est, sd, n, n_star) == pytest.approx(min(1, 1 / lam))


def test_p_value_and_sequence_agree():
    for est in (0.05, 0.1, 0.2, 0.3):
        res = confidence_sequence(est, 1.0, 300, 300)
        excluded = not (res.interval[0] <= 0 <= res.interval[1])
        assert excluded == (res.p_value < 0.05)
        assert res.label == ALWAYS_VALID


def test_coverage_under_repeated_looks():
    # 300 experiments, 10 looks each: the naive 95% interval misses the truth at some look in ~20%
    # of experiments; the confidence sequence (N* = final n) keeps coverage >= 95%.
    rng = np.random.default_rng(12345)
    sims, n_max = 300, 1000
    x = rng.normal(0.3, 1.0, size=(sims, n_max))
    looks = np.arange(100, n_max + 1, 100)
    cs_ok = np.ones(sims, dtype=bool)
    naive_ok = np.ones(sims, dtype=bool)
    for n in looks:
        mean = x[:, :n].mean(axis=1)
        sd = x[:, :n].std(axis=1, ddof=1)
        half = np.array([cs_half_width(s, n, n_max) for s in sd])
        cs_ok &= np.abs(mean - 0.3) <= half
        naive_ok &= np.abs(mean - 0.3) <= norm.ppf(0.975) * sd / math.sqrt(n)
    assert cs_ok.mean() >= 0.95
    assert naive_ok.mean() <= 0.88


def test_fixed_horizon_is_the_z_interval():
    res = fixed_horizon(0.2, 1.0, 100)
    assert res.interval == pytest.approx((0.2 - 0.196, 0.2 + 0.196), abs=1e-4)
    assert res.p_value == pytest.approx(2 * norm.sf(2.0))
    assert res.label == FIXED


def test_binary_sequences_never_collapse_and_agree_with_their_p_value():
    zero = paired_binary_sequence(0, 0, 600, 600, null=0.01)
    assert zero.interval[0] < -0.01 and zero.interval[1] > 0.01  # zero events: a real width
    assert zero.p_value > 0.05  # consistent: +1 pt is inside the sequence
    big = paired_binary_sequence(0, 0, 20_000, 20_000, null=0.01)
    assert big.interval[1] < 0.01 and big.p_value < 0.05
    ind = independent_binary_sequence(30, 400, 10, 400, 800)
    assert ind.interval[0] > 0 and ind.p_value < 0.05
    swapped = independent_binary_sequence(10, 400, 30, 400, 800)
    assert swapped.interval == pytest.approx((-ind.interval[1], -ind.interval[0]), abs=1e-8)


def test_binary_sequence_coverage_under_repeated_looks():
    rng = np.random.default_rng(7)
    sims, n_max, p_a, p_b = 300, 1000, 0.3, 0.35
    a = rng.random((sims, n_max)) < p_a
    b = rng.random((sims, n_max)) < p_b
    ok = np.ones(sims, dtype=bool)
    for n in range(100, n_max + 1, 100):
        b_only = (b[:, :n] & ~a[:, :n]).sum(axis=1)
        a_only = (a[:, :n] & ~b[:, :n]).sum(axis=1)
        for s in range(sims):
            if ok[s]:
                lo, hi = paired_binary_sequence(int(b_only[s]), int(a_only[s]), n, n_max).interval
                ok[s] = lo <= p_b - p_a <= hi
    assert ok.mean() >= 0.95


def test_p_value_label():
    assert p_value_label(50, 200, sequential=True).label == ALWAYS_VALID
    interim = p_value_label(50, 200, sequential=False)
    assert interim.label == FIXED and not interim.valid_now and "interim" in interim.message
    final = p_value_label(200, 200, sequential=False)
    assert final.label == FIXED and final.valid_now
    assert not p_value_label(200, None, sequential=False).valid_now


# -- exact always-valid inference for bounded values (betting) ----------------------------------
from scipy.stats import wilcoxon  # noqa: E402

from workbench.stats.sequential import (betting_p_value, betting_sequence,  # noqa: E402
                                        never_below)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 12, 20, 40])
def test_betting_p_at_small_n_is_never_zero_and_never_below_wilcoxon(n):
    d = np.ones(n)  # every item +1: the per-item SD is 0
    fixed = float(wilcoxon(d, zero_method="pratt").pvalue) if n > 1 else 1.0
    res = betting_sequence(d, 4.0, fixed_p=fixed, fixed_interval=(1.0, 1.0))
    assert 0 < res.p_value <= 1 and res.p_value >= fixed
    assert res.label == ALWAYS_VALID and res.interval[0] <= 1.0 <= res.interval[1]
    # the plug-in normal mixture is what gave 0 here before
    assert always_valid_p_value(1.0, 0.0, n, n) == 0.0
    if n == 5:  # the case of the issue: Wilcoxon 0.0625 (exact, all positive)
        assert fixed == pytest.approx(0.0625) and res.p_value > 0.0625


def test_betting_p_of_the_issue_example_is_not_below_the_fixed_horizon_one():
    d = np.array([1.0, 1.5, 0.5, 1.0, 2.0])  # n = 5: Wilcoxon gives 0.0625
    fixed = float(wilcoxon(d, zero_method="pratt").pvalue)
    est = float(d.mean())
    assert confidence_sequence(est, float(d.std(ddof=1)), 5, 5).p_value < fixed  # the old bug
    assert betting_sequence(d, 4.0, fixed_p=fixed).p_value >= fixed
    assert betting_p_value(d, 4.0) >= fixed  # even without the guard
    assert never_below(0.01, 0.2) == 0.2 and never_below(0.3, 0.2) == 0.3


def test_betting_interval_is_the_set_of_means_not_rejected():
    rng = np.random.default_rng(3)
    d = np.clip(np.round(rng.normal(0.4, 1.2, 150)), -4, 4)
    res = betting_sequence(d, 4.0)
    lo, hi = res.interval
    assert lo < d.mean() < hi
    assert betting_p_value(d, 4.0, null=lo) == pytest.approx(0.05, rel=1e-4)
    assert betting_p_value(d, 4.0, null=hi) == pytest.approx(0.05, rel=1e-4)
    assert betting_p_value(d, 4.0, null=(lo + hi) / 2) > 0.05
    assert (res.p_value < 0.05) == (lo > 0)
    # the product does not depend on the order of the items
    assert betting_p_value(d[::-1], 4.0) == pytest.approx(res.p_value, rel=1e-12)
    with pytest.raises(ValueError):
        betting_sequence([5.0], 4.0)


def test_betting_type_one_error_under_repeated_looks_from_n_1():
    # H0 true (mean 0), values in [-1, 1], a look after every 5 items from n = 1 to 300: the
    # chance that any look rejects stays below alpha (Ville), small n included
    rng = np.random.default_rng(11)
    sims, n_max = 400, 300
    x = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], p=[0.2, 0.2, 0.2, 0.2, 0.2], size=(sims, n_max))
    looks = [1, 2, 3, 5] + list(range(10, n_max + 1, 10))
    rejected = np.zeros(sims, dtype=bool)
    for s in range(sims):
        rejected[s] = any(betting_p_value(x[s, :n], 1.0) < 0.05 for n in looks)
    assert rejected.mean() <= 0.05


def test_betting_coverage_under_repeated_looks():
    rng = np.random.default_rng(12)
    sims, n_max, mean = 150, 400, 0.2
    x = np.clip(rng.normal(mean, 0.5, size=(sims, n_max)), -1, 1)
    true = float(np.mean(np.clip(rng.normal(mean, 0.5, 2_000_000), -1, 1)))
    ok = np.ones(sims, dtype=bool)
    for s in range(sims):
        for n in (5, 20, 50, 100, 200, 400):
            lo, hi = betting_sequence(x[s, :n], 1.0).interval
            ok[s] &= lo <= true <= hi
    assert ok.mean() >= 0.95
