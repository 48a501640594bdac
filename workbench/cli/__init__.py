"""The headless `workbench` subcommands.

The installed ``workbench`` command is ``screens.launcher.main``, which calls ``main`` with its UI
opener as ``open_ui``: no subcommand (or ``rate``) then opens the UI, and the core never imports
it. ``python -m workbench`` calls ``main`` without one: headless.

Every mistake is one line on stderr starting ``error:`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from .. import __version__
from ..terminal_text import safe_text

# open_ui(workspace, rate=(experiment id, rater) | None) -> exit status
UiOpener = Callable[..., int]
NO_UI = ("this entry point is headless: the terminal UI opens with the installed `workbench` "
         "command (or `python -m screens`)")


def one_line(message: object) -> str:
    """``message`` as one terminal-safe line (its lines joined with ' | ')."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return safe_text(" | ".join(lines))


def fail(message: object) -> int:
    """Print ``error: MESSAGE`` (one safe line) on stderr and return exit status 2."""
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 2


class CliParser(argparse.ArgumentParser):
    """argparse with one-line ``error: …`` messages (subcommand parsers inherit it)."""

    def error(self, message: str):
        self.exit(2, f"error: {one_line(message)} (see `{safe_text(self.prog)} --help`)\n")


def _ui_only(argv: list[str]) -> tuple[str | None, bool] | bool:
    """(workspace, --create) to open the UI on when ``argv`` names no subcommand, else False."""
    workspace, create = None, False
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--workspace" and rest:
            workspace = rest.pop(0)
        elif arg.startswith("--workspace="):
            workspace = arg.split("=", 1)[1]
        elif arg == "--create":
            create = True
        else:
            return False
    return workspace, create


def _add_workspace_options(parser: argparse.ArgumentParser, top: bool) -> None:
    default = None if top else argparse.SUPPRESS  # a subcommand's copy never hides the top one
    parser.add_argument("--workspace", metavar="DIR", default=default,
                        help="workspace folder (default: $WORKBENCH_HOME or the current directory)")
    parser.add_argument("--create", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="create the --workspace folder if it does not exist")


def _every_subparser(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.metavar is None:  # "required: {list,add}" rather than "required: action"
                action.metavar = "{" + ",".join(action.choices) + "}"
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _every_subparser(sub)


def build_parser() -> argparse.ArgumentParser:
    """The full command line (imports every subcommand module)."""
    from . import canary, catalog, endpoints, experiments, finetune, monitoring, ratings, serve_rating
    from . import drift

    parser = CliParser(
        prog="workbench",
        description="Local LLM evaluation workbench. Without a command it opens the terminal UI.")
    _add_workspace_options(parser, top=True)
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    catalog.add_parsers(sub)
    endpoints.add_parsers(sub)
    experiments.add_parsers(sub)
    canary.add_parsers(sub)
    ratings.add_parsers(sub)
    serve_rating.add_parsers(sub)
    monitoring.add_parsers(sub)
    drift.add_parsers(sub)
    finetune.add_parsers(sub)
    for subparser in _every_subparser(parser):  # `workbench models list --workspace W` too
        _add_workspace_options(subparser, top=False)
    return parser


def workspace_problem(path: str | None, create: bool) -> str | None:
    """Why the workspace folder cannot be used (None when it can, or ``create`` makes it)."""
    from ..config import ENV_HOME

    chosen = path or os.environ.get(ENV_HOME)
    if not chosen:
        return None  # the current directory
    folder = os.path.expanduser(chosen)
    where = "" if path else f" (from ${ENV_HOME})"
    if os.path.isdir(folder):
        return None
    if os.path.exists(folder):
        return f"workspace {chosen}{where} is not a folder"
    if create:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            return f"cannot create workspace {chosen}: {exc.strerror or exc}"
        return None
    return f"workspace {chosen}{where} does not exist (add --create to make it)"


def _errors() -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's mistake or the environment's: one line, exit 2."""
    from ..datasets import DatasetError
    from ..export.quantize import QuantizeError
    from ..finetune.export_job import ExportError
    from ..models.gguf_inspect import InvalidGGUF
    from ..store import NotFound, WorkspaceError

    return (NotFound, InvalidGGUF, DatasetError, ValueError, QuantizeError, ExportError, OSError,
            WorkspaceError)


def _message(exc: BaseException) -> str:
    from ..store import NotFound

    if isinstance(exc, NotFound) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def main(argv: list[str] | None = None, open_ui: UiOpener | None = None) -> int:
    """Run one subcommand; with no subcommand, open the UI through ``open_ui`` (if given)."""
    argv = sys.argv[1:] if argv is None else argv
    ui = _ui_only(argv)
    if ui is not False:  # no subcommand: open the UI before importing anything heavy
        workspace, create = ui
        if open_ui is None:
            return fail(f"no command given (see `workbench --help`); {NO_UI}")
        problem = workspace_problem(workspace, create)
        return fail(problem) if problem else open_ui(workspace)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        return fail(f"no command given; {NO_UI}" if open_ui is None else "no command given")
    if getattr(args, "opens_ui", False) and open_ui is None:
        return fail(NO_UI)
    args.open_ui = open_ui
    problem = workspace_problem(args.workspace, args.create)
    if problem:
        return fail(problem)
    from ..workspace import open_workspace

    errors = _errors()
    try:
        ws = open_workspace(args.workspace)
    except errors as exc:
        return fail(_message(exc))
    try:
        for problem in ws.problems:
            print(f"warning: {one_line(problem)}", file=sys.stderr)
        return args.func(ws, args)
    except errors as exc:
        return fail(_message(exc))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        ws.close()
