"""`workbench rate|ratings ...`: blind rating in the app, and CSV sheets for everyone else."""

from __future__ import annotations

import argparse
import sys

from ..rating.sessions import RatingError, sessions
from ..rating.sheets import export_sheet, import_sheet
from ..workspace import OpenedWorkspace
from .output import print_json, print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rate", help="open the blind rating screen for an experiment")
    p.add_argument("experiment")
    p.add_argument("--rater", required=True, help="your name (each rater has their own session)")
    p.set_defaults(func=rate, opens_ui=True)

    ratings = sub.add_parser("ratings", help="rating sessions and evaluation sheets").add_subparsers(
        dest="action", required=True)
    p = ratings.add_parser("list", help="rating sessions of an experiment and their progress")
    p.add_argument("experiment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=ratings_list)
    p = ratings.add_parser("export", help="write a blinded CSV sheet of pairs to rate")
    p.add_argument("experiment")
    p.add_argument("--csv", required=True, dest="path")
    p.add_argument("--rater", help="whose session plan to use (default: a new sheet-N session)")
    p.set_defaults(func=ratings_export)
    p = ratings.add_parser("import", help="read a filled sheet back")
    p.add_argument("experiment")
    p.add_argument("--csv", required=True, dest="path")
    p.add_argument("--rater", help="the expert who filled it (default: the sheet's own session)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=ratings_import)


def rate(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    ws.close()
    return args.open_ui(str(ws.workspace.root), rate=(exp.id, args.rater))


def ratings_list(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    rows = sessions(ws.store, exp.id)
    if args.json:
        print_json(rows)
        return 0
    print_table(("session", "rater", "source", "rated", "planned", "completed"),
                ((r["id"], r["rater"], r["source"], r["rated"], r["planned"],
                  (r["completed_at"] or "")[:19]) for r in rows))
    return 0


def ratings_export(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    try:
        count = export_sheet(ws.store, exp.id, args.path, rater=args.rater)
    except RatingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} pair(s) to {args.path}: fill 'choice' (1, 2, tie, skip) and the 1-5 "
          "scores, then run `workbench ratings import`")
    return 0


def ratings_import(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    try:
        result = import_sheet(ws.store, exp.id, args.path, rater=args.rater)
    except RatingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print_json({"rater": result.rater, "imported": result.imported, "blank": result.blank,
                    "errors": [{"line": line, "reason": r} for line, r in result.errors]})
    else:
        for line, reason in result.errors:
            print(f"{args.path}: line {line}: {reason}")
        print(f"imported {result.imported} rating(s) for {result.rater}; {result.blank} blank "
              f"row(s) left for later; {len(result.errors)} bad row(s)")
    return 1 if result.errors else 0
