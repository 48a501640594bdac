"""The workbench app: screens as modes, number keys and the command palette, errors as notices.

``create_app`` builds the app with its workspace and settings injected (tests use it too);
``run_app`` is what the ``workbench`` command calls. The workspace is opened in a thread worker
after the first paint, and every worker opens its own ``Store`` on the workspace database.
"""

from __future__ import annotations

import gc
import importlib
import threading
import traceback
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from workbench.terminal_text import safe_text

from .format import describe_error
from .registry import SCREENS

if TYPE_CHECKING:
    from workbench.config import Workspace
    from workbench.store import Store

WORKSPACE_TIMEOUT_S = 120.0
PREWARM_AFTER_S = 2.0
START_ALERTS_AFTER_S = 0.5  # the unacknowledged-alerts notice waits for the first paint
LAST_START_FILE = "ui-last-start"  # under logs/: when the app last started (ISO, UTC)


@dataclass
class AppSettings:
    """What tests and the bench may change; the defaults are what the operator gets."""

    start_screen: str = "experiments"
    seed_workspace: bool = True  # register the bundled model, starter variants, sample datasets
    backend_factory: Callable | None = None  # replay backends (None: one model worker per arm)
    progress_interval_s: float = 0.1  # at most ~10 replay updates a second reach the UI
    chart_interval_s: float = 0.5  # the latency chart redraws at most twice a second
    benchmark_runs: int = 3
    benchmark_max_tokens: int = 64
    calm_gc: bool = False  # process-wide GC tuning: run_app turns it on, tests leave it off
    rate: tuple[int, str] | None = None  # (experiment id, rater): open the Rate screen on it


def calm_garbage_collector() -> None:
    """Keep full garbage collections off the key->paint path.

    A full collection walks every object of the app (100-300 ms on a busy 2-core machine, seen
    as key->paint spikes during a replay). Freezing what exists after the first paint takes
    those long-lived objects out of every later collection, and full collections become rarer.
    """
    gc.freeze()
    gc.set_threshold(700, 10, 100)


class WorkspaceUnavailable(RuntimeError):
    """The workspace could not be opened; every screen shows why."""


class WorkbenchApp(App[int]):
    """Models, Datasets and Experiments screens over one workspace."""

    TITLE = "LLM Workbench"
    CSS_PATH = "app.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        # The header lists the screens and their keys, so the footer keeps room for the screen's own.
        *(Binding(entry.key, f"show_screen('{entry.mode}')", entry.title, show=False)
          for entry in SCREENS),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: "Workspace", settings: AppSettings):
        super().__init__()
        self.workspace = workspace
        self.settings = settings
        self.sub_title = str(workspace.root)
        self.workspace_ready = threading.Event()
        self.workspace_error: str | None = None
        self.errors: list[str] = []  # unexpected exceptions caught by the safety net
        self.loaded_models: dict = {}  # model id -> ModelWorker started on the Models screen
        self.replays: dict[int, Any] = {}  # experiment id -> running Replay
        self.exports: list[Any] = []  # export subprocesses started from the UI (stopped on quit)
        self.results_request: int | None = None  # experiment the Results screen should show
        self._ui_thread: int | None = None
        for entry in SCREENS:
            self.add_mode(entry.mode, entry.factory())

    def notify(self, message: str, *, title: str = "", severity="information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Notifications show their text literally (they often quote names and errors)."""
        super().notify(safe_text(message, multiline=True), title=safe_text(title),
                       severity=severity, timeout=timeout, markup=False)

    # -- workspace and database ------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.workspace.db_path

    @property
    def log_dir(self) -> Path:
        return self.workspace.root / "logs"

    def open_store(self) -> "Store":
        """A Store for the calling worker thread, once the workspace is open. Never on the UI thread."""
        if threading.get_ident() == self._ui_thread:
            raise RuntimeError("database work must run in a worker thread, not the UI thread")
        if not self.workspace_ready.wait(WORKSPACE_TIMEOUT_S):
            raise WorkspaceUnavailable("the workspace is still opening; try again")
        if self.workspace_error:
            raise WorkspaceUnavailable(self.workspace_error)
        from workbench.store import Store

        return Store(self.db_path)

    def on_mount(self) -> None:
        self._ui_thread = threading.get_ident()
        self.run_worker(self._open_workspace, name="opening the workspace", thread=True,
                        exit_on_error=False, group="workspace")
        self.switch_mode(self.settings.start_screen)
        if self.settings.calm_gc:
            self.call_after_refresh(calm_garbage_collector)
        self.set_timer(PREWARM_AFTER_S, self._prewarm_statistics)
        started = datetime.now(timezone.utc)
        self.set_timer(START_ALERTS_AFTER_S, lambda: self.run_worker(
            partial(self._alerts_since_last_start, started), name="reading open alerts",
            thread=True, exit_on_error=False, group="start-alerts"))

    def _alerts_since_last_start(self, started: datetime) -> tuple[str, str] | None:
        """The grouped notice of critical and warning alerts nobody acknowledged that were
        raised since the app last started; this start is recorded for the next one."""
        from workbench.monitoring.alerts import unacknowledged_alerts
        from workbench.monitoring.monitor import iso

        from .monitor_view import startup_notice

        marker = self.log_dir / LAST_START_FILE
        try:
            since = marker.read_text(encoding="utf-8").strip() or None
        except OSError:
            since = None  # first start (or unreadable): every open alert counts
        with self.open_store() as store:
            alerts = unacknowledged_alerts(store, since=since, severities=("critical", "warning"))
        try:
            from workbench.private_files import open_private

            self.log_dir.mkdir(parents=True, exist_ok=True)
            with open_private(marker, "w") as handle:
                handle.write(iso(started) + "\n")
        except OSError:
            pass  # a read-only workspace: the next start lists them again
        key = next((e.key for e in SCREENS if e.mode == "monitor"), "?")
        return startup_notice(alerts, key)

    def _prewarm_statistics(self) -> None:
        """Import the statistics stack (scipy: ~1 s) in a thread once the app has settled, so
        the first Results screen opens in well under a second."""
        def prewarm() -> None:
            importlib.import_module("workbench.experiments.report")
            if self.settings.calm_gc:
                gc.freeze()

        self.run_worker(prewarm, name="preparing statistics", thread=True, exit_on_error=False,
                        group="prewarm")

    def _open_workspace(self) -> list[str]:
        try:
            from workbench.workspace import open_workspace

            opened = open_workspace(self.workspace.root, seed=self.settings.seed_workspace)
            opened.close()
            return opened.problems
        except Exception as exc:
            self.workspace_error = f"cannot open workspace {self.workspace.root}: {describe_error(exc)}"
            raise
        finally:
            self.workspace_ready.set()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "start-alerts":
            if event.state == WorkerState.SUCCESS and event.worker.result:
                message, severity = event.worker.result
                self.notify(message, title="Monitoring alerts", severity=severity, timeout=15)
            return  # a workspace that failed to open is reported once, below
        if event.worker.group != "workspace":
            return
        if event.state == WorkerState.SUCCESS:
            if self.settings.calm_gc:
                gc.freeze()  # the workspace's first data is long-lived too
            for problem in event.worker.result or []:
                self.notify(problem, title="Workspace", severity="warning", timeout=8)
        elif event.state == WorkerState.ERROR:
            self.notify(self.workspace_error or describe_error(event.worker.error),
                        title="Workspace", severity="error", timeout=15)

    # -- navigation --------------------------------------------------------------------------
    def action_show_screen(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_open_results(self) -> None:
        """The Results screen on the experiment the current screen shows (if it shows one)."""
        view = getattr(self.screen, "view", None)
        self.results_request = getattr(getattr(view, "exp", None), "id", None)
        self.switch_mode("results")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        in_dialog = isinstance(self.screen, ModalScreen)
        if action in ("show_screen", "help", "open_results") and in_dialog:
            return False  # keys typed in a dialog stay in the dialog
        return True

    def action_help(self) -> None:
        from .help import HelpScreen

        self.push_screen(HelpScreen.for_screen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for entry in SCREENS:
            yield SystemCommand(f"{entry.title} screen", f"Go to {entry.title} (key {entry.key})",
                                partial(self.switch_mode, entry.mode))
        yield SystemCommand("Help", "Every key of the current screen (key ?)", self.action_help)
        yield from super().get_system_commands(screen)

    # -- errors and shutdown ---------------------------------------------------------------
    def report_error(self, title: str, error: BaseException | str) -> None:
        """Show a failure as a notification; the app keeps running."""
        message = error if isinstance(error, str) else describe_error(error)
        self.notify(message, title=title, severity="error", timeout=12)

    def _handle_exception(self, error: Exception) -> None:
        """Safety net: an unexpected exception becomes a notification, not a dead app."""
        if not self.is_running or self._exit_renderables:
            return super()._handle_exception(error)
        text = "".join(traceback.format_exception(error))
        self.errors.append(text)
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            from workbench.private_files import open_private

            with open_private(self.log_dir / "ui-errors.log", "a") as handle:
                handle.write(text + "\n")
        except OSError:
            pass
        self.report_error("Unexpected error (details in logs/ui-errors.log)", error)

    async def action_quit(self) -> None:
        self.stop_background_work()
        self.exit(0)

    def stop_background_work(self) -> None:
        """Pause running replays (their stored runs stay); end the model workers and managed
        llama-servers this UI started."""
        from workbench.engines.llama_server import stop_all_servers

        for replay in list(self.replays.values()):
            replay.cancel()
        stop_all_servers()
        for worker in list(self.loaded_models.values()):
            worker.kill()
        self.loaded_models.clear()
        for process in self.exports:
            if process.poll() is None:
                process.terminate()  # an export can be rerun; stored results stay


def start_process_helpers() -> None:
    """Start multiprocessing's resource tracker while sys.stderr is still a real file.

    Textual replaces sys.stderr with an object whose fileno() is -1; a model worker spawned
    later would then fail with "bad value(s) in fds_to_keep" when it starts the tracker.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


def create_app(workspace: "str | Path | Workspace | None" = None, **overrides: Any) -> WorkbenchApp:
    """Build the app on a workspace (default: $WORKBENCH_HOME or the current directory)."""
    from workbench.config import Workspace, resolve_workspace

    start_process_helpers()

    if not isinstance(workspace, Workspace):
        workspace = resolve_workspace(workspace)
    known = {f.name for f in fields(AppSettings)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown app setting(s): {', '.join(sorted(unknown))}")
    return WorkbenchApp(workspace, AppSettings(**overrides))


def run_app(workspace: str | None = None, rate: tuple[int, str] | None = None) -> int:
    """Run the terminal UI until the operator quits; return the exit status.

    ``rate=(experiment id, rater)`` opens straight on that rater's blind rating session.
    """
    start = {"start_screen": "rate", "rate": rate} if rate else {}
    app = create_app(workspace, calm_gc=True, **start)
    try:
        result = app.run()  # asyncio.run waits for worker threads: a paused replay records its status
    finally:
        app.stop_background_work()
    return result if isinstance(result, int) else (app.return_code or 0)
