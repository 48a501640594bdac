"""What the Experiments screen shows of one experiment, read from the store in a worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from .widgets.run_table import ItemRow


def percent(done: int, total: int) -> str:
    return f"{100 * done // total:3d}%" if total else "  -%"


@dataclass
class ExperimentView:
    """One experiment as the screen shows it, read from the store in a worker."""

    exp: object  # workbench.store.Experiment
    dataset: str
    variants: dict  # arm -> workbench.store.Variant
    rows: dict[int, ItemRow]
    stored: int
    planned: int


@dataclass
class LiveReplay:
    """Counters of the replay running on the shown experiment."""

    base: int  # runs stored before this replay started
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    errors: int = 0
    stopping: bool = False


@dataclass
class ScreenData:
    experiments: list = field(default_factory=list)
    view: ExperimentView | None = None


def load_view(store, exp_id: int) -> ExperimentView:
    """The experiment, its items with their stored runs, and the arms still to run for each."""
    from workbench.experiments.replay import pending_and_planned

    exp = store.get_experiment(exp_id)
    variants = {arm: store.get_variant(vid) for arm, vid in exp.arms.items()}
    rows = {item.id: ItemRow(item.id, item.key, item.prompt_text, item.reference)
            for item in store.items(exp.dataset_id, limit=exp.item_limit)}
    stored = 0
    for run in store.runs(exp.id):
        if run["item_id"] in rows:
            rows[run["item_id"]].runs[run["arm"]] = run
            rows[run["item_id"]].arms.add(run["arm"])
        stored += 1
    # light: the items above are already loaded; a staged canary's pending work is its next block,
    # its planned size one request per item left after it
    pending, planned = pending_and_planned(store, exp, stored, light=True)
    for task in pending:
        rows[task.item.id].arms.add(task.arm)
    return ExperimentView(exp, store.get_dataset(exp.dataset_id)["name"], variants, rows, stored,
                          planned)
