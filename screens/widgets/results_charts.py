"""Charts of the Results screen (textual-plotext): latency distribution and latency over the run
of A vs B, blind win/tie/loss, accuracy and safety per arm with their 95% intervals.

``latency_series`` bins and thins the per-item latencies in the worker thread, so a chart of
100k runs draws at most a few hundred points on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from textual_plotext import PlotextPlot

COLORS = {"A": "cyan", "B": "magenta"}


@dataclass
class LatencySeries:
    """Chart-ready latency data: histogram counts per arm and thinned per-item series."""

    centers: list[float] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)
    order: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    per_point: int = 1  # items summarised by each point of ``order``
    clipped_above: float | None = None  # the histogram leaves out runs slower than this


def _thin(values: np.ndarray, points: int) -> tuple[list[float], list[float], int]:
    """(x, y): item number and value, or per-chunk medians when there are more than ``points``."""
    n = values.size
    if n <= points:
        return list(range(1, n + 1)), values.tolist(), 1
    chunks = np.array_split(np.arange(n), points)
    x = [float(c.mean() + 1) for c in chunks]
    y = [float(np.median(values[c])) for c in chunks]
    return x, y, int(np.ceil(n / points))


def latency_series(outcomes: dict, bins: int = 30, points: int = 200) -> LatencySeries:
    """From ``workbench.experiments.analysis.item_outcomes``: latency per item (paired or unpaired)."""
    latency = outcomes.get("latency")
    if latency is None:
        return LatencySeries()
    arrays = latency[1:] if outcomes.get("design") == "paired" else latency
    by_arm = {arm: np.asarray(v, dtype=float) for arm, v in zip(("A", "B"), arrays)}
    by_arm = {arm: v[np.isfinite(v)] for arm, v in by_arm.items()}
    out = LatencySeries()
    every = np.concatenate([v for v in by_arm.values()]) if by_arm else np.array([])
    if every.size == 0:
        return out
    low, high = float(every.min()), float(np.percentile(every, 99))
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    out.centers = ((edges[:-1] + edges[1:]) / 2).tolist()
    out.clipped_above = high if every.max() > high else None
    for arm, values in by_arm.items():
        out.counts[arm] = np.histogram(values, edges)[0].tolist()
        x, y, out.per_point = _thin(values, points)
        out.order[arm] = (x, y)
    return out


class ResultChart(PlotextPlot):
    """A chart redrawn from scratch by ``draw`` whenever its data changes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.data = None

    def show(self, data) -> None:
        self.data = data
        self.plt.clear_data()
        self.plt.clear_figure()
        self.draw(self.plt, data)
        self.refresh()

    def draw(self, plt, data) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class LatencyHistogram(ResultChart):
    def draw(self, plt, data: LatencySeries | None) -> None:
        if not data or not data.counts:
            plt.title("latency distribution: " + ("loading…" if data is None else "no runs"))
            return
        clip = f", up to {data.clipped_above:.0f}" if data.clipped_above else ""
        plt.title(f"latency distribution (ms{clip})")
        for arm, counts in sorted(data.counts.items()):
            plt.plot(data.centers, counts, label=arm, color=COLORS.get(arm), marker="braille")
        plt.ylabel("runs")


class LatencyOverRun(ResultChart):
    def draw(self, plt, data: LatencySeries | None) -> None:
        if not data or not data.order:
            plt.title("latency over the run: " + ("loading…" if data is None else "no runs"))
            return
        each = f", median of each {data.per_point} items" if data.per_point > 1 else ""
        plt.title(f"latency over the run (ms{each})")
        for arm, (x, y) in sorted(data.order.items()):
            plt.plot(x, y, label=arm, color=COLORS.get(arm), marker="braille")
        plt.xlabel("item (replay order)")


class WinTieLoss(ResultChart):
    """Blind votes for B against A as horizontal bars."""

    def draw(self, plt, preference: dict | None) -> None:
        if not preference:
            plt.title("blind votes: none yet (Rate screen, key 4)")
            return
        ci = preference.get("win_rate_ci") or [None, None]
        interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if None not in ci else ""
        plt.title(f"blind votes · win rate of B {preference['win_rate']:.2f}{interval}")
        labels = ["skipped", "A wins", "tie", "B wins"]  # plotext draws the first at the bottom
        values = [preference["skips"], preference["wins_a"], preference["ties"],
                  preference["wins_b"]]
        plt.bar(labels, values, orientation="h", width=0.6, color="orange")


def _interval(plt, x: float, value, ci, color: str) -> None:
    """A point with its interval drawn as a vertical segment (plotext has no error bars)."""
    if value is None:
        return
    if ci and ci[0] is not None and ci[1] is not None:
        ys = np.linspace(ci[0], ci[1], 40).tolist()
        plt.scatter([x] * len(ys), ys, color=color, marker="│")
    plt.scatter([x], [value], color=color, marker="◆")


class AccuracySafety(ResultChart):
    """Automatic accuracy and safety failures (%), and the expert accuracy rating (1-5)."""

    def draw(self, plt, report: dict | None) -> None:
        if not report:
            plt.title("accuracy and safety: loading…")
            return
        arms = {a["arm"]: a for a in report.get("arms", [])}
        safety = next((c.get("safety") for c in (report.get("comparisons") or {}).values()
                       if c.get("safety")), None)
        plt.subplots(1, 2)
        left = plt.subplot(1, 1)
        left.title("automatic, % (95% CI)")
        for k, arm in enumerate(("A", "B")):
            if arm not in arms:
                continue
            acc = arms[arm]["accuracy"]
            _interval(left, 1 + k * 0.6, _pct(acc.get("rate")), _pct_ci(acc.get("ci")),
                      COLORS[arm])
            if safety:
                key = "a" if arm == "A" else "b"
                _interval(left, 3 + k * 0.6, _pct(safety.get(f"p_{key}")),
                          _pct_ci(safety.get(f"ci_{key}")), COLORS[arm])
            else:
                flags = arms[arm]["safety_flags"]
                _interval(left, 3 + k * 0.6, _pct(flags.get("rate")), None, COLORS[arm])
        left.xlim(0.4, 4.2)
        left.ylim(0, 100)
        left.xticks([1.3, 3.3], ["accuracy", "unsafe"])
        right = plt.subplot(1, 2)
        right.title("expert accuracy, 1-5")
        rated = False
        for k, arm in enumerate(("A", "B")):
            expert = (arms.get(arm) or {}).get("expert_accuracy") or {}
            if expert.get("mean") is not None:
                rated = True
                _interval(right, 1 + k, expert["mean"], expert.get("ci"), COLORS[arm])
        if not rated:
            right.title("expert accuracy: no scores yet")
        right.xlim(0.3, 2.7)
        right.ylim(1, 5)
        right.xticks([1, 2], ["A", "B"])


def _pct(value):
    return None if value is None else value * 100


def _pct_ci(ci):
    if not ci or ci[0] is None or ci[1] is None:
        return None
    return [ci[0] * 100, ci[1] * 100]
