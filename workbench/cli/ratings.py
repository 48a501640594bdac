"""`workbench rate|ratings ...`: blind rating in the app, and CSV sheets for everyone else."""

from __future__ import annotations

import argparse

from ..rating.sessions import RatingError, sessions
from ..rating.sheets import export_sheet, import_sheet
from ..workspace import OpenedWorkspace
from . import fail, validators as check
from .output import cell, print_json, print_table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rate", help="open the blind rating screen for an experiment")
    p.add_argument("experiment")
    p.add_argument("--rater", required=True, type=check.name,
                   help="your name (each rater has their own session)")
    p.set_defaults(func=rate, opens_ui=True)

    ratings = sub.add_parser("ratings", help="rating sessions and evaluation sheets").add_subparsers(
        dest="action", required=True)
    p = ratings.add_parser("list", help="rating sessions of an experiment and their progress")
    p.add_argument("experiment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=ratings_list)
    p = ratings.add_parser("export", help="write a blinded CSV sheet of pairs to rate")
    p.add_argument("experiment")
    p.add_argument("--csv", required=True, dest="path", type=check.writable_file)
    p.add_argument("--rater", type=check.name,
                   help="whose session plan to use (default: a new sheet-N session)")
    p.set_defaults(func=ratings_export)
    p = ratings.add_parser("import", help="read a filled sheet back")
    p.add_argument("experiment")
    p.add_argument("--csv", required=True, dest="path", type=check.readable_file)
    p.add_argument("--rater", type=check.name,
                   help="the expert who filled it (default: the sheet's own session)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=ratings_import)
    from .serve_rating import add_rating_parsers

    add_rating_parsers(ratings)


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
    print_table(("session", "rater", "source", "rated", "skipped", "planned", "completed"),
                ((r["id"], r["rater"], r["source"], r["rated"], r.get("skipped", 0), r["planned"],
                  (r["completed_at"] or "")[:19]) for r in rows))
    return 0


def ratings_export(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    try:
        count = export_sheet(ws.store, exp.id, args.path, rater=args.rater)
    except RatingError as exc:
        return fail(exc)
    except OSError as exc:
        return fail(f"cannot write {args.path}: {exc.strerror or exc}")
    print(f"wrote {count} pair(s) to {cell(args.path)}: fill 'choice' (1, 2, tie, both_bad, skip) and the 1-5 "
          "scores, then run `workbench ratings import`")
    return 0


def ratings_import(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    try:
        result = import_sheet(ws.store, exp.id, args.path, rater=args.rater)
    except RatingError as exc:
        return fail(exc)
    except UnicodeDecodeError:
        return fail(f"{args.path} is not a UTF-8 CSV sheet")
    except OSError as exc:
        return fail(f"cannot read {args.path}: {exc.strerror or exc}")
    if args.json:
        print_json({"rater": result.rater, "imported": result.imported, "blank": result.blank,
                    "errors": [{"line": line, "reason": r} for line, r in result.errors]})
    else:
        for line, reason in result.errors:
            print(f"{cell(args.path)}: line {line}: {cell(reason)}")
        print(f"imported {result.imported} rating(s) for {cell(result.rater)}; {result.blank} blank "
              f"row(s) left for later; {len(result.errors)} bad row(s)")
    return 1 if result.errors else 0
