"""The live table of an experiment: one row per item, each arm's status/latency, severity match."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from textual.coordinate import Coordinate
from .safe import DataTable, Text
from textual.widgets.data_table import ColumnKey, RowKey

from ..format import milliseconds

ARMS = ("A", "B")


@dataclass
class ItemRow:
    """One item of an experiment and the runs stored for it so far."""

    item_id: int
    key: str
    prompt: str
    reference: dict | None
    arms: set[str] = field(default_factory=set)  # arms planned for this item
    runs: dict[str, dict] = field(default_factory=dict)  # arm -> run (columns of `runs`)

    @property
    def reference_severity(self) -> str | None:
        return (self.reference or {}).get("severity")


def arm_cell(row: ItemRow, arm: str) -> Text:
    """'✓ 812 ms', '✗ error', '· pending' or '—' (not routed to this arm)."""
    if arm not in row.arms:
        return Text("—", style="dim")
    run = row.runs.get(arm)
    if run is None:
        return Text("· pending", style="dim")
    if run.get("error"):
        return Text("✗ error", style="bold red")
    mark = "↩ " if run.get("fallback") else "✓ "
    return Text(mark + milliseconds(run.get("latency_ms")), style="green")


def severity_cell(row: ItemRow, arms=ARMS) -> Text:
    """Reference severity, then each arm's prediction: ✓ match, ✗ mismatch, ? none found."""
    text = Text(row.reference_severity or "no ref", style="bold" if row.reference_severity else "dim")
    for arm in arms:
        run = row.runs.get(arm)
        if arm not in row.arms or run is None or run.get("error"):
            continue
        ok = run.get("severity_ok") if run.get("severity_pred") else None
        mark, style = ("✓", "green") if ok == 1 else ("✗", "red") if ok == 0 else ("?", "dim")
        text.append(f"  {arm}", style="bold")
        text.append(mark, style=style)
    return text


class RunTable(DataTable):
    """DataTable keyed by item id; ``show_row`` refreshes one item as its runs arrive.

    ``on_cursor_moved`` is called in the same turn as the key that moved the cursor, so the
    selected item's panes are painted in the same frame as the cursor (a RowHighlighted message
    would be handled a frame later).
    """

    def __init__(self, on_cursor_moved: Callable[[], None] | None = None, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.on_cursor_moved = on_cursor_moved
        self.arms: tuple[str, ...] = ARMS

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        super().watch_cursor_coordinate(old, new)
        if old != new and self.on_cursor_moved is not None:
            self.on_cursor_moved()

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.add_column("item", key="item")
        for arm in self.arms:
            self.add_column(arm, key=arm, width=11)
        self.add_column(f"severity  (ref, {', '.join(self.arms)})", key="severity")

    def load(self, rows: list[ItemRow], arms: tuple[str, ...] = ARMS) -> None:
        """Show an experiment's rows; ``arms`` are its arms (columns change with them)."""
        if tuple(arms) != self.arms:
            self.arms = tuple(arms)
            self.clear(columns=True)
            self._add_columns()
        self.clear()
        for row in rows:
            self.add_row(row.key, *(arm_cell(row, arm) for arm in self.arms),
                         severity_cell(row, self.arms), key=str(row.item_id))

    def show_row(self, row: ItemRow) -> None:
        """Show one item's new runs, repainting that row only.

        DataTable.update_cell invalidates the render cache of every row (8 ms a call for a full
        table, paid on each stored run during a replay); here only this row's entries are
        dropped. Relies on DataTable internals of the pinned Textual version (tests cover it).
        """
        key = RowKey(str(row.item_id))
        cells = {ColumnKey(arm): arm_cell(row, arm) for arm in self.arms}
        cells[ColumnKey("severity")] = severity_cell(row, self.arms)
        self._data[key].update(cells)
        index = self.get_row_index(key)
        self._row_renderable_cache.discard((self._update_count, index))
        for cache in (self._cell_render_cache, self._row_render_cache):
            for cache_key in [k for k in cache.keys() if k[0] == key]:
                cache.discard(cache_key)
        self._line_cache.clear()
        self.refresh_row(index)

    def selected_item(self) -> int | None:
        if not self.row_count:
            return None
        return int(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
