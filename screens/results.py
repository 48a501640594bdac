"""Results screen: the experiment report (`workbench report`) with its verdict, tables and charts.

The statistics run in a thread worker. The verdict, criteria and tables are painted first; the
replay counts and the latency charts (which read every run again) follow in a second worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Footer, Header, TabbedContent, TabPane

from .base import WorkbenchScreen
from .dialogs import Field, FormDialog
from .results_dialogs import WinnerDialog
from .results_groups import GroupsPanel
from .results_view import (arm_columns_and_rows, comparisons_text, criteria_columns,
                           criteria_rows, summary_line, verdict_banner)
from .widgets.results_charts import (AccuracySafety, LatencyHistogram, LatencyOverRun,
                                     LatencySeries, WinTieLoss, latency_series)
from .widgets.safe import DataTable, Select, Static, Text


@dataclass
class Loaded:
    """What the first worker reads: the experiment list and the chosen experiment's report."""

    options: list[tuple[str, int]]
    exp_id: int | None
    winner: str | None = None
    report: dict | None = None


@dataclass
class Details:
    """What the second worker reads: replay counts and chart-ready latencies."""

    exp_id: int
    runs_stored: int
    runs_planned: int
    latency: LatencySeries
    consistency: list[str]


def load_report(store, wanted: int | None, *, sequential: bool, price: float | None) -> Loaded:
    from workbench.experiments.analysis import experiment_statistics

    experiments = store.list_experiments()
    options = [(f"#{e.id} {e.name} · {e.status}", e.id) for e in experiments]
    ids = [e.id for e in experiments]
    exp_id = wanted if wanted in ids else (ids[-1] if ids else None)
    if exp_id is None:
        return Loaded(options, None)
    # build_report = experiment_statistics + replay_size; the replay counts come second
    # (replay_size reads every item, ~0.6 s at 100k runs) so the verdict is painted sooner.
    report = experiment_statistics(store, exp_id, sequential=sequential, price_per_1k_tokens=price)
    return Loaded(options, exp_id, store.get_experiment(exp_id).winner, report)


@dataclass
class Groups:
    """What the per-group worker reads: the breakdown of one experiment by one grouping."""

    exp_id: int
    grouping: str
    result: dict


GROUPINGS = ("all", "feature", "category")  # the cycle of the grouping key


def load_groups(store, exp_id: int, grouping: str, *, sequential: bool,
                price: float | None) -> Groups:
    from workbench.experiments.breakdown import breakdown

    return Groups(exp_id, grouping, breakdown(store, exp_id, grouping, sequential=sequential,
                                              price_per_1k_tokens=price))


def load_details(store, exp_id: int) -> Details:
    from workbench.experiments.analysis import item_outcomes
    from workbench.experiments.replay import replay_size

    from workbench.rating.consistency import consistency_for, consistency_lines

    stored, planned = replay_size(store, store.get_experiment(exp_id))
    return Details(exp_id, stored, planned, latency_series(item_outcomes(store, exp_id)),
                   consistency_lines(consistency_for(store, exp_id)))


class ResultsScreen(WorkbenchScreen):
    TITLE = "Results"
    AUTO_FOCUS = "#criteria-table"
    HELP = """
The report of an experiment, the same numbers as `workbench report`: the promotion verdict with
every criterion (value, interval, threshold, p-value and pass / fail / not enough data), the
per-variant table, the paired comparisons of B against A, the blind votes (win/tie/loss with
their interval), rater agreement (Krippendorff alpha and its gate) and position bias.

The banner says why each criterion that did not pass did not (the table's why column too).

p-values are fixed-horizon by default: valid only once the planned number of items is reached.
v (Anytime) switches to always-valid p-values everywhere on the screen (exact betting
sequences for ratings and votes, confidence sequences for pass/fail and latency), safe to read
while a replay or a rating session is still adding data; every p-value says which kind it is. $ (or k) sets the price per 1000 tokens of the cost column.
m writes the report as Markdown under reports/ in the workspace. w marks the experiment
completed with a winner. g switches between the tables and the charts.
f cycles the grouping: all items, then per feature (incident / audit / code), then per
category (items without one are "(none)"), the same as `workbench report --by`. Each group has
its own tables and an exploratory verdict with every criterion; the primary p-value is also
Holm-adjusted across the groups, and a group under 10 items says "too few items" instead.
"""
    # Footer labels are short so that every key, ? and q included, fits 80 columns.
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("v", "sequential", "Anytime"),
        Binding("g", "charts", "Charts"),
        Binding("f", "grouping", "Groups"),
        Binding("m", "markdown", "Markdown"),
        Binding("dollar_sign", "price", "Price", key_display="$"),
        Binding("k", "price", "Price", show=False),
        Binding("w", "complete", "Winner"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.exp_id: int | None = None
        self.report: dict | None = None
        self.winner: str | None = None
        self.sequential = False
        self.price: float | None = None
        self.loading_report = False  # a report job is running (ScreenResume can come twice)
        self.grouping = "all"  # GROUPINGS: what the per-group pane shows
        self.groups: Groups | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="results-bar"):
            yield Select([], id="results-experiment", compact=True, prompt="no experiment yet")
            yield Static("", id="results-summary")
        with VerticalScroll(id="results-body"):
            yield Static("", id="verdict-banner")
            yield DataTable(id="criteria-table", cursor_type="row", zebra_stripes=True)
            with TabbedContent(id="results-tabs"):
                with TabPane("Variants and comparisons", id="tab-numbers"):
                    with Horizontal(id="numbers-row"):
                        yield DataTable(id="arms-table", cursor_type="row", zebra_stripes=True)
                        with VerticalScroll(id="comparisons-scroll"):
                            yield Static("", id="comparisons")
                            yield Static("", id="rater-consistency")
                with TabPane("Charts", id="tab-charts"):
                    with Grid(id="results-charts"):
                        yield LatencyHistogram(id="chart-latency-hist")
                        yield LatencyOverRun(id="chart-latency-run")
                        yield WinTieLoss(id="chart-votes")
                        yield AccuracySafety(id="chart-quality")
                with TabPane("Per group", id="tab-groups"):
                    yield GroupsPanel(id="groups-panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#results-tabs", TabbedContent).hide_tab("tab-groups")

    def on_screen_resume(self) -> None:
        wanted, self.wb.results_request = self.wb.results_request, None
        if self.loading_report and wanted in (None, self.exp_id):
            return
        self.load(wanted if wanted is not None else self.exp_id, spinner=self.report is None
                  or (wanted is not None and wanted != self.exp_id))

    # -- loading -----------------------------------------------------------------------------
    def load(self, exp_id: int | None = None, *, spinner: bool = True) -> None:
        """Compute the report in a worker; ``spinner`` covers the body until it is painted."""
        sequential, price = self.sequential, self.price
        self.loading_report = True
        if spinner:
            self.query_one("#results-body").loading = True
        self.in_background(lambda store: load_report(store, exp_id, sequential=sequential,
                                                     price=price),
                           self.show_report, name="computing the report", group="report")

    def show_report(self, loaded: Loaded) -> None:
        self.loading_report = False
        self.query_one("#results-body").loading = False
        select = self.query_one("#results-experiment", Select)
        with self.prevent(Select.Changed):
            select.set_options(loaded.options)
            if loaded.exp_id is not None:
                select.value = loaded.exp_id
        self.exp_id, self.report, self.winner = loaded.exp_id, loaded.report, loaded.winner
        if loaded.report is None:
            self.show_empty()
            return
        report = loaded.report
        self.query_one("#results-summary", Static).update(summary_line(report, self.price,
                                                                       self.winner))
        self.query_one("#verdict-banner", Static).update(verdict_banner(report))
        criteria = self.query_one("#criteria-table", DataTable)
        criteria.clear(columns=True)
        criteria.add_columns(*criteria_columns(report))
        criteria.add_rows(criteria_rows(report))
        columns, rows = arm_columns_and_rows(report)
        arms = self.query_one("#arms-table", DataTable)
        arms.clear(columns=True)
        arms.add_columns(*columns)
        arms.add_rows(rows)
        self.query_one("#comparisons", Static).update(comparisons_text(report))
        preference = (report.get("comparisons", {}).get("B") or {}).get("preference")
        self.query_one(WinTieLoss).show(preference)
        self.query_one(AccuracySafety).show(report)
        exp_id = loaded.exp_id
        self.call_after_refresh(lambda: self.in_background(
            lambda store: load_details(store, exp_id), self.show_details,
            name="reading latencies for the charts", group="details"))
        if self.grouping != "all":
            self.call_after_refresh(self.load_groups)

    def load_groups(self) -> None:
        """Compute the per-group reports of the shown experiment in a worker."""
        exp_id, grouping = self.exp_id, self.grouping
        sequential, price = self.sequential, self.price
        self.groups = None
        self.query_one(GroupsPanel).show(None, grouping)
        if exp_id is None:
            return
        self.in_background(lambda store: load_groups(store, exp_id, grouping,
                                                     sequential=sequential, price=price),
                           self.show_groups, name=f"computing the results per {grouping}",
                           group="groups")

    def show_groups(self, groups: Groups) -> None:
        if groups.exp_id != self.exp_id or groups.grouping != self.grouping:
            return
        self.groups = groups
        self.query_one(GroupsPanel).show(groups.result, groups.grouping)

    def show_details(self, details: Details) -> None:
        if self.report is None or details.exp_id != self.exp_id:
            return
        self.report["experiment"].update(runs_stored=details.runs_stored,
                                         runs_planned=details.runs_planned)
        self.query_one("#results-summary", Static).update(summary_line(self.report, self.price,
                                                                       self.winner))
        self.query_one(LatencyHistogram).show(details.latency)
        self.query_one(LatencyOverRun).show(details.latency)
        consistency = self.query_one("#rater-consistency", Static)
        consistency.update(Text("\nRater consistency (each rater against the others)\n",
                                style="bold") + Text("\n".join(details.consistency))
                           if details.consistency else "")

    def show_empty(self) -> None:
        self.query_one("#results-summary", Static).update("")
        self.query_one("#verdict-banner", Static).update(
            "No experiment yet. Create one on the Experiments screen (key 3) and run its replay; "
            "its verdict, tables and charts appear here.")
        for table in self.query(DataTable):
            table.clear(columns=True)
        self.query_one("#comparisons", Static).update("")

    def worker_failed(self, worker, error) -> None:
        if worker.group == "report":
            self.loading_report = False
            self.query_one("#results-body").loading = False
        super().worker_failed(worker, error)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "results-experiment" and isinstance(event.value, int) \
                and event.value != self.exp_id:
            self.load(event.value)

    # -- actions -----------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self.load(self.exp_id, spinner=False)

    def action_sequential(self) -> None:
        self.sequential = not self.sequential
        self.notify("p-values: always-valid (safe to read while data still arrives)."
                    if self.sequential else "p-values: fixed-horizon (valid at the planned n).",
                    title="Results")
        self.load(self.exp_id, spinner=False)

    def action_grouping(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]
        tabs = self.query_one("#results-tabs", TabbedContent)
        if self.grouping == "all":
            self.groups = None
            tabs.active = "tab-numbers"
            tabs.hide_tab("tab-groups")
            self.notify("Results of all items.", title="Results")
            return
        tabs.show_tab("tab-groups")
        tabs.active = "tab-groups"
        self.call_after_refresh(tabs.scroll_visible, top=True)  # below the fold at 80x24
        self.notify(f"Results per {self.grouping} (exploratory beside the overall verdict).",
                    title="Results")
        self.load_groups()

    def action_charts(self) -> None:
        tabs = self.query_one("#results-tabs", TabbedContent)
        tabs.active = "tab-numbers" if tabs.active == "tab-charts" else "tab-charts"

    def action_price(self) -> None:
        def validate(values: dict) -> str | None:
            text = values["price"]
            try:
                return None if not text or float(text) >= 0 else "The price cannot be negative."
            except ValueError:
                return "Type a number such as 0.002, or leave it empty."

        def chosen(values: dict | None) -> None:
            if values is not None:
                self.price = float(values["price"]) if values["price"] else None
                self.load(self.exp_id, spinner=False)

        current = "" if self.price is None else f"{self.price:g}"
        self.app.push_screen(FormDialog("Price per 1000 tokens", [
            Field("price", "Price per 1000 tokens (prompt + completion)", current, "e.g. 0.002",
                  type="number")], ok="Set price", validate=validate,
            note="Fills the cost column. Leave empty for no cost."), chosen)

    def action_markdown(self) -> None:
        report, root = self.report, self.wb.workspace.root
        groups = self.groups.result if self.groups and self.groups.exp_id == self.exp_id else None
        if report is None:
            self.notify("No report to export yet.", severity="warning")
            return

        def write() -> Path:
            from workbench.experiments.breakdown import render_breakdown_markdown
            from workbench.experiments.report import render_markdown

            path = root / "reports" / f"experiment-{report['experiment']['id']}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            from workbench.private_files import open_private

            with open_private(path) as handle:
                handle.write(render_markdown(report))
                if groups is not None:  # the per-group pane is shown: its groups too
                    handle.write("\n" + render_breakdown_markdown(groups))
            return path

        worker = self.run_worker(write, name="writing the Markdown report", thread=True,
                                 exit_on_error=False, group="export")
        self._when_done[worker] = lambda path: self.notify(f"Report written to {path}",
                                                           title="Results", timeout=10)

    def action_complete(self) -> None:
        if self.report is None or self.exp_id is None:
            self.notify("No experiment to complete.", severity="warning")
            return
        if self.exp_id in self.wb.replays:
            self.notify("Its replay is running: pause it first (Experiments screen, p).",
                        severity="warning")
            return
        exp_id, verdict = self.exp_id, (self.report.get("verdict") or {})
        self.app.push_screen(WinnerDialog(exp_id, verdict.get("decision")),
                             lambda winner: self.complete(exp_id, winner))

    def complete(self, exp_id: int, winner: str | None) -> None:
        if winner is None:
            return
        chosen = None if winner == "none" else winner

        def job(store):
            from workbench.monitoring.promotion import complete_experiment

            return complete_experiment(store, exp_id, chosen)

        def done(baseline) -> None:
            extra = " Its runs are the winner's monitoring baseline." if baseline else ""
            self.notify(f"Experiment {exp_id} completed, winner: {chosen or 'none'}.{extra}",
                        title="Results")
            self.load(exp_id, spinner=False)

        self.in_background(job, done, name="completing the experiment", group="complete")
