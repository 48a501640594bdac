"""Paired and independent proportions against statsmodels, scipy and published worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.stats import binomtest, hypergeom, norm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint,
                                          proportions_ztest)

from workbench.stats.proportions import (fm_noninferiority_p, independent_proportions,
                                         newcombe_paired_interval, paired_proportions,
                                         rule_of_three, tango_interval, tango_noninferiority_p,
                                         tango_score, wilson_interval)


def _paired(n11, n10, n01, n00):
    """0/1 arrays for A and B with the given cells (n10: only A had the event)."""
    a = [1] * n11 + [1] * n10 + [0] * n01 + [0] * n00
    b = [1] * n11 + [0] * n10 + [1] * n01 + [0] * n00
    return np.array(a), np.array(b)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1000)])
def test_wilson_matches_statsmodels(k, n):
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.9, 0.95, 0.99]))
def test_wilson_closed_form_equals_scipy_binomtest(kn, confidence):
    k, n = kn
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert wilson_interval(k, n, confidence) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_exact_mcnemar_matches_statsmodels():
    a, b = _paired(40, 9, 21, 30)
    res = paired_proportions(a, b)
    table = [[40, 9], [21, 30]]  # rows A yes/no, columns B yes/no
    assert res.p_value == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert (res.b_only, res.a_only) == (21, 9)
    assert res.diff == pytest.approx((21 - 9) / 100)


def test_paired_se_is_sd_of_item_differences():
    rng = np.random.default_rng(1)
    a = (rng.random(150) < 0.6).astype(int)
    b = np.where(rng.random(150) < 0.2, 1 - a, a)
    res = paired_proportions(a, b)
    d = b - a
    assert res.se == pytest.approx(np.std(d) / math.sqrt(d.size), rel=1e-12)
    cov = np.mean(a * b) - a.mean() * b.mean()
    assert res.se == pytest.approx(math.sqrt((a.var() + b.var() - 2 * cov) / a.size), rel=1e-12)
    assert res.ci_wald == pytest.approx((res.diff - 1.959964 * res.se, res.diff + 1.959964 * res.se),
                                        abs=1e-6)


def test_tango_statistic_at_zero_is_mcnemar_z():
    # statsmodels' asymptotic McNemar (no continuity correction) statistic is z^2
    table = [[40, 9], [21, 30]]
    chi2 = mcnemar(table, exact=False, correction=False).statistic
    z = tango_score(21, 9, 100, 0.0)
    assert z ** 2 == pytest.approx(chi2, rel=1e-12)
    assert z > 0


def test_tango_restricted_mle_maximises_constrained_likelihood():
    b, c, n, delta = 21, 9, 100, 0.05  # b: only B, c: only A
    # reference: maximise the multinomial likelihood with p_Bonly - p_Aonly = delta numerically
    def nll(q):
        return -(b * math.log(q + delta) + c * math.log(q) + (n - b - c) * math.log(1 - 2 * q - delta))
    best = minimize_scalar(nll, bounds=(1e-9, (1 - delta) / 2 - 1e-9), method="bounded",
                           options={"xatol": 1e-12}).x
    var = n * (2 * best + delta * (1 - delta))
    assert tango_score(b, c, n, delta) == pytest.approx((b - c - n * delta) / math.sqrt(var), rel=1e-6)


def test_tango_interval_inverts_the_score_test():
    lo, hi = tango_interval(21, 9, 100)
    z = norm.ppf(0.975)
    assert tango_score(21, 9, 100, lo) == pytest.approx(z, abs=1e-6)
    assert tango_score(21, 9, 100, hi) == pytest.approx(-z, abs=1e-6)


def test_newcombe_paired_matches_fagerland_worked_example():
    # Fagerland, Lydersen & Laake (2017), ch. 8, Cavo et al. (2012) table [[59, 6], [16, 80]]:
    # Newcombe square-and-add, estimate -0.0621 (95% CI -0.1186 to -0.0046) for row - column.
    # Here A is the row variable and B the column, and we report B - A: signs flip.
    lo, hi = newcombe_paired_interval(59, 6, 16, 80)
    assert (lo, hi) == pytest.approx((0.0046, 0.1186), abs=5e-5)
    res = paired_proportions(*_paired(59, 6, 16, 80))
    assert res.diff == pytest.approx(0.0621, abs=5e-5)
    assert res.ci_newcombe == pytest.approx((lo, hi))


def test_small_n_note_names_the_interval():
    res = paired_proportions(*_paired(5, 2, 6, 7))
    assert any("Tango" in note for note in res.notes)
    big = paired_proportions(*_paired(200, 30, 40, 230))
    assert not any("Tango" in note for note in big.notes)


def test_noninferiority_direction_and_margin():
    # zero failures in both arms on 250 items: not enough to show B within +1 pt (rule of three)
    a, b = np.zeros(250), np.zeros(250)
    res = paired_proportions(a, b, margin=0.01, lower_is_better=True, label="error")
    assert res.p_noninferiority == pytest.approx(norm.cdf(-math.sqrt(250 * 0.01 / 0.99)), rel=1e-9)
    assert res.p_noninferiority > 0.05
    assert any("rule of three" in note for note in res.notes)
    big = paired_proportions(np.zeros(2000), np.zeros(2000), margin=0.01, lower_is_better=True)
    assert big.p_noninferiority < 1e-5
    # B clearly worse by more than the margin: p near 1
    worse = paired_proportions(*_paired(0, 0, 40, 160), margin=0.01, lower_is_better=True)
    assert worse.p_noninferiority > 0.99
    # higher-is-better direction mirrors it
    assert tango_noninferiority_p(0, 40, 200, 0.01, lower_is_better=False) == pytest.approx(
        worse.p_noninferiority, rel=1e-12)


def test_rule_of_three_note():
    assert "3/n = 1.00%" in rule_of_three(0, 300, "B")
    assert rule_of_three(1, 300, "B") is None


def test_independent_newcombe_matches_statsmodels():
    res = independent_proportions(20, 210, 30, 200)
    lo, hi = confint_proportions_2indep(30, 200, 20, 210, method="newcomb", compare="diff")
    assert res.ci == pytest.approx((lo, hi), abs=1e-10)
    assert res.diff == pytest.approx(30 / 200 - 20 / 210)


def test_fisher_matches_hypergeometric_sum():
    res = independent_proportions(3, 40, 11, 38)
    # two-sided Fisher: sum of table probabilities not above the observed one
    M, n_events, N = 78, 14, 38  # population, events, B-sample size
    probs = hypergeom.pmf(np.arange(0, 15), M, n_events, N)
    p_obs = hypergeom.pmf(11, M, n_events, N)
    assert res.p_value == pytest.approx(probs[probs <= p_obs * (1 + 1e-7)].sum(), rel=1e-9)
    assert res.p_boschloo is not None and 0 < res.p_boschloo <= res.p_value + 1e-12


def test_farrington_manning_against_direct_maximisation_and_statsmodels():
    xb, nb, xa, na, delta = 30, 200, 20, 210, 0.02

    def nll(q1):  # reference restricted MLE: p_B = q1, p_A = q1 - delta
        q2 = q1 - delta
        return -(xb * math.log(q1) + (nb - xb) * math.log(1 - q1)
                 + xa * math.log(q2) + (na - xa) * math.log(1 - q2))
    q1 = minimize_scalar(nll, bounds=(delta + 1e-9, 1 - 1e-9), method="bounded",
                         options={"xatol": 1e-12}).x
    q2 = q1 - delta
    z = (xb / nb - xa / na - delta) / math.sqrt(q1 * (1 - q1) / nb + q2 * (1 - q2) / na)
    assert fm_noninferiority_p(xb, nb, xa, na, delta) == pytest.approx(norm.cdf(z), rel=1e-6)
    # at margin 0 it is the pooled two-proportion z test (statsmodels proportions_ztest)
    stat, _ = proportions_ztest([xb, xa], [nb, na])
    assert fm_noninferiority_p(xb, nb, xa, na, 0.0) == pytest.approx(norm.cdf(stat), rel=1e-9)


def test_relative_risk_matches_katz_log_interval():
    res = independent_proportions(20, 210, 30, 200)
    rr = (30 / 200) / (20 / 210)
    se = math.sqrt(1 / 30 - 1 / 200 + 1 / 20 - 1 / 210)
    assert res.ratio == pytest.approx(rr)
    assert res.ratio_ci == pytest.approx((rr * math.exp(-1.959964 * se),
                                          rr * math.exp(1.959964 * se)), rel=1e-5)


def test_empty_input_does_not_crash():
    res = paired_proportions([], [])
    assert res.n == 0 and math.isnan(res.diff)
    assert res.to_dict()["diff"] is None


cells = st.tuples(*(st.integers(0, 40) for _ in range(4))).filter(lambda c: sum(c) > 0)


@settings(max_examples=60, deadline=None)
@given(cells)
def test_swapping_arms_mirrors_every_interval(c):
    n11, n10, n01, n00 = c
    ab = paired_proportions(*_paired(n11, n10, n01, n00))
    a, b = _paired(n11, n10, n01, n00)
    ba = paired_proportions(b, a)
    assert ba.diff == pytest.approx(-ab.diff)
    assert ba.ci == pytest.approx((-ab.ci[1], -ab.ci[0]), abs=1e-7)
    assert ba.ci_newcombe == pytest.approx((-ab.ci_newcombe[1], -ab.ci_newcombe[0]), abs=1e-12)
    assert ba.p_value == pytest.approx(ab.p_value)
    if math.isfinite(ab.ratio) and math.isfinite(ba.ratio) and ab.ratio > 0:
        assert ba.ratio == pytest.approx(1 / ab.ratio)
        assert ba.ratio_ci == pytest.approx((1 / ab.ratio_ci[1], 1 / ab.ratio_ci[0]), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(cells)
def test_intervals_contain_estimate_and_p_in_unit_interval(c):
    res = paired_proportions(*_paired(*c), margin=0.02, lower_is_better=True)
    for lo, hi in (res.ci, res.ci_newcombe, res.ci_a, res.ci_b):
        assert -1 <= lo <= hi <= 1
    assert res.ci[0] - 1e-9 <= res.diff <= res.ci[1] + 1e-9
    assert res.ci_newcombe[0] - 1e-9 <= res.diff <= res.ci_newcombe[1] + 1e-9
    assert 0 <= res.p_value <= 1 and 0 <= res.p_noninferiority <= 1


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.integers(1, 30), st.integers(0, 30), st.integers(1, 30))
def test_independent_swap_and_bounds(xa, na, xb, nb):
    xa, xb = min(xa, na), min(xb, nb)
    ab = independent_proportions(xa, na, xb, nb)
    ba = independent_proportions(xb, nb, xa, na)
    assert ba.ci == pytest.approx((-ab.ci[1], -ab.ci[0]), abs=1e-12)
    assert ab.ci[0] - 1e-12 <= ab.diff <= ab.ci[1] + 1e-12
    assert 0 <= ab.p_value <= 1
