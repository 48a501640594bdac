"""The Results screen: the same verdict and numbers as `workbench report`, its keys, its look."""

from __future__ import annotations

import pytest
from screen_support import settle, steady, wait_for
from support import experiment_with_runs
from textual.widgets import DataTable, Input

from screens.app import create_app
from screens.widgets.results_charts import LatencyHistogram, LatencyOverRun

ITEMS = 40


def build_results_workspace(tmp_path):
    """40 items: B a bit slower and more often right than A; two raters rate 12 pairs each."""
    from workbench.rating.sessions import next_pair, open_session, record_rating
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    opened = open_workspace(root, seed=False)
    store = opened.store
    try:
        exp = experiment_with_runs(store, ITEMS, name="triage")
        for run in store.runs(exp.id, "id, item_id, arm"):
            k, b = run["item_id"], run["arm"] == "B"
            store.db.execute(
                "UPDATE runs SET latency_ms = ?, ttft_ms = ?, prompt_tokens = 120, "
                "completion_tokens = ?, decode_tps = ?, severity_ok = ? WHERE id = ?",
                [800 + 37 * (k % 11) + (90 if b else 0) + 13 * (k % 3), 150 + k % 5,
                 60 + k % 7, 40.0 - b, int((k % 4 != 0) if b else (k % 3 != 0)), run["id"]])
        for rater, seed in (("ana", 1), ("bob", 2)):
            session = open_session(store, exp.id, rater, seed=seed)
            for _ in range(12):
                pair = next_pair(store, session)
                b_side = "1" if pair.response_1.startswith("omega") else "2"
                choice = b_side if pair.item_id % 3 else "tie"
                score = {b_side: 4 + pair.item_id % 2}
                record_rating(store, session, pair.item_id, choice,
                              accuracy_1=score.get("1", 3), accuracy_2=score.get("2", 3),
                              safety_1=5, safety_2=5, seconds=12.0)
    finally:
        opened.close()
    return root, exp.id


@pytest.fixture
def results_ws(tmp_path):
    return build_results_workspace(tmp_path)


def report_of(root, exp_id, **kw) -> dict:
    from workbench.experiments.report import build_report
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        return build_report(store, exp_id, **kw)


def table_rows(app, selector: str) -> list[list[str]]:
    table = app.screen.query_one(selector, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def banner(app) -> str:
    return str(app.screen.query_one("#verdict-banner").content)


async def open_results(pilot) -> None:
    app = pilot.app
    await settle(pilot)
    await wait_for(pilot, lambda: app.screen.query_one(LatencyOverRun).data is not None,
                   what="the chart data")


async def test_results_show_the_same_verdict_and_numbers_as_the_report(results_ws, make_app):
    from workbench.experiments.report import arm_rows

    from workbench.experiments.verdict_text import why_groups

    root, exp_id = results_ws
    app = make_app(root, seed_workspace=False, start_screen="results")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_results(pilot)
        report = report_of(root, exp_id)
        verdict = report["verdict"]
        assert f"Verdict: {verdict['decision'].upper()}" in banner(app)
        shown = table_rows(app, "#criteria-table")
        assert [(row[1], row[0]) for row in shown] == \
            [(c["name"], c["status"]) for c in verdict["criteria"]]
        arms = arm_rows(report)
        assert [row[1:] for row in table_rows(app, "#arms-table")] == \
            [[arm[i] for arm in arms[1:]] for i in range(2, len(arms[0]))]
        e = report["experiment"]
        summary = str(app.screen.query_one("#results-summary").content)
        assert f"runs {e['runs_stored']}/{e['runs_planned']}" in summary
        comparisons = str(app.screen.query_one("#comparisons").content)
        pref = report["comparisons"]["B"]["preference"]
        assert f"blind votes: B {pref['wins_b']} / tie {pref['ties']} / A {pref['wins_a']}" \
            in comparisons
        assert "rater agreement (accuracy)" in comparisons and "position bias" in comparisons
        assert app.screen.query_one(LatencyHistogram).data.counts["B"]
        # why each row is "not enough data", in the banner and the table, not only in --json
        for status, detail, names in why_groups(verdict["criteria"]):
            assert f"{status}: {detail}" in banner(app) and names[0] in banner(app)
        assert "too few items (40 < 200 per arm)" in banner(app)
        assert [row[5] for row in shown] == [c["detail"] for c in verdict["criteria"]]
        expert = next(row for row in shown if row[1].startswith("Expert"))
        assert "gate passed" not in expert[6]  # the threshold never claims it passed
        # every p-value on the screen says which kind it is
        assert "p=0.629 (fixed-horizon)" in comparisons and "(always-valid)" not in comparisons
        assert "exploratory" in comparisons and "BH-adjusted" in comparisons


async def test_results_keys_always_valid_price_markdown_and_complete(results_ws, make_app):
    root, exp_id = results_ws
    app = make_app(root, seed_workspace=False, start_screen="results")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_results(pilot)
        await pilot.press("v")
        await settle(pilot)
        sequential = report_of(root, exp_id, sequential=True)
        assert sequential["sequential"]["label"] in banner(app)
        assert [row[0] for row in table_rows(app, "#criteria-table")] == \
            [c["status"] for c in sequential["verdict"]["criteria"]]
        comparisons = str(app.screen.query_one("#comparisons").content)
        acc = sequential["comparisons"]["B"]["shown"]["accuracy"]
        assert f"p={acc['p_value']:.3g} (always-valid)" in comparisons
        assert "p=0.629 (fixed-horizon)" not in comparisons

        await pilot.press("dollar_sign")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the price dialog")
        await pilot.press(*"0.5", "enter")
        await settle(pilot)
        priced = report_of(root, exp_id, sequential=True, price_per_1k_tokens=0.5)
        cost = next(row for row in table_rows(app, "#arms-table") if row[0] == "cost")
        assert cost[1:] == [f"{a['cost']:.4f}" for a in priced["arms"]]

        await pilot.press("m")
        await settle(pilot)
        written = root / "reports" / f"experiment-{exp_id}.md"
        assert written.read_text().startswith(f"# Experiment {exp_id} ")
        assert any(str(written) in n.message for n in app._notifications)

        await pilot.press("g")
        await settle(pilot)
        assert app.screen.query_one("#results-tabs").active == "tab-charts"

        await pilot.press("w")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "WinnerDialog", what="dialog")
        await pilot.press("b")
        await settle(pilot)
        assert "completed (winner B)" in str(app.screen.query_one("#results-summary").content)
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        exp = store.get_experiment(exp_id)
        assert (exp.status, exp.winner) == ("completed", "B") and exp.completed_at
        baselines = store.rows("SELECT target FROM monitor_baselines")
        assert [r["target"] for r in baselines] == [f"variant:{store.get_variant(exp.arms['B']).name}"]


async def test_results_show_each_raters_consistency(results_ws, make_app):
    root, exp_id = results_ws
    app = make_app(root)
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await open_results(pilot)
        await wait_for(pilot, lambda: "ana" in str(app.screen.query_one("#rater-consistency")
                                                   .content), what="rater consistency")
        text = str(app.screen.query_one("#rater-consistency").content)
    assert "Rater consistency" in text
    assert "ana: agrees with the others' majority" in text and "bob: agrees" in text


async def test_o_on_experiments_opens_the_results_of_the_shown_experiment(results_ws, make_app):
    from workbench.store import Store

    root, exp_id = results_ws
    with Store(root / "workbench.db") as store:
        other = experiment_with_runs(store, 4, name="second")
    app = make_app(root, seed_workspace=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.open_experiment(exp_id)  # the older experiment, not the default last one
        await settle(pilot)
        await pilot.press("o")
        await open_results(pilot)
        assert type(app.screen).__name__ == "ResultsScreen" and app.screen.exp_id == exp_id
        await pilot.press("3")
        await settle(pilot)
        app.screen.open_experiment(other.id)
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        assert app.screen.exp_id == other.id


def test_results_screen_snapshot(snap_compare, tmp_path):
    root, _ = build_results_workspace(tmp_path)
    app = create_app(root, start_screen="results", seed_workspace=False)
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady())


def test_results_charts_snapshot(snap_compare, tmp_path):
    root, _ = build_results_workspace(tmp_path)
    app = create_app(root, start_screen="results", seed_workspace=False)
    assert snap_compare(app, terminal_size=(120, 40), run_before=steady("g"))


def build_mixed_workspace(tmp_path):
    """Items of three features and several categories, with runs and two raters' ratings."""
    from breakdown_support import mixed_workspace

    return mixed_workspace(tmp_path / "mixed")


def group_sections(app) -> list[dict]:
    """Each group of the per-group pane: its banner text and its tables' rows."""
    from screens.results_groups import GroupsPanel

    sections = []
    for widget in app.screen.query_one(GroupsPanel).children:
        if widget.has_class("group-banner"):
            sections.append({"banner": str(widget.content), "criteria": None})
        elif widget.has_class("group-criteria"):
            sections[-1]["criteria"] = [[str(c) for c in widget.get_row_at(i)]
                                        for i in range(widget.row_count)]
        elif widget.has_class("group-arms"):
            sections[-1]["arms"] = [[str(c) for c in widget.get_row_at(i)]
                                    for i in range(widget.row_count)]
        elif widget.has_class("group-comparisons"):
            sections[-1]["comparisons"] = str(widget.content)
    return sections


async def test_f_cycles_the_grouping_all_feature_category(tmp_path, make_app):
    from workbench.experiments.breakdown import breakdown, group_title, holm_lines
    from workbench.experiments.report import arm_rows
    from workbench.store import Store

    root, exp_id = build_mixed_workspace(tmp_path)
    with Store(root / "workbench.db") as store:
        expected = {by: breakdown(store, exp_id, by) for by in ("feature", "category")}
    app = make_app(root, seed_workspace=False, start_screen="results")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_results(pilot)
        tabs = app.screen.query_one("#results-tabs")
        assert not tabs.get_tab("tab-groups").display  # all items: no per-group pane
        overall = table_rows(app, "#criteria-table")
        for by in ("feature", "category"):
            await pilot.press("f")
            await wait_for(pilot, lambda: app.screen.groups is not None, what=f"groups by {by}")
            await settle(pilot)
            assert tabs.active == "tab-groups" and tabs.get_tab("tab-groups").display
            sections, result = group_sections(app), expected[by]
            assert len(sections) == len(result["groups"])
            for shown, g in zip(sections, result["groups"]):
                assert shown["banner"].startswith(group_title(result, g))
                for line in holm_lines(g):
                    assert line in shown["banner"]
                arms = arm_rows(g["report"])
                assert [row[1:] for row in shown["arms"]] == \
                    [[arm[i] for arm in arms[1:]] for i in range(2, len(arms[0]))]
                if g["too_few"]:
                    assert f"Verdict (exploratory): {g['too_few']}" in shown["banner"]
                    assert shown["criteria"] is None
                    continue
                verdict = g["report"]["verdict"]
                assert f"Verdict (exploratory): {verdict['decision'].upper()}" in shown["banner"]
                assert [(row[1], row[0], row[5]) for row in shown["criteria"]] == \
                    [(c["name"], c["status"], c["detail"]) for c in verdict["criteria"]]
                assert "B vs A (paired) accuracy" in shown["comparisons"]
            assert table_rows(app, "#criteria-table") == overall  # the overall verdict stays
        assert [s["banner"].split(":")[0] for s in group_sections(app)] == \
            ["category db", "category net", "category (none)"]
        await pilot.press("m")
        await settle(pilot)
        written = (root / "reports" / f"experiment-{exp_id}.md").read_text()
        assert "\n# Per-category results\n" in written
        await pilot.press("f")
        await settle(pilot)
        assert tabs.active == "tab-numbers" and not tabs.get_tab("tab-groups").display
        assert app.screen.groups is None


async def test_the_per_group_pane_fits_80x24_and_shows_hostile_categories_plainly(tmp_path,
                                                                                  make_app):
    from screen_support import screen_text

    from screens.results_groups import GroupsPanel

    hostile = "[/oops] [bold]x\x1b]0;pwned\x07\x1b[2J"
    root, exp_id = build_mixed_workspace(tmp_path)
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        store.db.execute("UPDATE items SET category = ? WHERE category = 'db'", [f"db{hostile}"])
    app = make_app(root, seed_workspace=False, start_screen="results")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_results(pilot)
        footer = {key for key, b in app.screen.active_bindings.items() if b.binding.show}
        assert "f" in footer
        await pilot.press("f", "f")
        await wait_for(pilot, lambda: app.screen.groups is not None
                       and app.screen.groups.grouping == "category", what="groups by category")
        await settle(pilot)
        panel = app.screen.query_one(GroupsPanel)
        assert 0 <= panel.region.y < 24  # scrolled into view
        text = screen_text(app)
        footer_line = text.splitlines()[-1]  # every key fits, the new one and ? and q too
        assert "f Groups" in footer_line and "? Help" in footer_line and "q Quit" in footer_line
        assert "Per-category results: 3 group(s)" in text
        assert "\x1b" not in text and "\x07" not in text
        sections = group_sections(app)
        assert sections[0]["banner"].startswith(f"category db{hostile}".replace("\x1b", "\\x1b")
                                                .replace("\x07", "\\x07"))
