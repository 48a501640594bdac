"""Live loss chart (textual-plotext): training and validation loss of one fine-tune job by step."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from .latency_chart import whole_ticks

COLORS = {"train": "cyan", "validation": "magenta"}


def loss_series(rows: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) pairs of the train and validation loss in ``training_metrics`` rows.

    A step recorded twice (a resume without a checkpoint) keeps its latest value.
    """
    series: dict[str, dict[int, float]] = {"train": {}, "validation": {}}
    for row in rows:
        for name, column in (("train", "loss"), ("validation", "eval_loss")):
            if row.get(column) is not None:
                series[name][int(row["step"])] = float(row[column])
    return {name: sorted(points.items()) for name, points in series.items()}


class LossChart(PlotextPlot):
    """Redraws only when the job or its points change (the screen feeds it about once a second)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.series: dict[str, list[tuple[int, float]]] = {"train": [], "validation": []}
        self.caption = ""
        self._shown: tuple | None = None

    def on_mount(self) -> None:
        self._redraw()

    def show(self, rows: list[dict], caption: str = "") -> None:
        """Show the metrics rows of one job (``caption`` names it in the title)."""
        series = loss_series(rows)
        key = (caption, tuple(series["train"]), tuple(series["validation"]))
        if key == self._shown:
            return
        self._shown = key
        self.series, self.caption = series, caption
        if self.is_mounted:
            self._redraw()

    def _redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        prefix = f"{self.caption}: " if self.caption else ""
        points = [p for values in self.series.values() for p in values]
        if not points:
            plt.title(f"{prefix}loss: no metrics yet")
            self.refresh()
            return
        plt.title(f"{prefix}loss by step")
        plt.xlabel("step")
        for name, values in self.series.items():
            if values:
                steps, losses = zip(*values)
                plt.plot(list(steps), list(losses), label=name, color=COLORS[name],
                         marker="braille" if len(values) > 1 else "dot")
        steps = [s for s, _ in points]
        plt.xticks(whole_ticks(min(steps), max(steps)))
        self.refresh()
