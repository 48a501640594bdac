"""The Results screen's per-group pane: each feature's or category's report, as the CLI's
`workbench report --by` shows it (``workbench.experiments.breakdown``).

Each group gets its exploratory verdict banner (or "too few items"), its criteria table, its
per-variant table and its comparisons; every cell and line comes from ``results_view``.
"""

from __future__ import annotations

from textual.containers import VerticalScroll

from .results_view import (arm_columns_and_rows, comparisons_text, criteria_columns,
                           criteria_rows, group_banner, groups_intro)
from .widgets.safe import DataTable, Static


class GroupTable(DataTable):
    """A read-only table filled with its columns and rows once mounted."""

    def __init__(self, columns, rows, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._fill = (columns, rows)
        # inline: the app's stylesheet gives every DataTable 1fr, which beats DEFAULT_CSS
        self.styles.height, self.styles.max_height = "auto", 12

    def on_mount(self) -> None:
        columns, rows = self._fill
        self.add_columns(*columns)
        self.add_rows(rows)


class GroupsPanel(VerticalScroll):
    """Every group of a breakdown, one section each (``show``)."""

    SCOPED_CSS = False  # the narrow rule names the screen
    DEFAULT_CSS = """
    GroupsPanel { height: 1fr; padding: 0 1; }
    ResultsScreen.-narrow GroupsPanel { height: auto; }
    GroupsPanel .group-banner { height: auto; margin-top: 1; }
    GroupsPanel .group-table { margin-top: 1; }
    GroupsPanel .group-text { height: auto; }
    """

    def show(self, result: dict | None, grouping: str) -> None:
        """Replace the sections with ``result`` (None: a 'computing' line)."""
        self.remove_children()
        widgets = [Static(groups_intro(result, grouping), classes="group-text groups-intro")]
        for group in (result or {}).get("groups", []):
            report = group["report"]
            widgets.append(Static(group_banner(result, group), classes="group-banner"))
            if report.get("verdict"):
                widgets.append(GroupTable(criteria_columns(report), criteria_rows(report),
                                          classes="group-table group-criteria"))
            columns, rows = arm_columns_and_rows(report)
            widgets.append(GroupTable(columns, rows, classes="group-table group-arms"))
            widgets.append(Static(comparisons_text(report), classes="group-text group-comparisons"))
        self.mount_all(widgets)
