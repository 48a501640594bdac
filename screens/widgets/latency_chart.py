"""Live latency chart (textual-plotext): latency of each run of every arm, in arrival order."""

from __future__ import annotations

from textual_plotext import PlotextPlot

COLORS = {"A": "cyan", "B": "magenta", "C": "yellow", "D": "green", "E": "red"}


class LatencyChart(PlotextPlot):
    """Redraws at most once per ``interval_s`` however fast runs arrive."""

    def __init__(self, interval_s: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.interval_s = interval_s
        self.series: dict[str, list[float]] = {"A": [], "B": []}
        self._dirty = True

    def on_mount(self) -> None:
        self.set_interval(self.interval_s, self._redraw_if_dirty)
        self._redraw_if_dirty()

    def reset(self, series: dict[str, list[float]]) -> None:
        """Show a whole experiment's latencies at once (redraws now)."""
        self.series = {arm: list(values) for arm, values in series.items()}
        self._dirty = True
        if self.is_mounted:
            self._redraw_if_dirty()

    def add(self, arm: str, latency_ms: float | None) -> None:
        if latency_ms is not None:
            self.series.setdefault(arm, []).append(latency_ms)
            self._dirty = True

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("latency per run (ms)")
        plt.xlabel("run")
        longest = max((len(values) for values in self.series.values()), default=0)
        for arm, values in sorted(self.series.items()):
            if values:
                plt.plot(list(range(1, len(values) + 1)), values, label=arm,
                         color=COLORS.get(arm, "white"), marker="braille")
        if longest:
            plt.xticks(whole_ticks(1, longest))
            low = min(min(v) for v in self.series.values() if v)
            high = max(max(v) for v in self.series.values() if v)
            plt.yticks(whole_ticks(int(low), int(high) + 1))
        else:
            plt.title("latency per run (ms): no runs yet")
        self.refresh()


def whole_ticks(low: int, high: int, most: int = 5) -> list[int]:
    """At most ``most`` evenly spaced whole numbers from ``low`` to ``high``."""
    if high <= low:
        return [low]
    step = max(1, -(-(high - low) // (most - 1)))
    return list(range(low, high + 1, step))
