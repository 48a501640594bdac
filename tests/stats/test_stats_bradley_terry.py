"""Bradley-Terry ratings against closed forms and a statsmodels logistic fit (FastChat's method)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from workbench.stats.bradley_terry import (_fit, _newton_batch, bradley_terry, to_ratings,
                                           win_matrix)


def _battles(seed=0, n=1500, strength=(0.0, 0.5, -0.3, 1.0), tie_rate=0.15):
    rng = np.random.default_rng(seed)
    k = len(strength)
    s = np.array(strength)
    i = rng.integers(0, k, n)
    j = (i + rng.integers(1, k, n)) % k
    p = 1 / (1 + np.exp(-(s[i] - s[j])))
    u = rng.random(n)
    y = np.where(u < tie_rate, 0.5, np.where(rng.random(n) < p, 1.0, 0.0))
    return i, j, y


def test_two_variants_closed_form():
    # 7 wins, 3 losses for A over B: theta10 = log10(7/3), so R_B = 1000 - 400 log10(7/3)
    res = bradley_terry([0] * 10, [1] * 10, [1] * 7 + [0] * 3, ["A", "B"], anchor="A",
                        n_resamples=50)
    ratings = {r.name: r.rating for r in res.rows}
    assert ratings["A"] == 1000.0
    assert ratings["B"] == pytest.approx(1000 - 400 * math.log10(7 / 3), abs=1e-3)


def test_ties_count_half_a_win():
    # 6 wins, 2 losses, 4 ties = 8 vs 4 "wins": same as 8:4
    tied = bradley_terry([0] * 12, [1] * 12, [1] * 6 + [0] * 2 + [0.5] * 4, ["A", "B"],
                         anchor="A", n_resamples=20)
    assert {r.name: r.rating for r in tied.rows}["B"] == pytest.approx(
        1000 - 400 * math.log10(8 / 4), abs=1e-3)


def test_matches_statsmodels_logistic_regression():
    i, j, y = _battles()
    names = ["A", "B", "C", "D"]
    res = bradley_terry(i, j, y, names, anchor="A", n_resamples=100)
    # FastChat-style design: +1 for i, -1 for j, anchor column dropped; a tie is half a win and
    # half a loss (var_weights)
    n = len(y)
    X = np.zeros((n, 4))
    X[np.arange(n), i] = 1
    X[np.arange(n), j] = -1
    X = X[:, 1:]
    fit = sm.GLM(np.r_[np.ones(n), np.zeros(n)], np.r_[X, X], family=sm.families.Binomial(),
                 var_weights=np.r_[y, 1 - y]).fit()
    expected = 1000 + 400 * fit.params / math.log(10)
    got = {r.name: r.rating for r in res.rows}
    assert [got["B"], got["C"], got["D"]] == pytest.approx(list(expected), abs=0.05)


def test_bootstrap_newton_equals_minimize():
    i, j, y = _battles(seed=3)
    wins = win_matrix(i, j, y, 4)
    stack = np.stack([wins, wins * 0.7 + wins.T * 0.3, wins + 1])
    fitted = _newton_batch(stack, 0, np.zeros(4))
    for r in range(3):
        assert fitted[r] == pytest.approx(_fit(stack[r], 0), abs=1e-5)


def test_intervals_ranks_and_anchor():
    i, j, y = _battles(seed=1, n=3000)
    res = bradley_terry(i, j, y, ["A", "B", "C", "D"], anchor="A", n_resamples=300, rng=2)
    rows = {r.name: r for r in res.rows}
    assert rows["A"].rating == 1000.0 and rows["A"].ci == (1000.0, 1000.0)
    for r in res.rows:
        assert r.ci[0] <= r.rating <= r.ci[1]
        above = sum(1 for o in res.rows if o.name != r.name and o.ci[0] > r.ci[1])
        assert r.rank == 1 + above
    assert rows["D"].rank == 1 and rows["C"].rank == 4
    assert [r.name for r in res.rows] == ["D", "B", "A", "C"]
    assert res.n_battles == 3000


def test_sweep_is_flagged_and_stays_finite():
    res = bradley_terry([0, 0, 1, 2], [1, 1, 2, 0], [0, 0, 1, 0.5], ["A", "B", "C"], anchor="A",
                        n_resamples=20)
    assert all(math.isfinite(r.rating) for r in res.rows)
    assert any("every battle" in n for n in res.notes)


def test_bad_input():
    with pytest.raises(ValueError):
        bradley_terry([0], [0], [1], ["A", "B"], anchor="A")
    with pytest.raises(ValueError):
        bradley_terry([0], [1], [1], ["A", "B"], anchor="Z")
    assert to_ratings(np.array([0.0, math.log(10)]), 0)[1] == pytest.approx(1400)


def test_a_variant_without_battles_is_not_identified():
    res = bradley_terry([0, 0, 0, 1], [1, 1, 1, 0], [1, 0, 1, 0.5], ["A", "B", "C"], anchor="A",
                        n_resamples=50)
    rows = {r.name: r for r in res.rows}
    assert rows["C"].rating is None and rows["C"].ci is None and rows["C"].rank is None
    assert not rows["C"].identified and rows["C"].battles == 0
    assert rows["A"].rating == 1000.0 and rows["B"].identified and rows["B"].rank == 1
    assert res.rows[-1].name == "C"  # listed after the ranked ones
    assert any("C has no battles" in n for n in res.notes)
    # battles only among themselves, none linking them to the anchor: not identified either
    cut = bradley_terry([0, 2, 2, 3], [1, 3, 3, 2], [1, 1, 0, 1], ["A", "B", "C", "D"],
                        anchor="A", n_resamples=50)
    assert {r.name for r in cut.rows if not r.identified} == {"C", "D"}
    assert cut.to_dict()["rows"][-1]["rating"] is None


def test_bootstrap_resamples_items_not_battles():
    # every item carries 6 identical battles (e.g. 6 raters who agree): resampling battles would
    # treat them as independent and give an interval about sqrt(6) too narrow
    i, j, y = _battles(seed=4, n=300, strength=(0.0, 0.6, -0.4))
    reps = 6
    ri, rj, ry = (np.repeat(v, reps) for v in (i, j, y))
    items = np.repeat(np.arange(300), reps)
    names = ["A", "B", "C"]
    single = bradley_terry(i, j, y, names, anchor="A", clusters=np.arange(300), n_resamples=400,
                           rng=3)
    clustered = bradley_terry(ri, rj, ry, names, anchor="A", clusters=items, n_resamples=400,
                              rng=3)
    naive = bradley_terry(ri, rj, ry, names, anchor="A", n_resamples=400, rng=3)

    def width(res, name):
        row = next(r for r in res.rows if r.name == name)
        return row.ci[1] - row.ci[0]

    for name in ("B", "C"):
        assert width(clustered, name) == pytest.approx(width(single, name), rel=0.2)
        assert width(clustered, name) > 1.8 * width(naive, name)
    assert clustered.n_clusters == 300 and "items" in clustered.ci_method
