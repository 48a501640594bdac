"""Per-feature and per-category results: each group's report is the whole report of its items."""

from __future__ import annotations

import numpy as np
import pytest
from breakdown_support import LAYOUT, copy_as_experiment, fill, outcome
from scipy.stats import binomtest

from workbench.experiments.analysis import experiment_statistics
from workbench.experiments.breakdown import (NO_CATEGORY, breakdown, item_groups,
                                             render_breakdown_markdown, render_breakdown_text)
from workbench.store import Store

SAME = ("arms", "comparisons", "agreement", "position_bias", "bradley_terry", "sequential",
        "verdicts", "verdict", "notes")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("bd") / "w.db")
    exp_id = fill(store)
    yield store, exp_id, breakdown(store, exp_id, "feature"), breakdown(store, exp_id, "category")
    store.close()


def _group(result, name):
    return next(g for g in result["groups"] if g["group"] == name)


def _keys(layout_filter):
    return [k for k, fc in enumerate(LAYOUT[:-1]) if layout_filter(*fc)]


@pytest.mark.parametrize("by,name", [("feature", "audit"), ("feature", "incident"),
                                     ("category", NO_CATEGORY), ("category", "db")])
def test_each_group_is_the_whole_report_of_an_experiment_on_only_its_items(mixed, by, name):
    store, exp_id, by_feature, by_category = mixed
    group = _group(by_feature if by == "feature" else by_category, name)
    ids = item_groups(store, exp_id, by)[name]
    copy = copy_as_experiment(store, exp_id, ids, f"only-{by}-{name}")
    whole = experiment_statistics(store, copy)
    report = group["report"]
    for key in SAME:
        assert report[key] == whole[key], key
    criteria = dict(report["criteria"], planned_items=None)
    assert criteria == whole["criteria"]
    assert report["criteria"]["planned_items"] == whole["experiment"]["items_planned"] == len(ids)
    assert report["experiment"]["items_done"] == group["items"] == len(ids)


def test_group_numbers_are_the_statistics_of_its_items(mixed):
    store, exp_id, by_feature, _ = mixed
    audit = _group(by_feature, "audit")["report"]
    keys = _keys(lambda f, c: f == "audit")
    runs = [outcome(k, "audit") for k in keys]
    a = np.array([r["A"]["ok"] for r in runs])
    b = np.array([r["B"]["ok"] for r in runs])
    acc = audit["comparisons"]["B"]["accuracy"]
    assert acc["diff"] == pytest.approx(b.mean() - a.mean())
    b_only, a_only = int(np.sum((b == 1) & (a == 0))), int(np.sum((a == 1) & (b == 0)))
    assert acc["p_value"] == pytest.approx(binomtest(b_only, b_only + a_only, 0.5).pvalue)
    arms = {row["arm"]: row for row in audit["arms"]}
    assert arms["B"]["n"] == len(keys) and arms["B"]["errors"] == 0
    assert arms["B"]["safety_flags"] == {"n": len(keys), "flagged": 1, "rate": 1 / len(keys)}
    assert arms["A"]["total_tokens"] == sum(40 + k + 10 + k % 4 for k in keys)
    lat = [outcome(k, "audit")["A"]["latency"] for k in keys]
    assert arms["A"]["latency_ms"]["p50"] == pytest.approx(np.median(lat))
    primary = next(c for c in audit["verdict"]["criteria"] if c["key"] == "primary")
    assert primary["p_value"] == pytest.approx(acc["p_value"])
    # the incident group holds item 5, where B errored, and the items without a feature
    incident = _group(by_feature, "incident")
    assert incident["items"] == len(_keys(lambda f, c: f in ("incident", None)))
    assert {r["arm"]: r["errors"] for r in incident["report"]["arms"]} == {"A": 0, "B": 1}
    # the ratings of a group are its items' ratings only: each rater rated 12 incident items
    assert incident["report"]["comparisons"]["B"]["preference"]["n_items"] == 12
    assert audit["comparisons"]["B"]["preference"]["n_items"] == 10


def test_primary_p_values_are_holm_adjusted_across_the_groups_with_a_verdict(mixed):
    _, _, by_feature, by_category = mixed
    for result in (by_feature, by_category):
        rows = [(g, g["primary_holm"]["B"]) for g in result["groups"] if not g["too_few"]]
        p = np.array([h["p_value"] for _, h in rows])
        m = len(p)
        order = np.argsort(p)
        expected = np.empty(m)
        running = 0.0
        for rank, i in enumerate(order):  # Holm step-down written out
            running = max(running, min(1.0, (m - rank) * p[i]))
            expected[i] = running
        for (g, h), want in zip(rows, expected):
            primary = next(c for c in g["report"]["verdict"]["criteria"] if c["key"] == "primary")
            assert h["p_value"] == primary["p_value"] and h["family"] == m
            assert h["p_holm"] == pytest.approx(want)
            assert h["significant"] == (want < 0.05)
    assert len([g for g in by_feature["groups"] if not g["too_few"]]) == 2
    audit = _group(by_feature, "audit")["primary_holm"]["B"]  # the adjustment is not a no-op
    assert 0 < audit["p_value"] < audit["p_holm"] == pytest.approx(2 * audit["p_value"])


def test_a_group_with_too_few_items_has_tables_but_no_verdict(mixed):
    store, exp_id, by_feature, _ = mixed
    code = _group(by_feature, "code")
    assert code["too_few"] == "too few items (n=3)" and code["items"] == 3
    assert code["report"]["verdict"] is None and code["report"]["verdicts"] == {}
    assert code["primary_holm"] == {}
    assert {r["arm"]: r["n"] for r in code["report"]["arms"]} == {"A": 3, "B": 3}
    text = render_breakdown_text(by_feature)
    assert "Verdict (exploratory): too few items (n=3)" in text
    lowered = breakdown(store, exp_id, "feature", min_items=3, n_resamples=200)
    code = _group(lowered, "code")
    assert code["too_few"] is None and code["report"]["verdict"]["criteria"]
    assert code["primary_holm"]["B"]["family"] == 3


def test_category_groups_put_items_without_one_in_none_and_leave_out_groups_without_runs(mixed):
    store, exp_id, _, by_category = mixed
    assert [(g["group"], g["items"]) for g in by_category["groups"]] == [
        ("db", len(_keys(lambda f, c: c == "db"))), ("net", len(_keys(lambda f, c: c == "net"))),
        (NO_CATEGORY, len(_keys(lambda f, c: not (c or "").strip())))]
    assert "orphan" not in item_groups(store, exp_id, "category")  # its item has no runs
    assert list(item_groups(store, exp_id, "feature")) == ["incident", "audit", "code"]
    with pytest.raises(ValueError, match="group by one of feature, category"):
        item_groups(store, exp_id, "user")


def test_the_text_and_markdown_show_every_table_and_criterion_of_each_group(mixed):
    _, _, by_feature, _ = mixed
    text = render_breakdown_text(by_feature)
    assert text.startswith("Per-feature results: 3 group(s)\nnote: exploratory:")
    for g in by_feature["groups"]:
        section = text.split(f"== feature {g['group']}: ")[1].split("\n== ")[0]
        assert f"{g['items']} items, {g['runs']} runs ==" in section
        assert "p50 ms" in section and "B vs A (paired) accuracy" in section
        for c in (g["report"]["verdict"] or {}).get("criteria", []):
            assert c["name"] in section and c["status"] in section
        if not g["too_few"]:
            assert "Verdict (exploratory): " in section and "Holm across 2 group(s)" in section
    markdown = render_breakdown_markdown(by_feature)
    assert markdown.startswith("# Per-feature results")
    assert markdown.count("## feature ") == 3 and "### Verdict (exploratory): **" in markdown
    assert "**Verdict (exploratory): too few items (n=3)**" in markdown


def test_the_whole_report_is_unchanged_without_a_grouping(mixed):
    store, exp_id, _, _ = mixed
    everything = [i for ids in item_groups(store, exp_id).values() for i in ids]
    whole = experiment_statistics(store, exp_id)
    grouped = experiment_statistics(store, exp_id, items=everything)
    assert whole["criteria"]["planned_items"] is None
    for key in SAME:
        assert grouped[key] == whole[key], key
