"""Holm and Benjamini-Hochberg against statsmodels ``multipletests``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from workbench.stats.multiple import benjamini_hochberg, holm

pvals = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None)  # statsmodels' holm takes ~60 ms a call
@given(pvals, st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_matches_statsmodels(p, alpha):
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    ours, ours_reject = holm(p, alpha)
    assert ours == pytest.approx(adjusted, abs=1e-12)
    assert list(ours_reject) == list(reject)


@settings(max_examples=100, deadline=None)
@given(pvals)
def test_bh_matches_statsmodels(p):
    reject, adjusted, _, _ = multipletests(p, alpha=0.05, method="fdr_bh")
    ours, ours_reject = benjamini_hochberg(p)
    assert ours == pytest.approx(adjusted, abs=1e-12)
    assert list(ours_reject) == list(reject)


def test_holm_worked_example_and_nan_left_out():
    # p = (0.01, 0.04, 0.03): sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    adjusted, reject = holm([0.01, 0.04, 0.03], 0.05)
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    assert list(reject) == [True, False, False]
    adjusted, reject = holm([0.01, float("nan"), 0.04])
    assert adjusted[0] == pytest.approx(0.02) and np.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.04) and not reject[1]
