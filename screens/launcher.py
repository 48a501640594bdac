"""The installed ``workbench`` command: the UI when no subcommand is given, else the headless CLI.

It lives on the UI side so that ``workbench/`` never imports ``screens/``: the CLI gets the UI
opener passed in (``open_ui``) for the commands that open a screen (``workbench rate``).
"""

from __future__ import annotations


def open_ui(workspace: str | None = None, rate: tuple[int, str] | None = None) -> int:
    """Run the terminal UI (imported only now, so headless commands never pay for Textual)."""
    from .app import run_app

    return run_app(workspace, rate=rate)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    from workbench.cli import main as cli_main

    return cli_main(argv, open_ui=open_ui)
