"""The headless `workbench` subcommands.

The installed ``workbench`` command is ``screens.launcher.main``, which calls ``main`` with its UI
opener as ``open_ui``: no subcommand (or ``rate``) then opens the UI, and the core never imports
it. ``python -m workbench`` calls ``main`` without one: headless.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from .. import __version__

# open_ui(workspace, rate=(experiment id, rater) | None) -> exit status
UiOpener = Callable[..., int]
NO_UI = ("this entry point is headless: the terminal UI opens with the installed `workbench` "
         "command (or `python -m screens`)")


def _ui_only(argv: list[str]) -> str | None | bool:
    """The workspace to open the UI on when ``argv`` names no subcommand, else False."""
    workspace = None
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--workspace" and rest:
            workspace = rest.pop(0)
        elif arg.startswith("--workspace="):
            workspace = arg.split("=", 1)[1]
        else:
            return False
    return workspace


def build_parser() -> argparse.ArgumentParser:
    """The full command line (imports every subcommand module)."""
    from . import catalog, endpoints, experiments, finetune, ratings

    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Local LLM evaluation workbench. Without a command it opens the terminal UI.")
    parser.add_argument("--workspace", metavar="DIR",
                        help="workspace folder (default: $WORKBENCH_HOME or the current directory)")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command")
    catalog.add_parsers(sub)
    endpoints.add_parsers(sub)
    experiments.add_parsers(sub)
    ratings.add_parsers(sub)
    finetune.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None, open_ui: UiOpener | None = None) -> int:
    """Run one subcommand; with no subcommand, open the UI through ``open_ui`` (if given)."""
    argv = sys.argv[1:] if argv is None else argv
    workspace = _ui_only(argv)
    if workspace is not False:  # no subcommand: open the UI before importing anything heavy
        if open_ui is None:
            build_parser().print_usage(sys.stderr)
            print(f"error: no command given; {NO_UI}", file=sys.stderr)
            return 2
        return open_ui(workspace)
    args = build_parser().parse_args(argv)
    if getattr(args, "opens_ui", False) and open_ui is None:
        print(f"error: {NO_UI}", file=sys.stderr)
        return 2
    args.open_ui = open_ui
    from ..datasets import DatasetError
    from ..models.gguf_inspect import InvalidGGUF
    from ..store import NotFound
    from ..workspace import open_workspace

    ws = open_workspace(args.workspace)
    try:
        for problem in ws.problems:
            print(f"warning: {problem}", file=sys.stderr)
        return args.func(ws, args)
    except (NotFound, InvalidGGUF, DatasetError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, NotFound) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2
    finally:
        ws.close()
