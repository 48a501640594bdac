"""Datasets screen: imported incident sets, JSONL import with its bad-line report, item preview."""

from __future__ import annotations


from rich.console import Group
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header
from .widgets.safe import DataTable, Static, Text

from .base import WorkbenchScreen
from .dialogs import Field
from .format import shorten, timestamp
from .jsonl_import import ask_and_import, import_failed

PREVIEW_LIMIT = 200


def reference_text(reference: dict | None) -> Text:
    """The reference answer of an item, one labelled line per field."""
    text = Text()
    for key, value in (reference or {}).items():
        text.append(f"{key}: ", style="bold")
        text.append(f"{value}\n")
    return text if reference else Text("no reference", style="dim")


class DatasetsScreen(WorkbenchScreen):
    TITLE = "Datasets"
    RELOAD_ON_SHOW = True
    HELP = """
Incident datasets: JSONL, one incident a line (schema in datasets/README.md). JSONL files in the
workspace datasets/ folder are imported when the workbench opens.

i imports a file: every good line is kept and each bad one is listed with its line number and
reason. Importing under an existing name replaces that dataset, unless experiments already use
it (then give another name).

Select a dataset to preview its items; tab to the items and select one to read its input and
reference answer.
"""
    BINDINGS = [
        Binding("i", "import", "Import JSONL"),
        Binding("r", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.datasets: dict[int, dict] = {}
        self.items: dict[int, object] = {}  # item id -> workbench.store.Item

    def compose(self) -> ComposeResult:
        yield Header()
        table = DataTable(id="datasets-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("id", "name", "items", "rejected lines", "imported", "source")
        yield table
        with Horizontal(id="datasets-lower"):
            items = DataTable(id="items-table", cursor_type="row", zebra_stripes=True,
                              classes="panel")
            items.border_title = "Items"
            items.add_columns("item", "category", "severity", "input")
            yield items
            with VerticalScroll(id="item-detail", classes="panel") as detail:
                detail.border_title = "Selected item"
                yield Static("Select an item to read it.", id="item-detail-text")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.action_reload()

    # -- datasets ----------------------------------------------------------------------------
    def action_reload(self, select: int | None = None) -> None:
        self.in_background(lambda store: store.list_datasets(),
                           lambda rows: self.show_datasets(rows, select), name="loading datasets")

    def show_datasets(self, rows: list[dict], select: int | None = None) -> None:
        table = self.query_one("#datasets-table", DataTable)
        current = select if select is not None else self.selected_dataset()
        self.datasets = {row["id"]: row for row in rows}
        table.clear()
        for row in rows:
            table.add_row(str(row["id"]), row["name"], f"{row['n_items']:,}",
                          f"{row['n_rejected']:,}", timestamp(row["imported_at"]),
                          shorten(row["source_path"], 60), key=str(row["id"]))
        if current in self.datasets:
            table.move_cursor(row=table.get_row_index(str(current)))
        self.call_after_refresh(table.refresh)  # repaint the header at the new column widths
        if not rows:
            self.query_one("#item-detail-text", Static).update(
                "No dataset yet. Press i to import a JSONL file.")
        self.preview(self.selected_dataset())

    def selected_dataset(self) -> int | None:
        table = self.query_one("#datasets-table", DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "datasets-table":
            self.preview(self.selected_dataset())
        else:
            self.show_item()

    # -- items -------------------------------------------------------------------------------
    def preview(self, dataset_id: int | None) -> None:
        if dataset_id is None:
            return
        self.in_background(lambda store: store.items(dataset_id, limit=PREVIEW_LIMIT),
                           self.show_items, name="loading items", group="items")

    def show_items(self, items: list) -> None:
        table = self.query_one("#items-table", DataTable)
        table.clear()
        self.items = {item.id: item for item in items}
        shown = f"first {PREVIEW_LIMIT}" if len(items) >= PREVIEW_LIMIT else str(len(items))
        table.border_title = f"Items ({shown})"
        for item in items:
            severity = (item.reference or {}).get("severity") or "-"
            table.add_row(item.key, item.category or "-", severity,
                          shorten(item.prompt_text, 70), key=str(item.id))
        self.call_after_refresh(table.refresh)
        self.show_item()

    def show_item(self) -> None:
        table = self.query_one("#items-table", DataTable)
        detail = self.query_one("#item-detail-text", Static)
        if not table.row_count:
            detail.update("This dataset has no items.")
            return
        item = self.items[int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)]
        header = Text(f"{item.key}", style="bold")
        header.append(f"   user {item.user_id or '-'} · {item.category or '-'} · {item.feature or '-'}",
                      style="dim")
        body = Text(item.prompt_text + "\n")
        detail.update(Group(header, Text(""), Text("Input", style="bold underline"), body,
                            Text("Reference", style="bold underline"),
                            reference_text(item.reference)))

    # -- import ------------------------------------------------------------------------------
    def action_import(self) -> None:
        def run(store, path, name):
            from workbench.datasets import import_dataset

            return import_dataset(store, path, name=name)

        fields = [Field("path", "Path to a JSONL file", placeholder="~/incidents/2025-q3.jsonl"),
                  Field("name", "Dataset name (blank: the file name)")]
        ask_and_import(self, "Import a dataset", fields, run,
                       lambda report: self.action_reload(select=report.dataset_id))

    def worker_failed(self, worker, error) -> None:
        if not import_failed(self, worker, error):
            super().worker_failed(worker, error)
