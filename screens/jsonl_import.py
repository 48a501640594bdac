"""Importing a JSONL file from a screen: the path dialog, the import in the background, and its
report (every bad line with its number) or a notice when all lines were good."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Group
from rich.table import Table

from .dialogs import Field, FormDialog, MessageDialog
from .format import describe_error
from .widgets.safe import Text

if TYPE_CHECKING:
    from .base import WorkbenchScreen

GROUP = "import"  # the worker group of an import, for ``import_failed``


def import_report_body(report) -> Group:
    """The bad-line report of an import (``workbench.datasets.ImportReport``) as a renderable."""
    parts: list = [Text(report.summary() + ".", style="bold")]
    for title, problems, style in (("Bad lines (skipped)", report.errors, "red"),
                                   ("Warnings (imported)", report.warnings, "yellow")):
        if not problems:
            continue
        table = Table(title=title, title_justify="left", title_style=f"bold {style}", box=None,
                      expand=True)
        table.add_column("line", justify="right", style=style, no_wrap=True)
        table.add_column("reason")
        for problem in problems:
            table.add_row(str(problem.line_no), problem.reason)
        parts += [Text(""), table]
    return Group(*parts)


def ask_and_import(screen: "WorkbenchScreen", title: str, fields: list[Field],
                   run: Callable[[Any, Path, str | None], Any],
                   done: Callable[[Any], None]) -> None:
    """Ask for a path and a name (``fields``), run ``run(store, path, name)`` in the background,
    call ``done(report)``, then show the report's bad lines or a notice."""
    def start(values: dict | None) -> None:
        if not values:
            return
        path = Path(values["path"]).expanduser()
        screen.in_background(lambda store: run(store, path, values["name"] or None), finished,
                             name=f"importing {path.name}", group=GROUP)

    def finished(report) -> None:
        done(report)
        if report.errors or report.warnings:
            screen.app.push_screen(MessageDialog(f"Import report: {report.name}",
                                                 import_report_body(report),
                                                 error=bool(report.errors)))
        else:
            screen.notify(report.summary() + ".", title=screen.TITLE)

    screen.app.push_screen(FormDialog(title, fields, ok="Import",
                                      validate=lambda v: None if v["path"] else "Enter a path."),
                           start)


def import_failed(screen: "WorkbenchScreen", worker, error) -> bool:
    """Show a failed import as a dialog; False when ``worker`` was not an import."""
    if worker.group != GROUP:
        return False
    screen.app.push_screen(MessageDialog(worker.name.capitalize() + " failed",
                                         describe_error(error), error=True))
    return True
