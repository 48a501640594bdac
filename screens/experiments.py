"""Experiments screen: create an A/B experiment, run its replay live, read both answers."""

from __future__ import annotations

from contextlib import closing

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, Header, ProgressBar
from .widgets.safe import Select, Static, Text
from textual.worker import get_current_worker

from .base import WorkbenchScreen
from .dialogs import ConfirmDialog
from .experiment_form import FormChoices, NewExperimentForm
from .experiment_view import ExperimentView, LiveReplay, ScreenData, load_view, percent
from .format import describe_error, duration, milliseconds, shorten
from .replay_feed import Coalescer, ReplayEnded, ReplayTick, ReplayUpdate
from .widgets.latency_chart import COLORS, LatencyChart
from .widgets.run_table import ItemRow, RunTable
from .widgets.side_by_side import SideBySide

# Model workers started from the UI run at a lower CPU priority than the UI itself: with both
# workers busy on 2 cores, key->paint p99 was ~70 ms at nice 0 and ~35 ms at nice 5.
WORKER_NICENESS = 5


class ExperimentsScreen(WorkbenchScreen):
    TITLE = "Experiments"
    RELOAD_ON_SHOW = True
    HELP = """
An experiment replays a dataset through variant A (production) and variant B (candidate).
shadow: both answer every item. split: each user's items go to A or B by the weight of B,
sticky per user. canary: like split, and the listed users always get B.

While the replay runs, each row shows A's and B's status and latency and whether the severity
each found matches the reference (✓ match, ✗ mismatch, ? none stated); the chart plots every
run's latency; the panes below show the selected item's two answers, words that differ
highlighted. Move through the rows with the arrow keys. With three or more arms (shadow mode,
set C in the New experiment form) every arm has its column; x switches the right-hand pane
between the candidates B, C, ...

A canary (mode canary) is a staged rollout on the recorded traffic in time order: B's share
follows the stages (default 1 → 5 → 10 → 25 → 50 → 100 %), health checks every N requests roll
back when B's error rate, p95 latency or safety failures pass their limits, and B gets nothing
after a rollback. k shows its rollout: the stage reached, the rollback and its evidence, B's
share as a chart and every health check.

p pauses at once: answers in flight are dropped and rerun later. s resumes where it stopped.
c (cancel) also stops at once and keeps every stored run; the store has no 'cancelled' status,
so the experiment stays paused and can still be finished later with s. e reruns failed runs.
"""
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("s", "start", "Start/resume"),
        Binding("p", "pause", "Pause"),
        Binding("c", "cancel_replay", "Cancel"),
        Binding("e", "retry", "Retry failed"),
        Binding("o", "app.open_results", "Open results"),
        Binding("x", "next_arm", "Compare next arm", show=False),
        Binding("k", "canary", "Canary", show=False),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data = ScreenData()
        self.live: dict[int, LiveReplay] = {}
        self.compare_arm = "B"  # the arm shown beside A in the panes (x cycles with 3+ arms)

    @property
    def view(self) -> ExperimentView | None:
        return self.data.view

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="experiment-bar"):
            yield Select([], id="experiment-select", compact=True, prompt="no experiment yet")
            yield Static("", id="experiment-summary")
        with Horizontal(id="progress-row"):
            yield ProgressBar(id="replay-progress", show_eta=False, show_percentage=False)
            yield Static("", id="replay-status")
        with Horizontal(id="live-row"):
            yield RunTable(on_cursor_moved=self.show_item, id="run-table")
            yield LatencyChart(self.wb.settings.chart_interval_s, id="latency-chart")
        yield Static("", id="item-context")
        yield SideBySide(id="side-by-side")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    def on_unmount(self) -> None:
        for replay in list(self.wb.replays.values()):
            replay.cancel()

    # -- loading -----------------------------------------------------------------------------
    def action_reload(self, exp_id: int | None = None) -> None:
        wanted = exp_id if exp_id is not None else (self.view.exp.id if self.view else None)

        def load(store) -> ScreenData:
            experiments = store.list_experiments()
            target = wanted if wanted is not None else (experiments[-1].id if experiments else None)
            return ScreenData(experiments, load_view(store, target) if target is not None else None)

        self.in_background(load, self.show_data, name="loading experiments")

    def open_experiment(self, exp_id: int) -> None:
        self.in_background(lambda store: load_view(store, exp_id), self.show_view,
                           name="loading the experiment")

    def show_data(self, data: ScreenData) -> None:
        self.data.experiments = data.experiments
        select = self.query_one("#experiment-select", Select)
        with self.prevent(Select.Changed):
            select.set_options([(f"#{e.id} {e.name} · {e.status}", e.id) for e in data.experiments])
            if data.view is not None:
                select.value = data.view.exp.id
        self.show_view(data.view)

    def show_view(self, view: ExperimentView | None) -> None:
        table = self.query_one(RunTable)
        previous = self.data.view
        keep = table.selected_item() if previous and view and previous.exp.id == view.exp.id else None
        self.data.view = view
        chart = self.query_one(LatencyChart)
        if view is None:
            table.clear()
            chart.reset({})
            self.query_one("#experiment-summary", Static).update("Press n to create an experiment.")
            self.query_one("#item-context", Static).update(Text(
                "No experiment yet. Press n, pick a dataset (and how many of its items), variant A "
                "(production) and variant B (candidate), then Create and start. Each incident's two "
                "answers appear below as they arrive.", style="italic"), layout=False)
            self.query_one(SideBySide).clear("The selected item's two answers appear here.")
            self.show_progress()
            return
        exp, v = view.exp, view.variants
        summary = Text()
        summary.append(f"{exp.mode}", style="bold")
        summary.append(f" on {view.dataset} · ")
        for k, arm in enumerate(sorted(v)):
            summary.append(f"{arm} ", style=f"bold {COLORS.get(arm, 'white')}")
            summary.append(v[arm].name + (" · " if k < len(v) - 1 else ""))
        if exp.mode != "shadow":
            summary.append(f" · weight B {exp.weight_b:g}")
        self.query_one("#experiment-summary", Static).update(summary)
        table.load(list(view.rows.values()), tuple(sorted(v)))
        if self.compare_arm not in v:
            self.compare_arm = "B"
        if keep is not None and keep in view.rows:
            table.move_cursor(row=table.get_row_index(str(keep)), animate=False)
        chart.reset({arm: [r.runs[arm]["latency_ms"] for r in view.rows.values()
                           if arm in r.runs and not r.runs[arm].get("error")
                           and r.runs[arm].get("latency_ms") is not None] for arm in sorted(v)})
        self.show_progress()
        self.show_item()
        table.focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "experiment-select" and isinstance(event.value, int):
            if self.view is None or self.view.exp.id != event.value:
                self.open_experiment(event.value)

    # -- progress ----------------------------------------------------------------------------
    def show_progress(self) -> None:
        bar = self.query_one("#replay-progress", ProgressBar)
        status = self.query_one("#replay-status", Static)
        view = self.view
        self.query_one("#progress-row").display = view is not None
        if view is None:
            return
        live = self.live.get(view.exp.id)
        if live is not None:
            done, total = live.base + live.done, live.base + live.total
            bar.update(total=max(total, 1), progress=done)
            word = "stopping…" if live.stopping else "running" if live.total else "starting: loading models…"
            errors = f" · {live.errors} error(s)" if live.errors else ""
            status.update(Text(f"{percent(done, total)} {word} · {done}/{total} runs · "
                               f"ETA {duration(live.eta_s)}{errors}", style="bold"), layout=False)
            return
        bar.update(total=max(view.planned, 1), progress=view.stored)
        left = view.planned - view.stored
        hint = ("all runs stored" if not left and view.planned
                else f"{left} run(s) to go · s {'resumes' if view.stored else 'starts'}")
        status.update(f"{percent(view.stored, view.planned)} {view.exp.status} · "
                      f"{view.stored}/{view.planned} runs · {hint}", layout=False)

    def on_replay_update(self, message: ReplayUpdate) -> None:
        live = self.live.get(message.experiment_id)
        if live is None:
            return
        tick = message.latest
        live.done, live.total, live.eta_s, live.errors = tick.done, tick.total, tick.eta_s, tick.errors
        view = self.view
        if view is None or view.exp.id != message.experiment_id:
            return
        table, chart = self.query_one(RunTable), self.query_one(LatencyChart)
        selected = table.selected_item()
        for run in (t.run for t in message.ticks if t.run):
            row = view.rows.get(run["item_id"])
            if row is None:
                continue
            row.runs[run["arm"]] = run
            row.arms.add(run["arm"])
            table.show_row(row)
            if not run.get("error"):
                chart.add(run["arm"], run.get("latency_ms"))
            if row.item_id == selected:
                self.show_item()
        self.show_progress()

    def on_replay_ended(self, message: ReplayEnded) -> None:
        self.live.pop(message.experiment_id, None)
        if message.error:
            self.wb.report_error(f"Replay of experiment {message.experiment_id} failed", message.error)
        elif message.stopped:
            self.notify(f"Experiment {message.experiment_id} paused after {message.done} new run(s); "
                        "press s to resume.", title="Experiments")
        else:
            self.notify(f"Experiment {message.experiment_id}: replay finished "
                        f"({message.done} new run(s)).", title="Experiments")
        self.action_reload()

    def tell_rollback(self, exp_id: int, plan) -> None:
        from workbench.experiments.canary_text import rollback_line

        self.notify(f"Experiment {exp_id}: {rollback_line(plan)}. Press k for the rollout.",
                    title="Canary rolled back", severity="error", timeout=15)

    # -- selected item -----------------------------------------------------------------------
    def show_item(self) -> None:
        view = self.view
        item_id = self.query_one(RunTable).selected_item()
        row = view.rows.get(item_id) if view and item_id is not None else None
        context = self.query_one("#item-context", Static)
        if row is None:
            context.update("")
            self.query_one(SideBySide).clear()
            return
        ref = row.reference or {}
        text = Text(row.key, style="bold")
        text.append(f"  reference {ref.get('severity') or '-'}", style="bold")
        if ref.get("root_cause"):
            text.append(f": {shorten(ref['root_cause'], 90)}", style="dim")
        text.append("\n" + shorten(row.prompt, 400))
        context.update(text, layout=False)  # fixed height: no need to reflow the screen
        pair = ("A", self.compare_arm)
        titles = tuple(self.pane_title(arm, row) for arm in pair)
        self.query_one(SideBySide).show(titles, tuple(row.runs.get(arm) for arm in pair),
                                        tuple(arm in row.arms for arm in pair))

    def action_next_arm(self) -> None:
        """With 3+ arms: compare A with the next candidate in the panes below."""
        arms = sorted(self.view.variants) if self.view else []
        if len(arms) < 3:
            self.notify("This experiment has two arms: A and B are both shown.",
                        title="Experiments")
            return
        candidates = arms[1:]
        self.compare_arm = candidates[(candidates.index(self.compare_arm) + 1) % len(candidates)]
        self.show_item()

    def pane_title(self, arm: str, row: ItemRow) -> str:
        title = f"{arm} · {self.view.variants[arm].name}"
        run = row.runs.get(arm)
        if run and not run.get("error"):
            title += f" · {milliseconds(run.get('latency_ms'))} · {run.get('severity_pred') or 'no severity'}"
        return title

    # -- actions -----------------------------------------------------------------------------
    def action_canary(self) -> None:
        """The shown staged canary's rollout: stages, rollback evidence, B's share, checks."""
        from .canary_dialog import CanaryDialog, load_canary

        if self.view is None:
            self.notify("No experiment selected.", severity="warning")
            return
        exp_id = self.view.exp.id
        self.in_background(lambda store: load_canary(store, exp_id),
                           lambda loaded: self.app.push_screen(CanaryDialog(*loaded)),
                           name="reading the canary", group="canary")

    def action_new(self) -> None:
        def choices(store) -> FormChoices:
            return FormChoices(store.list_datasets(), store.list_variants(), store.list_models(),
                               store.list_endpoints())

        self.in_background(choices, lambda c: self.app.push_screen(NewExperimentForm(c), self.create),
                           name="reading datasets and variants", group="form")

    def create(self, spec: dict | None) -> None:
        if not spec:
            return
        start = spec.pop("start")

        def create(store) -> int:
            dataset_id, arms = spec.pop("dataset_id"), spec.pop("arms")
            return store.create_experiment(spec.pop("name"), dataset_id, arms, **spec).id

        self.in_background(create, lambda exp_id: self.created(exp_id, start),
                           name="creating the experiment", group="create")

    def created(self, exp_id: int, start: bool) -> None:
        self.notify(f"Experiment {exp_id} created." + ("" if start else " Press s to start it."),
                    title="Experiments")
        self.action_reload(exp_id)
        if start:
            self.begin_replay(exp_id, base=0)

    def action_start(self, retry: bool = False) -> None:
        view = self.view
        if view is None:
            self.notify("No experiment selected: press n to create one.", severity="warning")
            return
        running = next(iter(self.wb.replays), None) or next(iter(self.live), None)
        if running is not None:
            same = running == view.exp.id
            self.notify("This replay is already running." if same else
                        f"Experiment {running} is running; pause it first (p).", severity="warning")
            return
        if view.exp.status == "completed":
            self.notify("This experiment is completed; create a new one to replay again.",
                        severity="warning")
            return
        failed = sum(1 for row in view.rows.values() for run in row.runs.values() if run.get("error"))
        self.begin_replay(view.exp.id, base=view.stored - (failed if retry else 0), retry=retry)

    def action_retry(self) -> None:
        self.action_start(retry=True)

    def begin_replay(self, exp_id: int, *, base: int, retry: bool = False) -> None:
        self.live[exp_id] = LiveReplay(base=base)
        self.show_progress()
        self.run_replay(exp_id, retry)

    def action_pause(self, cancel: bool = False) -> None:
        exp_id = self.view.exp.id if self.view else None
        replay = self.wb.replays.get(exp_id)
        if replay is None:
            self.notify("No replay is running on this experiment.", severity="warning")
            return
        replay.cancel()
        if exp_id in self.live:
            self.live[exp_id].stopping = True
        self.show_progress()

    def action_cancel_replay(self) -> None:
        if self.view is None or self.view.exp.id not in self.wb.replays:
            self.notify("No replay is running on this experiment.", severity="warning")
            return
        self.app.push_screen(ConfirmDialog(
            "Cancel the replay?",
            "The replay stops now. Every run already stored is kept and the experiment stays "
            "paused, so it can still be finished later with s.", yes="Stop the replay", no="Keep running"),
            lambda yes: self.action_pause() if yes else None)

    # -- the replay worker -------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="replay", name="replay")
    def run_replay(self, exp_id: int, retry: bool = False) -> None:
        """Run ``experiments.replay.Replay`` in this thread; post coalesced progress to the screen."""
        from workbench.experiments.replay import Replay

        worker = get_current_worker()
        feed = Coalescer(lambda ticks: self.post_message(ReplayUpdate(exp_id, ticks)),
                         self.wb.settings.progress_interval_s)
        progress, error = None, None
        try:
            replay = Replay(self.wb.db_path, exp_id, log_dir=self.wb.log_dir, retry_errors=retry,
                            backend_factory=self.wb.settings.backend_factory,
                            niceness=WORKER_NICENESS)
            self.wb.replays[exp_id] = replay
            told_rollback = False
            with closing(replay.run()) as steps:  # closing: workers end even if this loop fails
                for progress in steps:
                    if worker.is_cancelled:
                        replay.cancel()
                    plan = progress.canary
                    if plan is not None and plan.rollback and not told_rollback:
                        told_rollback = True
                        self.app.call_from_thread(self.tell_rollback, exp_id, plan)
                    feed.push(ReplayTick(progress.done, progress.total, progress.eta_s,
                                         progress.errors, progress.fallbacks, progress.last))
            if progress is not None and progress.stopped_reason:
                error = (f"{progress.stopped_reason}\n{progress.done} new run(s) were stored; "
                         "press s to resume.")
        except Exception as exc:  # reported to the operator; the app keeps running
            error = describe_error(exc)
        finally:
            feed.close()
            self.wb.replays.pop(exp_id, None)
            self.post_message(ReplayEnded(
                exp_id, finished=bool(progress and progress.finished),
                stopped=bool(progress and progress.cancelled), error=error,
                done=progress.done if progress else 0))
