"""Krippendorff's alpha: worked example, the krippendorff package, bootstrap, gate, degenerate data."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.stats.agreement import (alpha_from_coincidences, krippendorff_alpha,
                                       unit_coincidences, value_counts)

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 4 observers x 12 units
# example with missing values: nominal alpha = 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF_2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
])


def _ours(data, level):
    domain = np.unique(data[np.isfinite(data)])
    o = unit_coincidences(value_counts(data, domain)).sum(axis=0)
    return float(alpha_from_coincidences(o, domain, level))


@pytest.mark.parametrize("level,published", [("nominal", 0.743), ("ordinal", 0.815),
                                             ("interval", 0.849)])
def test_krippendorff_2011_worked_example(level, published):
    assert round(_ours(KRIPPENDORFF_2011, level), 3) == published
    package = krippendorff.alpha(reliability_data=KRIPPENDORFF_2011, level_of_measurement=level)
    assert _ours(KRIPPENDORFF_2011, level) == pytest.approx(package, abs=1e-12)


def test_point_estimate_is_the_package_value():
    res = krippendorff_alpha(KRIPPENDORFF_2011, n_resamples=300)
    assert res.alpha == pytest.approx(
        krippendorff.alpha(reliability_data=KRIPPENDORFF_2011, level_of_measurement="ordinal"))
    assert res.computable and res.level == "ordinal"
    assert (res.n_raters, res.n_units, res.n_pairable_units) == (4, 12, 11)


matrices = st.integers(0, 10_000).map(lambda seed: np.random.default_rng(seed))


@settings(max_examples=40, deadline=None)
@given(matrices, st.integers(2, 5), st.integers(2, 25), st.sampled_from(["nominal", "ordinal", "interval"]))
def test_vectorised_alpha_equals_krippendorff_package(rng, raters, units, level):
    data = rng.integers(1, 6, size=(raters, units)).astype(float)
    data[rng.random(data.shape) < 0.25] = nan
    present = np.isfinite(data)
    pairable = present.sum(axis=0) >= 2
    if not pairable.any() or np.unique(data[:, pairable][present[:, pairable]]).size < 2:
        return
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert _ours(data, level) == pytest.approx(ref, abs=1e-9)


def test_bootstrap_interval_and_gate_for_good_raters():
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 150)
    data = np.array([np.clip(truth + rng.choice([0, 0, 0, 0, 1, -1], 150), 1, 5) for _ in range(3)],
                    dtype=float)
    res = krippendorff_alpha(data, n_resamples=1000, rng=1)
    assert res.ci[0] < res.alpha < res.ci[1]
    assert res.gate == "pass" and res.counts and res.reliability == "reliable"


def test_gate_fails_for_random_raters():
    rng = np.random.default_rng(1)
    data = rng.integers(1, 6, size=(3, 100)).astype(float)
    res = krippendorff_alpha(data, n_resamples=500, rng=1)
    assert res.gate == "fail" and not res.counts and res.reliability == "unreliable"


def test_cluster_bootstrap_resamples_items_together():
    # units are (item, arm); the two units of an item are rated identically, so resampling items
    # (clusters) must give the same alpha distribution as resampling each item's first unit twice
    rng = np.random.default_rng(2)
    truth = rng.integers(1, 6, 60)
    base = np.array([np.clip(truth + rng.choice([0, 0, 1, -1], 60), 1, 5) for _ in range(3)],
                    dtype=float)
    doubled = np.repeat(base, 2, axis=1)
    clusters = np.repeat(np.arange(60), 2)
    single = krippendorff_alpha(base, n_resamples=400, rng=5)
    paired = krippendorff_alpha(doubled, clusters=clusters, n_resamples=400, rng=5)
    assert paired.ci == pytest.approx(single.ci, abs=0.02)
    assert "clusters" in paired.ci_method


@pytest.mark.parametrize("data,reason", [
    (np.array([[1, 2, 3, 4.0]]), "fewer than 2 raters"),
    (np.array([[1, nan, 3, nan], [nan, 2, nan, 4.0]]), "no pairable values"),
    (np.array([[3, 3, 3.0], [3, 3, 3.0]]), "no variation"),
    (np.full((3, 4), nan), "fewer than 2 raters"),
])
def test_degenerate_data_is_not_computable(data, reason):
    res = krippendorff_alpha(data)
    assert not res.computable and reason in res.reason
    assert res.gate == "not computable" and not res.counts
    assert res.to_dict()["alpha"] is None


def test_bad_arguments():
    with pytest.raises(ValueError):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(ValueError):
        krippendorff_alpha(KRIPPENDORFF_2011, level="ratio")


def test_gate_reads_the_lower_bound_not_the_point_alpha():
    # 2 raters x 20 units: alpha 0.78 is above 0.667 but its lower bound (about 0.52) is not,
    # so these ratings do not count
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, 20)
    data = np.array([np.clip(truth + rng.choice([0, 0, 0, 1, -1, 2], 20), 1, 5)
                     for _ in range(2)], dtype=float)
    res = krippendorff_alpha(data, n_resamples=1000, rng=1)
    assert res.alpha >= 0.667 > res.ci[0]
    assert res.gate == "fail" and not res.counts and res.reliability == "unreliable"
    lenient = krippendorff_alpha(data, n_resamples=1000, rng=1, min_lower=0.4)
    assert lenient.gate == "pass" and lenient.counts and lenient.reliability == "tentative"
