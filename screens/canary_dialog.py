"""The staged canary of an experiment: stage reached, rollback evidence, B's share, every check."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button

from .widgets.canary_chart import CanaryShareChart
from .widgets.safe import DataTable, Label, Static


def load_canary(store, exp_id: int):
    """(experiment, CanaryPlan) of a staged canary; ValueError for any other experiment."""
    from workbench.experiments.canary import plan_canary

    exp = store.get_experiment(exp_id)
    if exp.mode != "canary" or not exp.canary_schedule:
        raise ValueError(f"experiment {exp.id} is not a staged canary (mode {exp.mode}); create "
                         "one with mode canary in the New experiment form")
    return exp, plan_canary(store, exp)


class CanaryDialog(ModalScreen[None]):
    """Read-only view of a canary replay; Escape closes it."""

    BINDINGS = [Binding("escape,k", "close", "Close")]

    def __init__(self, exp, plan):
        super().__init__(classes="dialog")
        self.exp, self.plan = exp, plan

    def compose(self) -> ComposeResult:
        from workbench.experiments.canary_text import summary_lines

        with Vertical(classes="dialog-body canary-body"):
            yield Label(f"Canary rollout · #{self.exp.id} {self.exp.name}", classes="dialog-title")
            yield Static("\n".join(summary_lines(self.plan)), id="canary-summary")
            yield CanaryShareChart(id="canary-chart")
            yield DataTable(id="canary-checks", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close", variant="primary", id="close")

    def on_mount(self) -> None:
        from workbench.experiments.canary_text import CHECK_COLUMNS, check_rows

        rollback = self.plan.rollback
        self.query_one(CanaryShareChart).show(self.plan.share, self.plan.schedule.stages,
                                              rollback.request_no if rollback else None)
        table = self.query_one("#canary-checks", DataTable)
        table.add_columns(*CHECK_COLUMNS)
        for row in check_rows(self.plan):
            table.add_row(*(str(v) for v in row))
        # a short terminal scrolls the dialog: start at the summary, not at the focused table
        body = self.query_one(".canary-body")
        self.call_after_refresh(body.scroll_home, animate=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
