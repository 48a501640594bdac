"""Power and sample size: the rough guide of STATISTICS.md, exact binomial power, statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest
from statsmodels.stats.power import NormalIndPower

from workbench.stats.planning import (mcnemar_n, mcnemar_power_exact, paired_mde, paired_n,
                                      sign_test_critical, sign_test_n, sign_test_power)


def test_paired_n_and_mde_match_statsmodels_normal_power():
    # one-sample / paired z test: statsmodels NormalIndPower with ratio=0
    n_ref = NormalIndPower().solve_power(effect_size=0.25 / 1.1, alpha=0.05, power=0.8, ratio=0)
    assert paired_n(1.1, 0.25) == math.ceil(n_ref)
    mde = paired_mde(1.1, 300)
    es = NormalIndPower().solve_power(nobs1=300, alpha=0.05, power=0.8, ratio=0)
    assert mde == pytest.approx(es * 1.1, rel=1e-5)  # statsmodels adds the far tail


@pytest.mark.parametrize("n", [5, 6, 17, 40, 101, 250])
def test_sign_test_critical_value_matches_binomtest(n):
    c = sign_test_critical(n)
    rejecting = [k for k in range(n + 1) if binomtest(k, n, 0.5).pvalue < 0.05 and k <= n / 2]
    assert c == (max(rejecting) if rejecting else -1)


def test_exact_sign_test_power_is_the_binomial_sum_over_the_rejection_region():
    n, p = 60, 0.65
    region = [k for k in range(n + 1) if binomtest(k, n, 0.5).pvalue < 0.05]
    assert sign_test_power(n, p) == pytest.approx(binom.pmf(region, n, p).sum(), rel=1e-10)


def test_rough_guide_for_preferences():
    # STATISTICS.md: a 60% true preference needs ~194 decisive votes, 55% needs ~783
    sixty, fifty_five = sign_test_n(0.60), sign_test_n(0.55)
    assert (sixty.n_normal, fifty_five.n_normal) == (194, 783)
    for res in (sixty, fifty_five):
        assert res.n == pytest.approx(res.n_normal, rel=0.05)
        assert sign_test_power(res.n, 0.60 if res is sixty else 0.55) >= 0.8
        assert sign_test_power(res.n - 1, 0.60 if res is sixty else 0.55) < 0.8
        assert res.n_safe >= res.n
    ns = np.arange(sixty.n_safe, sixty.n_safe + 300)
    assert np.all(sign_test_power(ns, 0.60) >= 0.8)


def test_rough_guide_for_paired_pass_rates():
    # 5-point pass-rate gain with 20% discordant items: ~626 items (Connor's approximation)
    res = mcnemar_n(0.20, 0.05)
    assert res.n_normal == 626
    assert res.n == pytest.approx(626, rel=0.08)
    assert res.power_at_n >= 0.8
    assert mcnemar_power_exact(res.n - 1, 0.20, 0.05) < 0.8


def test_exact_mcnemar_power_against_simulation():
    rng = np.random.default_rng(0)
    n, psi, delta, sims = 300, 0.2, 0.06, 4000
    disc = rng.binomial(n, psi, sims)
    b_wins = rng.binomial(disc, (psi + delta) / (2 * psi))
    rejected = np.mean([binomtest(int(w), int(m), 0.5).pvalue < 0.05 if m else False
                        for w, m in zip(b_wins, disc)])
    assert mcnemar_power_exact(n, psi, delta) == pytest.approx(rejected, abs=0.025)


def test_bad_arguments():
    with pytest.raises(ValueError):
        sign_test_n(0.5)
    with pytest.raises(ValueError):
        mcnemar_n(0.1, 0.2)
    with pytest.raises(ValueError):
        paired_n(1.0, 0.0)
