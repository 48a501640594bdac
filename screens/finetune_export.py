"""The Fine-tune screen's export (GGUF, quantize, parity) and A/B actions, as a mixin."""

from __future__ import annotations

from textual.widgets import ProgressBar
from .widgets.safe import Static

from .dialogs import ConfirmDialog, MessageDialog
from .finetune_forms import ABForm, Choices, ExportForm
from .finetune_view import export_report


class ExportActions:
    """Keys e and a of ``FinetuneScreen`` (which provides rows, selected_row, poll, ...)."""

    def action_export(self) -> None:
        row = self.selected_row("export")
        if row is None:
            return
        if self.exporting is not None:
            self.notify(f"Job {self.exporting} is exporting; wait for it to finish.",
                        severity="warning")
            return
        if row.job["status"] != "completed":
            self.notify(f"Job {row.job['id']} is {row.job['status']}; only a completed job can "
                        "be exported.", severity="warning")
            return
        self.app.push_screen(ExportForm(row.job), self.export)

    def export(self, spec: dict | None) -> None:
        if not spec:
            return
        job_id, qtype = spec["job_id"], spec["quantize_type"]
        self.exporting = job_id
        self.show_export_progress(("starting", 0.0))

        def run(store) -> dict:
            from workbench.finetune.export_job import run_export

            return run_export(store, job_id, quantize_type=qtype, on_start=self.app.exports.append)

        self.in_background(run, lambda summary: self.exported(job_id, summary),
                           name=f"exporting job {job_id}", group="export")

    def show_export_progress(self, step: tuple[str, float] | None) -> None:
        row = self.query_one("#export-row")
        row.display = self.exporting is not None
        if self.exporting is None:
            return
        name, fraction = step or ("starting", 0.0)
        self.query_one("#export-progress", ProgressBar).update(progress=round(fraction * 100))
        self.query_one("#export-status", Static).update(
            f"exporting job {self.exporting}: {name.replace('_', ' ')}… "
            "(merge, GGUF, quantize, parity; the log shows each step)")

    def exported(self, job_id: int, summary: dict) -> None:
        self.exporting = None
        self.show_export_progress(None)
        passed = summary.get("parity_passed")
        self.notify(f"Job {job_id} exported: {', '.join(summary.get('models') or [])}; parity "
                    f"{'passed' if passed else 'FAILED'}.", title="Export",
                    severity="information" if passed else "warning")
        self.app.push_screen(MessageDialog(f"Export of job {job_id}", export_report(summary),
                                           error=not passed))
        self.poll(force=True)

    def action_ab(self) -> None:
        row = self.rows.get(self.selected_id() or -1)
        job_id = row.job["id"] if row else None
        dataset_id = row.job["dataset_id"] if row else None
        self.in_background(lambda store: Choices.read(store, job_id=job_id),
                           lambda c: self.app.push_screen(ABForm(c, dataset_id), self.create_ab),
                           name="reading models and variants", group="form")

    def create_ab(self, spec: dict | None) -> None:
        if not spec:
            return

        def create(store):
            from workbench.finetune.export_job import create_ab

            return create_ab(store, spec["model_id"], production=spec["production"],
                             dataset=spec["dataset"], limit=spec["limit"])

        self.in_background(create, self.ab_created, name="creating the A/B", group="ab")

    def ab_created(self, exp) -> None:
        self.notify(f"Experiment {exp.id} created: {exp.name}.", title="A/B")
        self.app.push_screen(ConfirmDialog(
            f"A/B experiment {exp.id} created",
            f"{exp.name}: a shadow replay where both answer every item. Open it on the "
            "Experiments screen, where s starts the replay?", yes="Open Experiments",
            no="Stay here"),
            lambda yes: self.open_experiment(exp.id) if yes else None)

    def open_experiment(self, exp_id: int) -> None:
        self.app.switch_mode("experiments")

        def reload() -> None:
            screen = self.app.screen
            if hasattr(screen, "action_reload"):
                screen.action_reload(exp_id)

        self.app.call_after_refresh(reload)
