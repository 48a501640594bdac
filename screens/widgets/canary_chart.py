"""B's share of traffic over a staged canary replay (textual-plotext), stages and rollback marked."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class CanaryShareChart(PlotextPlot):
    """B's share per block of requests (percent) against requests served."""

    def show(self, share: list[tuple[int, float]], stages: tuple[float, ...],
             rollback_at: int | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("requests served")
        if not share:
            plt.title("B's share of traffic: no block served yet")
            self.refresh()
            return
        x = [n for n, _ in share]
        plt.plot(x, [s * 100 for _, s in share], label="B share %", color="magenta",
                 marker="braille")
        for pct in stages:
            plt.hline(pct, "gray")
        if rollback_at is not None:
            plt.vline(rollback_at, "red")
        plt.ylim(0, 100)
        plt.title("B's share of traffic (%)" + (f" · rolled back at {rollback_at}"
                                               if rollback_at is not None else ""))
        self.refresh()
