"""The base of every workbench screen: background jobs on their own Store, errors as notices."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

from textual import events
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from workbench.store import Store

    from .app import WorkbenchApp


NARROW = 110  # columns below which footers drop the padding between keys


class WorkbenchScreen(Screen):
    """A screen that reads and writes the workspace only from thread workers."""

    HELP: ClassVar[str] = ""  # what the screen is for, shown above its keys by `?`
    # Reload (``action_reload``) whenever the screen is shown again, so it lists what other
    # screens and the CLI changed meanwhile.
    RELOAD_ON_SHOW: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self._when_done: dict[Worker, Callable[[Any], None] | None] = {}

    def on_mount(self) -> None:
        """Every screen's header names all screens and their keys, this one in brackets.

        (Textual calls the ``on_mount`` of every class in the MRO, so subclasses keep theirs.)
        """
        from .registry import SCREENS

        self.title = "  ".join(f"[{e.key} {e.title}]" if e.title == self.TITLE else f"{e.key} {e.title}"
                               for e in SCREENS)
        for footer in self.query(Footer):
            # The footer's room is for the screen's keys (ctrl+p still opens the palette).
            footer.show_command_palette = False
            footer.compact = self.size.width < NARROW

    def on_screen_resume(self) -> None:
        # Textual may resume a screen twice, and just after mounting it: a load already on its
        # way is the fresh one.
        if self.RELOAD_ON_SHOW and self.is_mounted and not any(
                w.group == "load" and not w.is_finished for w in self.workers):
            self.action_reload()

    def on_resize(self, event: events.Resize) -> None:
        for footer in self.query(Footer):
            footer.compact = event.size.width < NARROW

    @property
    def wb(self) -> "WorkbenchApp":
        return self.app  # type: ignore[return-value]

    def in_background(self, job: Callable[["Store"], Any], done: Callable[[Any], None] | None = None,
                      *, name: str, group: str = "load", exclusive: bool = True) -> Worker:
        """Run ``job(store)`` in a thread with its own Store; call ``done(result)`` on the UI thread.

        ``name`` says what the job does ("importing data.jsonl"); a failure is shown as
        "<name> failed: <reason>".
        """
        def task() -> Any:
            with self.wb.open_store() as store:
                return job(store)

        worker = self.run_worker(task, name=name, group=group, exclusive=exclusive, thread=True,
                                 exit_on_error=False)
        for stale in [w for w in self._when_done if w.is_cancelled]:
            del self._when_done[stale]  # one cancelled before it ran never reports back
        self._when_done[worker] = done
        return worker

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.SUCCESS:
            done = self._when_done.pop(worker, None)
            if done is not None:
                done(worker.result)
        elif event.state == WorkerState.ERROR:
            self._when_done.pop(worker, None)
            self.worker_failed(worker, worker.error)
        elif event.state == WorkerState.CANCELLED:
            self._when_done.pop(worker, None)

    def worker_failed(self, worker: Worker, error: BaseException | None) -> None:
        """Show a failed job; screens override to also reset their own state."""
        self.wb.report_error(f"{(worker.name or 'job').capitalize()} failed", error or "unknown error")
