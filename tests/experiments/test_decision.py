"""Promotion verdict: criteria validation, statuses, Holm over guardrails, peeking rules."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from workbench.experiments.decision import (FAIL, KEEP, NED, PASS, PROMOTE, CriteriaError,
                                            default_criteria, evaluate, evidence_from_arrays,
                                            validate_criteria)
from workbench.stats import krippendorff_alpha, likert_mean


def _good_agreement(seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, 120)
    data = np.array([np.clip(truth + rng.choice([0, 0, 0, 0, 1, -1], 120), 1, 5)
                     for _ in range(3)], dtype=float)
    return krippendorff_alpha(data, n_resamples=300, rng=1)


def _evidence(n=1500, gain_flips=0.10, latency_factor=0.95, err_b=0.0, criteria=None,
              expert=True, seed=0, **kw):
    rng = np.random.default_rng(seed)
    acc_a = (rng.random(n) < 0.7).astype(float)
    acc_b = acc_a.copy()
    acc_b[(acc_a == 0) & (rng.random(n) < gain_flips)] = 1
    zeros = np.zeros(n)
    lat_a = rng.lognormal(6.0, 0.4, n)
    lat_b = lat_a * latency_factor * rng.lognormal(0, 0.05, n)
    errs_b = (rng.random(n) < err_b).astype(float)
    ex = likert_mean(np.clip(rng.normal(4.3, 0.4, 100), 1, 5), n_resamples=300) if expert else None
    return evidence_from_arrays(
        criteria, n_a=n, n_b=n, accuracy=(acc_a, acc_b), safety=(zeros, zeros),
        errors=(zeros, errs_b), latency=(lat_a, lat_b), expert=ex,
        agreement=_good_agreement() if expert else None, n_planned=n, n_resamples=1000, **kw)


def _by_key(verdict):
    return {c.key: c for c in verdict.criteria}


def test_default_criteria_are_the_seed_seven():
    c = default_criteria()
    assert c["primary_metric"] == "accuracy" and c["alpha"] == 0.05
    assert c["accuracy"]["min_gain_pt"] == 2.0 and c["latency_p95"]["margin_ms"] == 50
    assert c["safety"]["margin_pt"] == 1.0 and c["error_rate"]["margin_pt"] == 1.0
    assert c["expert_rating"]["min_mean"] == 4.0 and c["min_items_per_arm"] == 200
    c["alpha"] = 0.5
    assert default_criteria()["alpha"] == 0.05  # a fresh copy each time


def test_validation_lists_every_problem():
    with pytest.raises(CriteriaError) as err:
        validate_criteria({"accuracy": {"min_gain": 2}, "alpha": "x", "bogus": 1,
                           "latency_p95": {"margin_ms": -5}})
    msg = str(err.value)
    for part in ("accuracy.min_gain", "alpha must be a number", "bogus", "latency_p95.margin_ms"):
        assert part in msg
    with pytest.raises(CriteriaError, match="unknown primary metric"):
        validate_criteria(None, primary_metric="bleu")
    with pytest.raises(CriteriaError, match="cannot be disabled"):
        validate_criteria({"accuracy": None})
    merged = validate_criteria({"latency_p95": {"margin_ms": 80}}, primary_metric="severity")
    assert merged["latency_p95"]["margin_ms"] == 80 and merged["primary_metric"] == "accuracy"
    assert merged["accuracy"]["min_gain_pt"] == 2.0


def test_promote_when_every_criterion_passes():
    v = evaluate(default_criteria(), _evidence())
    statuses = {c.key: c.status for c in v.criteria}
    assert statuses == {k: PASS for k in statuses}, [(c.key, c.status, c.detail) for c in v.criteria]
    assert v.decision == PROMOTE
    rows = _by_key(v)
    assert rows["accuracy"].threshold == "B − A ≥ +2.0 pt"
    assert rows["accuracy"].value_text == f"{rows['accuracy'].value * 100:+.1f} pt"
    assert rows["latency_p95"].value_text.endswith(" ms") and rows["min_items"].value == 1500
    assert rows["latency_p95"].threshold.startswith("p95 B − A ≤ +50 ms")
    assert rows["safety"].threshold.startswith("B − A ≤ +1.0 pt")
    assert rows["primary"].p_label == "fixed-horizon"
    assert len(v.criteria) == 7


def test_guardrails_are_holm_adjusted_together():
    v = evaluate(default_criteria(), _evidence())
    guards = [c for c in v.criteria if c.role == "guardrail"]
    assert [c.key for c in guards] == ["safety", "latency_p95", "error_rate"]
    _, ref, _, _ = multipletests([c.p_value for c in guards], method="holm")
    assert [c.p_adjusted for c in guards] == pytest.approx(list(ref))
    assert _by_key(v)["primary"].p_adjusted is None  # the primary metric is not corrected


def test_keep_a_when_accuracy_gain_too_small():
    v = evaluate(default_criteria(), _evidence(gain_flips=0.02))
    rows = _by_key(v)
    assert rows["accuracy"].status == FAIL and v.decision == KEEP
    assert "Accuracy" in v.reason


def test_latency_guardrail_fails_when_b_is_much_slower():
    v = evaluate(default_criteria(), _evidence(latency_factor=1.3))
    assert _by_key(v)["latency_p95"].status == FAIL and v.decision == KEEP


def test_error_rate_worse_than_margin_fails():
    v = evaluate(default_criteria(), _evidence(err_b=0.05))
    assert _by_key(v)["error_rate"].status == FAIL


def test_too_few_items_is_not_enough_data_never_a_guess():
    v = evaluate(default_criteria(), _evidence(n=120))
    rows = _by_key(v)
    assert rows["min_items"].status == NED
    assert rows["accuracy"].status == NED and "too few items" in rows["accuracy"].detail
    assert rows["primary"].status == NED
    assert v.decision == NED and "Items per arm" in v.reason


def test_missing_data_is_not_enough_data():
    ev = evidence_from_arrays(None, n_a=0, n_b=0)
    v = evaluate(default_criteria(), ev)
    assert all(c.status == NED for c in v.criteria)
    assert v.decision == NED


def test_expert_gate_cases():
    base = _evidence()
    one_rater = krippendorff_alpha(np.array([[1, 2, 3, 4.0]]))
    base.agreement = one_rater
    row = _by_key(evaluate(default_criteria(), base))["expert_rating"]
    assert row.status == NED and "could not be evaluated" in row.detail and "2 raters" in row.detail
    rng = np.random.default_rng(1)
    base.agreement = krippendorff_alpha(rng.integers(1, 6, (3, 80)).astype(float), n_resamples=200)
    row = _by_key(evaluate(default_criteria(), base))["expert_rating"]
    assert row.status == NED and "do not count" in row.detail
    base.agreement = _good_agreement()
    base.expert = likert_mean(np.full(50, 3.2), n_resamples=200)
    assert _by_key(evaluate(default_criteria(), base))["expert_rating"].status == FAIL
    base.expert = None
    assert _by_key(evaluate(default_criteria(), base))["expert_rating"].detail == "no expert ratings"


def test_interim_fixed_horizon_p_values_are_not_acted_on():
    ev = _evidence(n=800)
    ev.n_planned, ev.n_done = 2000, 800
    v = evaluate(default_criteria(), ev)
    rows = _by_key(v)
    assert rows["primary"].status == NED and "interim" in rows["primary"].detail
    assert rows["safety"].status == NED and "planned n" in rows["safety"].detail
    assert v.decision == NED and v.interim
    # the point-estimate rule only fails at an interim look when the whole interval is below
    small = _evidence(n=300, gain_flips=0.03)
    small.n_planned, small.n_done = 2000, 300
    acc = _by_key(evaluate(default_criteria(), small))["accuracy"]
    assert acc.value < 0.02 < acc.interval[1] and acc.status == NED
    none = _evidence(n=800, gain_flips=0.0)
    none.n_planned, none.n_done = 2000, 800
    acc = _by_key(evaluate(default_criteria(), none))["accuracy"]
    assert acc.interval[1] < 0.02 and acc.status == FAIL
    assert _by_key(evaluate(default_criteria(), _evidence(n=300, gain_flips=0.03)))[
        "accuracy"].status == FAIL


def test_sequential_mode_uses_always_valid_p_values():
    ev = _evidence(n=1500, sequential=True)
    ev.n_planned, ev.n_done = 3000, 1500
    v = evaluate(default_criteria(), ev)
    rows = _by_key(v)
    assert v.mode == "always-valid"
    assert rows["primary"].p_label == "always-valid" and rows["primary"].status == PASS
    assert rows["safety"].p_label == "always-valid"
    assert rows["latency_p95"].p_label == "fixed-horizon"  # p95 has no always-valid form
    assert rows["latency_p95"].status == NED
    fixed = evaluate(default_criteria(), _evidence(n=1500))
    # always-valid p-values are larger than the fixed-horizon ones on the same data
    assert rows["primary"].p_value > _by_key(fixed)["primary"].p_value


def test_unpaired_design():
    rng = np.random.default_rng(4)
    acc_a = (rng.random(900) < 0.6).astype(float)
    acc_b = (rng.random(1000) < 0.75).astype(float)
    ev = evidence_from_arrays(None, n_a=900, n_b=1000, paired=False, accuracy=(acc_a, acc_b),
                              errors=(np.zeros(900), np.zeros(1000)),
                              latency=(rng.lognormal(6, .4, 900), rng.lognormal(5.9, .4, 1000)),
                              n_resamples=500)
    v = evaluate(default_criteria(), ev)
    rows = _by_key(v)
    assert ev.accuracy.design == "unpaired" and "Fisher" in ev.accuracy.test
    assert rows["accuracy"].status == PASS and rows["primary"].status == PASS
    assert rows["error_rate"].status == PASS


def test_win_rate_as_primary():
    from workbench.stats import pairwise_preference

    ev = _evidence()
    ev.preference = pairwise_preference([1] * 70 + [0] * 30, list(range(100)), n_resamples=200)
    c = validate_criteria(None, primary_metric="win_rate")
    row = _by_key(evaluate(c, ev))["primary"]
    assert row.status == NED and "could not be evaluated" in row.detail  # no vote agreement yet
    ev.preference_agreement = _good_agreement()
    row = _by_key(evaluate(c, ev))["primary"]
    assert row.status == PASS and row.p_value == pytest.approx(ev.preference.p_value)
    assert row.value == pytest.approx(0.2) and row.interval[0] < 0.2 < row.interval[1]
    # other criteria can be disabled when they are not the primary metric
    c = validate_criteria({"accuracy": None, "expert_rating": None}, primary_metric="win_rate")
    keys = [r.key for r in evaluate(c, ev).criteria]
    assert "accuracy" not in keys and "expert_rating" not in keys and "primary" in keys


def test_verdict_is_plain_data():
    import json

    d = evaluate(default_criteria(), _evidence()).to_dict()
    json.dumps(d)
    assert {"decision", "reason", "criteria", "mode"} <= set(d)
    assert {"name", "value", "interval", "threshold", "p_value", "p_label", "status"} <= set(
        d["criteria"][0])


# -- mutations the verdict must catch, and how it reads ----------------------------------------
import dataclasses  # noqa: E402

from workbench.stats import pairwise_preference, paired_likert  # noqa: E402
from workbench.stats.agreement import Agreement  # noqa: E402


def _agreement(alpha, lower, upper=0.95, counts=True):
    return Agreement("ordinal", True, None, alpha, (lower, upper), "percentile bootstrap", 3, 100,
                     100, 300, "pass" if counts else "fail", "reliable" if counts else None,
                     counts, 0.667, 500)


def test_expert_gate_reads_the_lower_bound_not_the_point_alpha():
    ev = _evidence()
    # a point alpha above 0.667 with a lower bound below it: the ratings do not count
    ev.agreement = _agreement(0.80, 0.60, counts=True)
    row = _by_key(evaluate(default_criteria(), ev))["expert_rating"]
    assert row.status == NED and "lower bound 0.60 < 0.667" in row.detail
    assert "gate passed" not in row.detail
    ev.agreement = _agreement(0.70, 0.668)
    row = _by_key(evaluate(default_criteria(), ev))["expert_rating"]
    assert row.status == PASS and "agreement gate passed" in row.detail
    # the threshold never claims the gate passed
    assert "gate passed" not in row.threshold and "if the agreement gate passes" in row.threshold


def test_win_rate_primary_gate_reads_the_lower_bound():
    ev = _evidence()
    ev.preference = pairwise_preference([1] * 70 + [0] * 30, list(range(100)), n_resamples=200)
    c = validate_criteria(None, primary_metric="win_rate")
    ev.preference_agreement = _agreement(0.90, 0.50)
    row = _by_key(evaluate(c, ev))["primary"]
    assert row.status == NED and "do not count" in row.detail


def test_guardrails_pass_on_holm_adjusted_p_not_raw_p():
    ev = _evidence()
    # raw non-inferiority p-values all below 0.05, Holm-adjusted ones not (0.03 * 3 = 0.09)
    ev.safety = dataclasses.replace(ev.safety, p_noninferiority=0.03)
    ev.error_rate = dataclasses.replace(ev.error_rate, p_noninferiority=0.04)
    ev.latency = dataclasses.replace(ev.latency, p_noninferiority=0.045)
    rows = _by_key(evaluate(default_criteria(), ev))
    for key in ("safety", "latency_p95", "error_rate"):
        assert rows[key].p_value < 0.05 <= rows[key].p_adjusted
        assert rows[key].status == NED and "not shown yet" in rows[key].detail
    ev.safety = dataclasses.replace(ev.safety, p_noninferiority=0.001)
    ev.error_rate = dataclasses.replace(ev.error_rate, p_noninferiority=0.02)
    ev.latency = dataclasses.replace(ev.latency, p_noninferiority=0.024)
    rows = _by_key(evaluate(default_criteria(), ev))  # Holm: 0.003, 0.04, 0.04
    assert all(rows[k].status == PASS for k in ("safety", "latency_p95", "error_rate"))


def _likert(mean_a, mean_b, n=60, seed=0):
    rng = np.random.default_rng(seed)
    a = np.clip(np.round(rng.normal(mean_a, 0.3, n) * 2) / 2, 1, 5)
    b = np.clip(np.round(rng.normal(mean_b, 0.3, n) * 2) / 2, 1, 5)
    return paired_likert(a, b, n_resamples=300)


def test_expert_criterion_reads_b_mean_not_a_mean():
    ev = _evidence()
    ev.expert = _likert(3.4, 4.5)  # A below the 4.0 bar, B above
    row = _by_key(evaluate(default_criteria(), ev))["expert_rating"]
    assert row.value == pytest.approx(ev.expert.mean_b) and row.status == PASS
    ev.expert = _likert(4.6, 3.5)  # A above, B below
    row = _by_key(evaluate(default_criteria(), ev))["expert_rating"]
    assert row.value == pytest.approx(ev.expert.mean_b) and row.status == FAIL
    assert row.interval == pytest.approx(ev.expert.ci_b)


def test_sequential_guardrail_is_forced_to_1_when_b_is_worse_than_the_margin():
    ev = _evidence(n=3000, err_b=0.08, sequential=True)  # B errs 8 pt more: far past 1 pt
    row = _by_key(evaluate(default_criteria(), ev))["error_rate"]
    assert row.value > 0.01 and row.p_label == "always-valid"
    assert row.p_value == 1.0 and row.status == FAIL
    # at an interim look where the interval still reaches below the margin the row must not
    # pass on a small two-sided p at the margin
    ev = _evidence(n=400, err_b=0.02, sequential=True)
    ev.n_planned, ev.n_done = 4000, 400
    row = _by_key(evaluate(default_criteria(), ev))["error_rate"]
    assert row.value > 0.01 and row.p_value == 1.0 and row.status != PASS


def test_primary_fails_when_b_is_significantly_worse():
    ev = _evidence()
    ev.accuracy = dataclasses.replace(ev.accuracy, diff=-0.1, p_value=1e-6, ci=(-0.13, -0.07))
    row = _by_key(evaluate(default_criteria(), ev))["primary"]
    assert row.p_value < 0.05 and row.status == FAIL and "significantly worse" in row.detail
    # expert-rating and win-rate primaries too
    ev = _evidence()
    ev.expert = _likert(4.5, 3.6, n=80)
    row = _by_key(evaluate(validate_criteria(None, primary_metric="expert_rating"), ev))["primary"]
    assert row.value < 0 and row.p_value < 0.05 and row.status == FAIL
    ev.preference = pairwise_preference([0] * 75 + [1] * 25, list(range(100)), n_resamples=200)
    ev.preference_agreement = _good_agreement()
    row = _by_key(evaluate(validate_criteria(None, primary_metric="win_rate"), ev))["primary"]
    assert row.value < 0 and row.p_value < 0.05 and row.status == FAIL


def test_win_rate_primary_uses_one_estimand():
    ev = _evidence()
    # two raters on items 0-29 (they split on items 0-9), one on items 30-79: the per-item score
    # differs from the pooled vote share W
    outcome = [1] * 10 + [0] * 10 + [1] * 20 + [1] * 20 + [1] * 30 + [0] * 20
    items = list(range(10)) * 2 + list(range(10, 30)) * 2 + list(range(30, 80))
    ev.preference = pref = pairwise_preference(outcome, items, n_resamples=2000, rng=2)
    ev.preference_agreement = _good_agreement()
    assert pref.item_score_mean != pytest.approx(pref.win_rate)
    c = validate_criteria(None, primary_metric="win_rate")
    row = _by_key(evaluate(c, ev))["primary"]
    assert row.value == pytest.approx(pref.item_score_mean - 0.5)
    assert row.interval == pytest.approx(tuple(v - 0.5 for v in pref.item_score_ci))
    assert row.p_value == pytest.approx(pref.p_value) and "sign-flip" in row.detail
    ev.sequential = True
    seq = _by_key(evaluate(c, ev))["primary"]
    assert seq.value == row.value and seq.p_value >= row.p_value
    assert seq.interval[0] <= row.interval[0] and seq.interval[1] >= row.interval[1]


def test_always_valid_primaries_are_valid_at_small_n():
    # five rated items, B one point better on each (per-item SD 0)
    crit = validate_criteria({"min_items_per_arm": 5, "expert_rating": {"min_items": 2}},
                             primary_metric="expert_rating")
    ev = _evidence(n=5, expert=False, sequential=True)
    ev.expert, ev.agreement = paired_likert([3.0] * 5, [4.0] * 5, n_resamples=200), \
        _good_agreement()
    seq = _by_key(evaluate(crit, ev))["primary"]
    ev.sequential = False
    fixed = _by_key(evaluate(crit, ev))["primary"]
    assert fixed.p_value == pytest.approx(0.0625)  # Wilcoxon, exact
    assert seq.p_label == "always-valid" and 0 < seq.p_value and seq.p_value >= fixed.p_value
    # win rate: five items, B preferred on each
    crit = validate_criteria({"min_items_per_arm": 5}, primary_metric="win_rate")
    ev.preference = pairwise_preference([1] * 5, list(range(5)), n_resamples=200)
    ev.preference_agreement = _good_agreement()
    fixed = _by_key(evaluate(crit, ev))["primary"]
    ev.sequential = True
    seq = _by_key(evaluate(crit, ev))["primary"]
    assert fixed.p_value == pytest.approx(0.0625)  # the sign test
    assert 0 < seq.p_value and seq.p_value >= fixed.p_value and seq.status != PASS


def test_values_and_intervals_are_on_each_metric_scale():
    from workbench.experiments.report import verdict_rows

    ev = _evidence()
    ev.preference = pairwise_preference([1] * 70 + [0] * 30, list(range(100)), n_resamples=500)
    ev.preference_agreement = _good_agreement()
    win = _by_key(evaluate(validate_criteria(None, primary_metric="win_rate"), ev))["primary"]
    lo, hi = win.interval
    assert win.unit == "share" and win.value_text == "+0.200 vs 1/2"
    assert win.interval_text == f"[{lo:.3f}, {hi:.3f}]" and abs(hi) < 1  # not x 100
    ev.expert = _likert(3.5, 4.4)
    v = evaluate(validate_criteria(None, primary_metric="expert_rating"), ev)
    diff = _by_key(v)["primary"]
    assert diff.unit == "rating_diff" and "/ 5" not in diff.value_text
    assert diff.value_text == f"{ev.expert.diff:+.2f} rating pts"
    assert diff.interval_text == f"[{diff.interval[0]:.2f}, {diff.interval[1]:.2f}]"
    assert _by_key(v)["expert_rating"].value_text.endswith(" / 5")
    acc = _by_key(v)["accuracy"]
    assert acc.interval_text == f"[{acc.interval[0] * 100:.1f}, {acc.interval[1] * 100:.1f}]"
    table = verdict_rows({"verdict": v.to_dict()})
    primary = next(r for r in table if r[0].startswith("Primary"))
    assert primary[2] == diff.interval_text and primary[4].endswith("(fixed-horizon)")


def test_every_criterion_that_did_not_pass_says_why():
    v = evaluate(default_criteria(), _evidence(n=120))
    for c in v.criteria:
        if c.status != PASS:
            assert c.detail
    assert any(line.startswith("Accuracy (severity correct)") and "too few items (120 < 200"
               in line for line in v.why)
    assert _by_key(v)["min_items"].detail == "too few items (120 < 200 per arm)"
    assert evaluate(default_criteria(), _evidence()).why == []
