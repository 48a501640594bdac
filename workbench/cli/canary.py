"""`replay --mode canary` options and `workbench canary EXP`: a staged rollout and its health."""

from __future__ import annotations

import argparse

from ..experiments.canary import PRESETS, CanaryPlan, CanarySchedule, plan_canary, stored_events
from ..experiments.canary_text import CHECK_COLUMNS, check_rows, sparkline, summary_lines
from ..terminal_text import safe_text
from ..workspace import OpenedWorkspace
from . import validators as check
from .output import print_json, print_table

DEFAULTS = CanarySchedule()


def add_schedule_options(p: argparse.ArgumentParser) -> None:
    """The staged canary's options on the `replay` parser."""
    g = p.add_argument_group("staged canary (--mode canary)")
    g.add_argument("--schedule", metavar="STAGES",
                   help="B's share per stage: percentages such as 1,5,10,25,50,100 (default "
                        f"'seed'), a preset ({', '.join(PRESETS)}), or 'fixed' for a fixed "
                        "--weight-b share with no stages or health checks")
    g.add_argument("--stage-requests", type=check.positive_int, metavar="N",
                   help="requests each stage holds (default: the replay spread over the stages)")
    g.add_argument("--check-every", type=check.positive_int, metavar="N",
                   default=DEFAULTS.check_every,
                   help=f"a health check every N requests (default {DEFAULTS.check_every})")
    g.add_argument("--min-b", type=check.positive_int, metavar="N", default=DEFAULTS.min_b,
                   help=f"checks start once B has answered N requests (default {DEFAULTS.min_b})")
    g.add_argument("--max-error-ratio", type=float, metavar="X", default=DEFAULTS.max_error_ratio,
                   help="roll back when B's error rate > X times A's (default "
                        f"{DEFAULTS.max_error_ratio:g})")
    g.add_argument("--max-p95-ms", type=float, metavar="MS", default=DEFAULTS.max_p95_ms,
                   help=f"roll back when B's p95 latency > MS (default {DEFAULTS.max_p95_ms:g})")
    g.add_argument("--max-safety-rate", type=check.probability, metavar="R",
                   default=DEFAULTS.max_safety_rate,
                   help="roll back when B's safety-failure rate > R, 0 to 1 (default "
                        f"{DEFAULTS.max_safety_rate:g})")


def schedule_from_args(args) -> dict | None:
    """The stored schedule for a new canary experiment (None: a fixed share); ValueError when the
    options do not fit together."""
    staged_only = {"--stage-requests": args.stage_requests is not None}
    if args.mode != "canary":
        if args.schedule or any(staged_only.values()):
            raise ValueError("--schedule and --stage-requests are for --mode canary")
        return None
    if (args.schedule or "").strip().lower() == "fixed":
        return None
    if args.weight_b is not None:
        raise ValueError("--weight-b is for a fixed share (--schedule fixed); a staged canary's "
                         "share follows its stages")
    stages = CanarySchedule.parse_stages(args.schedule or "seed")
    return CanarySchedule(stages=stages, stage_requests=args.stage_requests,
                          check_every=args.check_every, min_b=args.min_b,
                          max_error_ratio=args.max_error_ratio, max_p95_ms=args.max_p95_ms,
                          max_safety_rate=args.max_safety_rate).to_dict()


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("canary", help="a staged canary's rollout: stages, health checks, rollback")
    p.add_argument("experiment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=canary_cmd)


def print_canary(plan: CanaryPlan) -> None:
    """The stage reached, the rollback and its evidence, B's share and every health check."""
    for line in summary_lines(plan):
        print(line)
    if plan.share:
        print(f"B share  |{sparkline(plan.share)}|  (one mark per {plan.schedule.check_every} "
              "requests)")
    rows = check_rows(plan)
    if rows:
        print_table(CHECK_COLUMNS, rows)
    else:
        print(f"no health check yet (B needs {plan.schedule.min_b} answers)")


def canary_cmd(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    if exp.mode != "canary" or not exp.canary_schedule:
        print(safe_text(f"experiment {exp.id} ({exp.name}) is not a staged canary"))
        return 1
    plan = plan_canary(ws.store, exp)
    if args.json:
        print_json({"experiment": exp.id, "schedule": plan.schedule.to_dict(),
                    "served": plan.served, "n_requests": plan.n_requests,
                    "stage_pct": plan.stage_pct, "highest_stage_pct": plan.highest_stage_pct,
                    "rolled_back": plan.rolled_back, "share": plan.share,
                    "events": stored_events(ws.store, exp.id)})
        return 0
    print(safe_text(f"experiment {exp.id}: {exp.name}"))
    print_canary(plan)
    return 0
