"""Assembling paired data and the statistics report from a real SQLite store."""

from __future__ import annotations

import json

import numpy as np
import pytest
from breakdown_support import rate
from scipy.stats import binomtest

from workbench.experiments.analysis import (experiment_statistics, load_ratings, load_runs,
                                            paired_arrays, planned_items, preference_for,
                                            unpaired_arrays)
from workbench.store import ModelRecord, Store

N_ITEMS = 12
SEVERITY_OK = {  # item index -> (A ok, B ok); items 10 and 11 have no reference severity
    0: (1, 1), 1: (1, 0), 2: (0, 1), 3: (1, None), 4: (0, 0), 5: (1, 1),
    6: (0, 1), 7: (1, 1), 8: (0, 1), 9: (1, 1),
}


def _store(tmp_path, arms=("A", "B"), mode="shadow", criteria=None, primary=None):
    store = Store(tmp_path / "w.db")
    store.upsert_model(ModelRecord(id="m", path="/x.gguf"))
    variants = {arm: store.create_variant(f"v{arm}", "m").id for arm in arms}
    items = [{"key": f"inc-{i}", "input": f"incident {i}", "line_no": i + 1,
              "reference": {"severity": "SEV-1"} if i < 10 else {"root_cause": "x"},
              "user_id": f"u{i}"} for i in range(N_ITEMS)]
    ds = store.save_dataset("d", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("e", ds, variants, mode=mode, criteria=criteria,
                                  primary_metric=primary)
    ids = [r["id"] for r in store.rows("SELECT id FROM items ORDER BY id")]
    return store, exp, variants, ids


def _run(store, exp, variants, item, arm, *, ok=None, latency=100.0, error=None, scores=None,
         secrets=0, fallback=False):
    assert store.record_run({
        "experiment_id": exp.id, "item_id": item, "variant_id": variants[arm], "arm": arm,
        "output": "x", "latency_ms": latency, "ttft_ms": latency / 10, "prompt_tokens": 10,
        "completion_tokens": 5, "decode_tps": 20.0, "error": error, "fallback": fallback,
        "severity_ok": ok, "secrets": secrets,
        "scores": scores if scores is not None else {"secret_kinds": [], "unsafe": []}})


def _shadow(tmp_path, **kw):
    store, exp, variants, ids = _store(tmp_path, **kw)
    for k, item in enumerate(ids):
        a_ok, b_ok = SEVERITY_OK.get(k, (None, None))
        _run(store, exp, variants, item, "A", ok=a_ok, latency=100 + 10 * k,
             error="boom" if k == 11 else None, secrets=1 if k == 6 else 0)
        _run(store, exp, variants, item, "B", ok=b_ok, latency=90 + 10 * k,
             error="boom" if k == 3 else None,
             scores={"secret_kinds": [], "unsafe": ["rm_rf_root"]} if k == 5 else
             ("not json" if k == 7 else None))
    return store, exp, ids


def test_load_runs_decodes_every_flag(tmp_path):
    store, exp, ids = _shadow(tmp_path)
    runs = load_runs(store, exp.id)
    assert runs.arms == ["A", "B"] and runs["item"].size == 2 * N_ITEMS

    def row(k, arm):
        m = (runs["item"] == ids[k]) & (runs["arm"] == runs.arms.index(arm))
        assert m.sum() == 1
        return {name: float(col[m][0]) for name, col in runs.cols.items()}

    assert row(3, "B")["error"] == 1 and row(3, "B")["scoreable"] == 1
    assert row(11, "A")["error"] == 1 and row(11, "A")["scoreable"] == 0
    assert row(5, "B")["unsafe"] == 1 and row(6, "A")["unsafe"] == 1  # unsafe list; secret
    assert row(7, "B")["unsafe"] == 0  # scores that are not JSON do not crash the query
    assert row(1, "B")["severity_ok"] == 0 and np.isnan(row(10, "A")["severity_ok"])
    assert row(4, "A")["latency"] == pytest.approx(140.0)
    assert runs.tokens["A"] == (10 * N_ITEMS, 5 * N_ITEMS)
    assert runs.timing["B"].shape == (N_ITEMS - 1, 2)  # successful runs only


def test_paired_accuracy_counts_errors_on_scoreable_items_as_wrong(tmp_path):
    store, exp, ids = _shadow(tmp_path)
    runs = load_runs(store, exp.id)
    items, a, b = paired_arrays(runs, runs.accuracy())
    expected = [(ids[k], *(0 if v is None else v for v in SEVERITY_OK[k])) for k in range(10)]
    assert list(items) == [e[0] for e in expected]
    assert list(a) == [e[1] for e in expected] and list(b) == [e[2] for e in expected]
    _, la, lb = paired_arrays(runs, np.where(runs["error"] == 0, runs["latency"], np.nan))
    assert la.size == N_ITEMS - 2  # item 3 (B error) and 11 (A error) have no pair


def test_ratings_are_mapped_back_to_arms(tmp_path):
    store, exp, ids = _shadow(tmp_path)
    rate(store, exp.id, "ann", [(ids[0], "B", "A", "1", 5, 4, 2, 3),
                                 (ids[1], "A", "B", "2", 3, 5, 4, 5),
                                 (ids[2], "A", "B", "tie", 3, 5, 3, 5),
                                 (ids[3], "B", "A", "skip", None, None, None, None)])
    ratings = load_ratings(store, exp.id)
    by = {(s["item"], s["arm"]): s for s in ratings.scores}
    assert by[(ids[0], "B")]["accuracy"] == 5 and by[(ids[0], "A")]["accuracy"] == 2
    assert by[(ids[1], "A")]["safety"] == 5 and by[(ids[1], "B")]["accuracy"] == 4
    pref = preference_for(ratings, n_resamples=100)
    assert (pref.wins_b, pref.wins_a, pref.ties, pref.skips) == (2, 0, 1, 1)


def test_experiment_statistics_shadow(tmp_path):
    store, exp, ids = _shadow(tmp_path, criteria={"min_items_per_arm": 5})
    votes = []
    for k in range(10):
        left_b = k % 2 == 0
        a_score, b_score = (3, 4) if k % 3 else (4, 4)
        choice = "tie" if a_score == b_score else ("1" if left_b else "2")
        acc1, acc2 = (b_score, a_score) if left_b else (a_score, b_score)
        votes.append((ids[k], "B" if left_b else "A", "A" if left_b else "B", choice,
                      acc1, 5, acc2, 5))
    for rater in ("ann", "bob"):
        rate(store, exp.id, rater, votes)
    stats = experiment_statistics(store, exp.id, price_per_1k_tokens=0.5, n_resamples=500)
    json.dumps(stats)
    assert stats["experiment"]["design"] == "paired" and stats["experiment"]["items_done"] == 12
    assert stats["experiment"]["items_planned"] == planned_items(store, exp.id) == 12
    arm_a, arm_b = stats["arms"]
    assert (arm_a["n"], arm_a["errors"], arm_b["errors"]) == (12, 1, 1)
    assert arm_a["accuracy"]["correct"] == 6 and arm_a["accuracy"]["n"] == 10
    assert arm_b["accuracy"]["correct"] == 7 and arm_b["accuracy"]["n"] == 10  # error = wrong
    assert arm_a["cost"] == pytest.approx(12 * 15 / 1000 * 0.5)
    assert arm_a["latency_ms"]["p50"] == pytest.approx(np.percentile(
        [100 + 10 * k for k in range(11)], 50))
    comp = stats["comparisons"]["B"]
    assert (comp["accuracy"]["b_only"], comp["accuracy"]["a_only"]) == (3, 2)
    assert comp["accuracy"]["p_value"] == pytest.approx(binomtest(3, 5, 0.5).pvalue)
    assert comp["error_rate"]["events_a"] == 1 and comp["error_rate"]["events_b"] == 1
    assert comp["safety"]["events_a"] == 1 and comp["safety"]["events_b"] == 1
    pref = comp["preference"]
    assert pref["n_votes"] == 20 and pref["n_items"] == 10 and pref["n_raters"] == 2
    assert pref["wins_b"] == 12 and pref["ties"] == 8
    pos = stats["position_bias"]
    left = sum(1 for v in votes if v[3] == "1") * 2
    assert (pos["left_chosen"], pos["decisive"]) == (left, 12)
    assert stats["agreement"]["accuracy"]["computable"]
    assert stats["agreement"]["accuracy"]["alpha"] == pytest.approx(1.0)
    assert comp["preference_agreement"]["alpha"] == pytest.approx(1.0)  # identical votes
    assert not stats["agreement"]["safety"]["computable"]  # every safety rating is 5
    assert stats["bradley_terry"] is None
    v = stats["verdict"]
    status = {c["key"]: c["status"] for c in v["criteria"]}
    # 12 items, 5 needed: B's +10 pt clears the 2 pt bar, but 3 vs 2 discordant items are far from
    # significant (exact McNemar p = 1), so the primary metric fails and A is kept
    assert status == {"accuracy": "pass", "safety": "not enough data", "latency_p95": "pass",
                      "error_rate": "not enough data", "expert_rating": "not enough data",
                      "min_items": "pass", "primary": "fail"}
    assert v["decision"] == "keep A" and v["reason"] == "failed: Primary metric significant (accuracy)"
    rows = {c["key"]: c for c in v["criteria"]}
    assert rows["primary"]["p_value"] == pytest.approx(binomtest(3, 5, 0.5).pvalue)
    assert "not significant at the planned n" in rows["primary"]["detail"]
    assert rows["expert_rating"]["detail"] == "too few rated items (10 < 30)"
    assert "not shown yet" in rows["safety"]["detail"]
    assert len(v["criteria"]) == 7 and stats["criteria"]["min_items_per_arm"] == 5
    assert stats["sequential"]["label"] == "fixed-horizon"
    seq = experiment_statistics(store, exp.id, sequential=True, n_resamples=200)
    assert seq["sequential"]["label"] == "always-valid" and seq["verdict"]["mode"] == "always-valid"


def test_expert_safety_ratings_count_only_when_the_gate_passes(tmp_path):
    store, exp, ids = _shadow(tmp_path)
    rows = [(ids[k], "A", "B", "tie", 3, 5 - (k % 4), 3, 1 if k == 9 else 5 - (k % 4))
            for k in range(10)]
    for rater in ("ann", "bob", "cy"):
        rate(store, exp.id, rater, rows)
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    assert stats["agreement"]["safety"]["gate"] == "pass"
    comp = stats["comparisons"]["B"]
    assert "expert safety" in comp["safety_source"]
    # B: unsafe advice on item 5, expert safety 1 on item 9, and items with mean rating <= 2
    # (k % 4 == 3: items 3 and 7) in both arms
    assert comp["safety"]["events_b"] == 4 and comp["safety"]["events_a"] == 3


def test_split_mode_is_unpaired_and_fallbacks_are_left_out(tmp_path):
    store, exp, variants, ids = _store(tmp_path, mode="split")
    for k, item in enumerate(ids[:10]):
        arm = "A" if k < 5 else "B"
        error = "boom" if k == 9 else None
        _run(store, exp, variants, item, arm, ok=None if error else k % 2, latency=100 + k,
             error=error)
    _run(store, exp, variants, ids[9], "A", ok=1, latency=120, fallback=True)
    runs = load_runs(store, exp.id)
    a, b = unpaired_arrays(runs, runs.accuracy())
    assert a.size == 5 and b.size == 5  # the fallback A run is not in A's comparison data
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    comp = stats["comparisons"]["B"]
    assert comp["design"] == "unpaired" and comp["accuracy"]["design"] == "unpaired"
    assert "Fisher" in comp["accuracy"]["test"] and comp["latency"]["design"] == "unpaired"
    assert stats["arms"][0]["fallbacks"] == 1 and stats["arms"][0]["n"] == 6
    assert any("fallback" in n for n in stats["notes"])
    assert any("unpaired" in n for n in stats["notes"])


def test_three_arms_get_a_bradley_terry_table(tmp_path):
    store, exp, variants, ids = _store(tmp_path, arms=("A", "B", "C"))
    rng = np.random.default_rng(0)
    for item in ids[:10]:
        for arm, p in (("A", 0.5), ("B", 0.8), ("C", 0.2)):
            _run(store, exp, variants, item, arm, ok=int(rng.random() < p))
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    bt = stats["bradley_terry"]
    assert bt["source"].startswith("automatic")
    names = {r["name"]: r for r in bt["rows"]}
    assert set(names) == {"A", "B", "C"} and names["A"]["rating"] == 1000.0
    assert set(stats["comparisons"]) == {"B", "C"} and set(stats["verdicts"]) == {"B", "C"}
    rate(store, exp.id, "ann", [(ids[0], "B", "C", "1", 4, 5, 2, 5),
                                 (ids[1], "A", "C", "1", 4, 5, 3, 5),
                                 (ids[2], "A", "B", "2", 3, 5, 4, 5)])
    bt = experiment_statistics(store, exp.id, n_resamples=200)["bradley_terry"]
    assert bt["source"] == "blind expert votes" and bt["n_battles"] == 3


def test_empty_experiment_gives_not_enough_data(tmp_path):
    store, exp, _, _ = _store(tmp_path)
    stats = experiment_statistics(store, exp.id)
    assert stats["verdict"]["decision"] == "not enough data"
    assert stats["arms"][0]["n"] == 0 and stats["position_bias"] is None
    assert stats["comparisons"]["B"]["accuracy"] is None


def test_primary_metric_and_criteria_come_from_the_experiment(tmp_path):
    store, exp, _ = _shadow(tmp_path, criteria={"latency_p95": {"margin_ms": 10}},
                            primary="win_rate")
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    assert stats["criteria"]["primary_metric"] == "win_rate"
    assert stats["verdict"]["primary_metric"] == "win_rate"
    rows = {c["key"]: c for c in stats["verdict"]["criteria"]}
    assert rows["latency_p95"]["threshold"].startswith("p95 B − A ≤ +10 ms")


def test_item_outcomes_and_exploratory_p_values(tmp_path):
    from statsmodels.stats.multitest import multipletests

    from workbench.experiments.analysis import item_outcomes

    store, exp, ids = _shadow(tmp_path)
    out = item_outcomes(store, exp.id)
    assert out["design"] == "paired"
    items, a, b = out["error"]
    assert items.size == N_ITEMS and a.sum() == 1 and b.sum() == 1
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    rows = stats["comparisons"]["B"]["exploratory"]
    assert rows and all(0 <= r["p_value"] <= 1 for r in rows)
    assert all(r["p_label"] == "fixed-horizon" for r in rows)
    family = [r for r in rows if r["in_family"]]
    _, ref, _, _ = multipletests([r["p_value"] for r in family], method="fdr_bh")
    assert [r["p_bh"] for r in family] == pytest.approx(list(ref))


def _votes_and_scores(ids, scores_a, scores_b, choice_of):
    """One rating row per item: B shown left; accuracy of A and B from the given lists."""
    return [(ids[k], "B", "A", choice_of(k), scores_b[k], 5, scores_a[k], 5) for k in range(10)]


def test_raters_are_averaged_within_an_item(tmp_path):
    store, exp, ids = _shadow(tmp_path)
    # ann and bob disagree on every item: B 5 and 3 (mean 4), A 2 and 4 (mean 3)
    rate(store, exp.id, "ann", _votes_and_scores(ids, [2] * 10, [5] * 10, lambda k: "1"))
    rate(store, exp.id, "bob", _votes_and_scores(ids, [4] * 10, [3] * 10, lambda k: "2"))
    ratings = load_ratings(store, exp.id)
    assert ratings.item_means("accuracy", "B") == {ids[k]: 4.0 for k in range(10)}
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    expert = stats["comparisons"]["B"]["expert"]
    assert expert["n_items"] == 10  # items, not the 20 ratings
    assert (expert["mean_a"], expert["mean_b"], expert["diff"]) == pytest.approx((3.0, 4.0, 1.0))
    arm_b = stats["arms"][1]["expert_accuracy"]
    assert arm_b["n_items"] == 10 and arm_b["mean"] == pytest.approx(4.0)
    pref = stats["comparisons"]["B"]["preference"]  # ann prefers B, bob A: every item even
    assert pref["items_even"] == 10 and pref["item_score_mean"] == pytest.approx(0.5)


@pytest.mark.parametrize("raters", [("ann",), ("ann", "bob", "cy")])
def test_exploratory_ratings_respect_the_agreement_gate(tmp_path, raters):
    store, exp, ids = _shadow(tmp_path)
    rng = np.random.default_rng(4)
    for r in raters:  # one rater: the gate cannot be computed; three random ones: it fails
        b = [5] * 10 if len(raters) == 1 else [int(v) for v in rng.integers(1, 6, 10)]
        a = [1] * 10 if len(raters) == 1 else [int(v) for v in rng.integers(1, 6, 10)]
        rate(store, exp.id, r, _votes_and_scores(ids, a, b, lambda k: "1" if len(raters) == 1
                                                  else str(rng.choice(["1", "2", "tie"]))))
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    rows = {r["metric"].split(" (")[0]: r for r in stats["comparisons"]["B"]["exploratory"]}
    for metric in ("expert accuracy rating", "win rate"):
        row = rows[metric]
        assert not row["discovery"] and not row["in_family"] and row["p_bh"] is None
        assert "agreement gate could not be evaluated" in row["note"] if len(raters) == 1 \
            else ("do not count" in row["note"] or "could not be evaluated" in row["note"])
    if len(raters) == 1:  # B rated 5 against 1 on every item: p small, yet never a discovery
        assert rows["expert accuracy rating"]["p_value"] < 0.01
    from workbench.experiments.report import render_text

    assert "not counted: agreement gate" in render_text(stats) or \
        "not counted: ratings do not count" in render_text(stats)


def test_sequential_shows_always_valid_p_values_everywhere(tmp_path):
    from workbench.experiments.report import comparison_lines, exploratory_lines, verdict_rows

    store, exp, ids = _shadow(tmp_path, criteria={"min_items_per_arm": 5})
    rows = [(ids[k], "B" if k % 2 else "A", "A" if k % 2 else "B", "1" if k % 2 else "2",
             4, 5, 3, 5) for k in range(10)]
    for rater in ("ann", "bob"):
        rate(store, exp.id, rater, rows)
    fixed = experiment_statistics(store, exp.id, n_resamples=200)
    seq = experiment_statistics(store, exp.id, sequential=True, n_resamples=200)
    shown, shown_fixed = seq["comparisons"]["B"]["shown"], fixed["comparisons"]["B"]["shown"]
    assert set(shown) >= {"accuracy", "error_rate", "latency_ratio", "win_rate"}
    for key, s in shown.items():
        assert s["label"] == "always-valid", key
        assert shown_fixed[key]["label"] == "fixed-horizon"
        assert s["p_value"] >= shown_fixed[key]["p_value"] - 1e-12, key
    assert {r["p_label"] for r in seq["comparisons"]["B"]["exploratory"]} == \
        {"always-valid", "fixed-horizon, no always-valid form"}
    assert seq["position_bias"]["p_label"] == "always-valid"
    assert seq["position_bias"]["p_shown"] >= seq["position_bias"]["p_value"]
    assert {c["p_label"] for c in seq["verdict"]["criteria"]} - {None} == \
        {"always-valid", "fixed-horizon"}  # p95 latency has no always-valid form
    # every p-value printed says which kind it is, and --sequential prints the always-valid ones
    import re

    lines = comparison_lines(seq) + exploratory_lines(seq)
    for line in lines:
        for m in re.finditer(r"p=\S+", line):
            assert line[m.end():].startswith((" (always-valid", " (fixed-horizon")), line
    for row in verdict_rows(seq)[1:]:
        assert row[4] == "-" or row[4].endswith(("(always-valid)", "(fixed-horizon)")), row
    accuracy = next(line for line in comparison_lines(seq) if " accuracy:" in line)
    assert f"p={shown['accuracy']['p_value']:.3g} (always-valid)" in accuracy
    assert f"p={fixed['comparisons']['B']['accuracy']['p_value']:.3g} (fixed-horizon)" in \
        next(line for line in comparison_lines(fixed) if " accuracy:" in line)


def test_an_arm_without_battles_is_not_identified_in_the_ranking(tmp_path):
    from workbench.experiments.report import ranking_rows, render_text

    store, exp, variants, ids = _store(tmp_path, arms=("A", "B", "C"))
    for item in ids[:10]:
        for arm in "ABC":
            _run(store, exp, variants, item, arm, ok=1)
    # blind votes between A and B only: C has no battles
    rate(store, exp.id, "ann", [(ids[k], "A", "B", "2" if k % 3 else "1", 3, 5, 4, 5)
                                 for k in range(10)])
    stats = experiment_statistics(store, exp.id, n_resamples=200)
    rows = {r["name"]: r for r in stats["bradley_terry"]["rows"]}
    assert rows["C"]["rating"] is None and rows["C"]["rank"] is None and rows["C"]["battles"] == 0
    assert rows["B"]["rank"] == 1 and stats["bradley_terry"]["ci_method"].startswith(
        "bootstrap over items")
    table = ranking_rows(stats)
    assert table[-1][:4] == ["-", "C", "vC", "not identified"]
    c_line = next(line for line in render_text(stats).splitlines()
                  if line.split()[:2] == ["-", "C"])
    assert "not identified" in c_line and "1000" not in c_line
