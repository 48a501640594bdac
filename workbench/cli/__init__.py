"""The `workbench` command: no subcommand opens the TUI; subcommands run headless."""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..datasets import DatasetError
from ..gguf_inspect import InvalidGGUF
from ..store import NotFound
from . import catalog, experiments, finetune, ratings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Local LLM evaluation workbench. Without a command it opens the terminal UI.")
    parser.add_argument("--workspace", metavar="DIR",
                        help="workspace folder (default: $WORKBENCH_HOME or the current directory)")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command")
    catalog.add_parsers(sub)
    experiments.add_parsers(sub)
    ratings.add_parsers(sub)
    finetune.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from screens.app import run_app

        return run_app(args.workspace)
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
