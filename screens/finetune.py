"""Fine-tune screen: training data, LoRA jobs with a live loss chart and log, export, A/B it.

Jobs are subprocesses that write their own status and metrics to the store (they outlive the
app); the screen reads the store and the job's log file about once a second in a thread worker.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Log, ProgressBar
from .widgets.safe import DataTable, Static, Text, plain

from workbench.terminal_text import safe_text

from .base import WorkbenchScreen
from .dialogs import ConfirmDialog, MessageDialog
from .finetune_export import ExportActions
from .finetune_forms import BuildDataForm, Choices, NewJobForm
from .finetune_view import (ACTIVE, BuiltData, JobFeed, JobRow, Overview, build_data, built_report,
                            continuation, job_info, stats_line, table_cells)
from .format import describe_error

COLUMNS = ("id", "name", "base", "engine", "status", "step", "last loss", "created")
IDLE_EVERY = 5  # with no job running, read the store every 5th tick (jobs started by the CLI)


class FinetuneScreen(ExportActions, WorkbenchScreen):
    TITLE = "Fine-tune"
    POLL_INTERVAL_S = 1.0
    HELP = """
LoRA fine-tunes of a local model on your own incidents, from training data to an A/B.

d builds training data from a dataset: the best answer per incident (expert reference, or a
replayed answer graded by ratings and automatic scores), filtered by quality and category,
optionally balanced across categories, split into train and validation with a seed, written
as OpenAI or Anthropic JSONL under jobs/data/. Incidents with secrets are flagged and redacted.

n starts a job: a registered GGUF or a Hugging Face folder as the base, the last built files,
LoRA settings. The job is its own process (it keeps training when the workbench closes); its
loss, validation loss, learning rate and tokens/s appear as they are stored, with its log.

c cancels the selected job (it saves a checkpoint); r resumes a cancelled or failed job from its
last checkpoint (or starts a queued one). e exports a completed job: merged F16 GGUF, adapter
GGUF, a quantized GGUF, parity checks, all registered. a creates a shadow A/B: a production
variant vs the exported model, on a dataset you choose.
"""
    BINDINGS = [
        Binding("d", "build_data", "Build data"),
        Binding("n", "new_job", "New job"),
        Binding("c", "cancel_job", "Cancel"),
        Binding("r", "resume_job", "Resume"),
        Binding("e", "export", "Export"),
        Binding("a", "ab", "A/B it"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.feed = JobFeed()
        self.rows: dict[int, JobRow] = {}
        self.cells: dict[int, tuple] = {}  # the table's cells as last drawn
        self.overview: Overview | None = None
        self.processes: dict[int, subprocess.Popen] = {}  # jobs this app launched, reaped in polls
        self.stopping: set[int] = set()  # cancel asked, the job has not ended yet
        self.exporting: int | None = None
        self.last_build: BuiltData | None = None
        self.last_build_spec: dict | None = None
        self.new_build = False  # a build the new-job form has not offered yet
        self.job_values: dict | None = None  # the new-job form as last submitted
        self.want_selected: int | None = None  # put the cursor here once the table shows it
        self._polling = False
        self._again = False
        self._ticks = 0
        self._last_poll_error: str | None = None
        self._log: tuple[int | None, list[str]] = (None, [])  # the job and log tail shown

    def compose(self) -> ComposeResult:
        yield Header()
        table = DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        for column in COLUMNS:
            table.add_column(column, key=column)
        yield table
        with Horizontal(id="export-row"):
            yield ProgressBar(id="export-progress", total=100, show_eta=False)
            yield Static("", id="export-status")
        with Horizontal(id="ft-lower"):
            with Vertical(id="ft-left"):
                from .widgets.loss_chart import LossChart

                yield LossChart(id="loss-chart")
                yield Static("", id="ft-stats")
            with Vertical(id="ft-right"):
                with VerticalScroll(id="job-info", classes="panel"):
                    yield Static("Reading fine-tune jobs…", id="job-info-text")
                yield Log(id="job-log", max_lines=400, classes="panel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#export-row").display = False
        self.query_one("#job-log", Log).border_title = "log"
        self.poll(force=True)
        self.set_interval(self.POLL_INTERVAL_S, self.poll)

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.poll(force=True)  # back on this screen: show what changed meanwhile

    # -- reading the jobs --------------------------------------------------------------------
    def selected_id(self) -> int | None:
        table = self.query_one("#jobs-table", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def poll(self, force: bool = False) -> None:
        """Read the jobs, the selected job's metrics and log tail (in a worker, one at a time)."""
        self._ticks += 1
        for job_id, process in list(self.processes.items()):
            if process.poll() is not None:  # reaped (non-blocking): no zombie is left behind
                self.processes.pop(job_id, None)
        busy = self.exporting is not None or any(r.job["status"] in ACTIVE
                                                 for r in self.rows.values())
        if not (force or self.is_current and (busy or self._ticks % IDLE_EVERY == 0)):
            return
        if self._polling:
            self._again = self._again or force
            return
        self._polling, self._again = True, False
        selected, exporting = self.want_selected or self.selected_id(), self.exporting

        def read(store) -> Overview:
            return self.feed.read(store, selected, exporting)

        self.in_background(read, self.show_overview, name="reading fine-tune jobs", group="poll",
                           exclusive=False)

    def show_overview(self, overview: Overview) -> None:
        self._polling = False
        self._last_poll_error = None
        self.overview = overview
        table = self.query_one("#jobs-table", DataTable)
        current = self.selected_id()
        rows = {row.job["id"]: row for row in overview.jobs}
        self.stopping = {j for j in self.stopping
                         if j in rows and rows[j].job["status"] == "running"}
        cells = {job_id: table_cells(row, self.status(row.job)) for job_id, row in rows.items()}
        if list(rows) != list(self.rows):
            table.clear()
            for job_id in rows:
                table.add_row(*cells[job_id], key=str(job_id))
            if current in rows:
                table.move_cursor(row=table.get_row_index(str(current)), animate=False)
            self.call_after_refresh(table.refresh)  # repaint the header at the new widths
        else:
            for job_id in rows:
                for column, before, after in zip(COLUMNS, self.cells[job_id], cells[job_id]):
                    if str(before) != str(after):
                        table.update_cell(str(job_id), column, after, update_width=True)
        self.rows, self.cells = rows, cells
        if self.want_selected in rows:
            table.move_cursor(row=table.get_row_index(str(self.want_selected)), animate=False)
            self.want_selected = None
        self.show_export_progress(overview.export_step)
        shown = overview.detail.job["id"] if overview.detail else None
        if self._again or self.selected_id() != shown:
            self.poll(force=True)  # the cursor moved while reading: read the new selection
        if self.selected_id() == shown:
            self.show_detail()

    def status(self, job: dict) -> str:
        return "stopping…" if job["id"] in self.stopping and job["status"] == "running" \
            else job["status"]

    def show_detail(self) -> None:
        detail = self.overview.detail if self.overview else None
        info = self.query_one("#job-info-text", Static)
        log = self.query_one("#job-log", Log)
        chart = self.query_one("#loss-chart")
        if detail is None:
            chart.show([], "")
            self.query_one("#ft-stats", Static).update("")
            info.update(Text("No fine-tune job yet. Press d to build training data from a "
                             "dataset, then n to start a LoRA job on it.", style="italic"))
            log.clear()
            self._log = (None, [])
            return
        job = detail.job
        row = self.rows.get(job["id"])
        chart.show(detail.metrics, f"job {job['id']}")
        self.query_one("#ft-stats", Static).update(stats_line(detail.metrics,
                                                              row.total if row else None))
        info.update(job_info(detail, self.status(job), self.wb.workspace.root))
        shown_job, shown = self._log
        more = continuation(shown, detail.log) if shown_job == job["id"] else None
        if more is None:
            log.clear()
            log.write_lines([safe_text(line) for line in detail.log])
            self.call_after_refresh(log.scroll_end, animate=False)
        elif more:  # appended: a reader who scrolled up keeps their place
            follow = log.max_scroll_y - log.scroll_y <= 3  # (a layout change moves the end)
            log.write_lines([safe_text(line) for line in more])
            if follow:
                self.call_after_refresh(log.scroll_end, animate=False)
        self._log = (job["id"], detail.log)
        log.border_title = plain(f"log · {Path(job['log_path']).name if job['log_path'] else '-'}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        detail = self.overview.detail if self.overview else None
        if detail is None or detail.job["id"] != self.selected_id():
            self.poll(force=True)

    def worker_failed(self, worker, error) -> None:
        if worker.group == "poll":
            self._polling = False
            message = describe_error(error) if error else "unknown error"
            if message != self._last_poll_error:  # once, not every second
                self._last_poll_error = message
                super().worker_failed(worker, error)
            return
        if worker.group == "export":
            self.exporting = None
            self.show_export_progress(None)
        super().worker_failed(worker, error)

    # -- training data -----------------------------------------------------------------------
    def action_build_data(self) -> None:
        initial = self.last_build_spec
        self.in_background(lambda store: Choices.read(store, categories=True),
                           lambda c: self.app.push_screen(BuildDataForm(c, initial), self.build),
                           name="reading datasets", group="form")

    def build(self, spec: dict | None) -> None:
        if not spec:
            return
        self.last_build_spec = spec
        jobs_dir = self.wb.workspace.jobs_dir
        self.in_background(lambda store: build_data(store, jobs_dir, spec), self.built,
                           name="building training data", group="build")

    def built(self, built: BuiltData) -> None:
        self.last_build, self.new_build = built, True
        warn = f"; {len(built.flagged)} with secrets redacted" if built.flagged else ""
        self.notify(f"{built.n_train} train / {built.n_validation} validation examples{warn}.",
                    title="Training data")
        self.app.push_screen(MessageDialog(f"Training data from {built.dataset}",
                                           built_report(built, self.wb.workspace.root)))

    # -- new job, cancel, resume -------------------------------------------------------------
    def action_new_job(self) -> None:
        jobs_dir = self.wb.workspace.jobs_dir

        def read(store) -> Choices:
            return Choices.read(store, jobs_dir=jobs_dir)

        self.in_background(read, lambda c: self.app.push_screen(
            NewJobForm(c, self.new_job_values(c)), self.start_job),
            name="reading models", group="form")

    def new_job_values(self, choices: Choices) -> dict:
        """The new-job form's values: as last submitted (else defaults), with a newer build."""
        if self.job_values is not None:
            values = dict(self.job_values)
        else:
            from workbench.finetune.settings import LoraSettings
            from workbench.models.registry import BUNDLED_ID

            values = {**LoraSettings().to_dict(), "model": BUNDLED_ID}
        built = self.last_build
        if built is not None and (self.new_build or self.job_values is None):
            values.update(train=str(built.train), dataset_id=built.dataset_id,
                          val=str(built.validation) if built.n_validation else "")
        elif built is None and self.job_values is None and choices.latest_data:
            values.update(choices.latest_data)  # a build of an earlier session
        return values

    def start_job(self, spec: dict | None) -> None:
        if not spec:
            return
        self.job_values, self.new_build = spec["values"], False
        workspace = self.wb.workspace

        def create(store) -> int:
            from workbench.finetune import jobs

            job_id = jobs.create_job(store, workspace, base=spec["base"], train_file=spec["train"],
                                     val_file=spec["val"], settings=spec["settings"],
                                     name=spec["name"], dataset_id=spec["dataset_id"])
            self.processes[job_id] = jobs.launch(store, job_id)
            return job_id

        self.in_background(create, self.job_started, name="starting the job", group="start")

    def job_started(self, job_id: int) -> None:
        self.notify(f"Job {job_id} started; its loss appears as it trains.", title="Fine-tune")
        self.want_selected = job_id
        self.poll(force=True)

    def selected_row(self, verb: str) -> JobRow | None:
        row = self.rows.get(self.selected_id() or -1)
        if row is None:
            self.notify(f"No job to {verb}: press n to start one.", severity="warning")
        return row

    def action_cancel_job(self) -> None:
        row = self.selected_row("cancel")
        if row is None:
            return
        job = row.job
        if job["status"] not in ACTIVE:
            self.notify(f"Job {job['id']} is {job['status']}; only a queued or running job can "
                        "be cancelled.", severity="warning")
            return
        self.app.push_screen(ConfirmDialog(
            f"Cancel job {job['id']}?",
            f"{job['name']} stops after its current step and saves a checkpoint; r resumes it "
            "from there.", yes="Cancel the job", no="Keep training"),
            lambda yes: self.cancel_job(job["id"]) if yes else None)

    def cancel_job(self, job_id: int) -> None:
        from workbench.finetune import jobs

        self.stopping.add(job_id)
        self.redraw_status(job_id)
        self.in_background(lambda store: jobs.cancel(store, job_id), self.cancelled,
                           name="cancelling the job", group="cancel")

    def redraw_status(self, job_id: int) -> None:
        row = self.rows.get(job_id)
        if row is not None:
            cells = table_cells(row, self.status(row.job))
            self.query_one("#jobs-table", DataTable).update_cell(
                str(job_id), "status", cells[COLUMNS.index("status")], update_width=True)
            self.cells[job_id] = cells

    def cancelled(self, job: dict) -> None:
        word = "cancelled" if job["status"] == "cancelled" else "stopping: saving a checkpoint"
        self.notify(f"Job {job['id']} {word}.", title="Fine-tune")
        self.poll(force=True)

    def action_resume_job(self) -> None:
        row = self.selected_row("resume")
        if row is None:
            return
        job = row.job
        if job["status"] in ("running", "completed"):
            hint = "e exports it" if job["status"] == "completed" else "c cancels it"
            self.notify(f"Job {job['id']} is {job['status']}; {hint}.", severity="warning")
            return
        resume = job["status"] != "queued"

        def start(store) -> int:
            from workbench.finetune import jobs

            self.processes[job["id"]] = jobs.launch(store, job["id"], resume=resume)
            return job["id"]

        self.in_background(start, lambda job_id: self.resumed(job_id, resume),
                           name="resuming the job", group="start")

    def resumed(self, job_id: int, resume: bool) -> None:
        self.notify(f"Job {job_id} {'resumed from its last checkpoint' if resume else 'started'}.",
                    title="Fine-tune")
        self.poll(force=True)
