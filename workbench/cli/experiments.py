"""`workbench replay|experiments|report`: run A/B replays headless and read their results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..experiments.allocation import MODES
from ..datasets import import_dataset
from ..experiments.canary import plan_canary
from ..experiments.replay import Replay
from ..experiments.decision import CriteriaError, default_criteria, validate_criteria
from ..experiments.breakdown import (GROUPINGS, MIN_GROUP_ITEMS, breakdown,
                                     render_breakdown_markdown, render_breakdown_text)
from ..experiments.report import build_report, render_markdown, render_text
from ..store import NotFound, Store
from ..workspace import OpenedWorkspace
from . import canary, fail, one_line, validators as check
from .output import ProgressBar, cell, print_json, print_table, print_text


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay a dataset through variants A, B (, C, ...)")
    p.add_argument("dataset", nargs="?", help="dataset name, id, or a JSONL file to import")
    p.add_argument("--a", help="variant A (production): variant name or model id")
    p.add_argument("--b", help="variant B (candidate): variant name or model id")
    p.add_argument("--c", help="variant C (a third arm; shadow mode)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME",
                   help="an arm's variant, repeatable instead of --a/--b/--c: the first is A "
                        "(the baseline), then B, C, ...")
    p.add_argument("--concurrency", type=check.positive_int, metavar="N",
                   help="requests in flight per arm (default: the engine's slots; 1 for an "
                        "embedded worker)")
    p.add_argument("--mode", choices=MODES, default="shadow")
    p.add_argument("--weight-b", type=check.probability,
                   help="share of traffic for B (split, or canary --schedule fixed), 0 to 1; "
                        "default 0.5")
    p.add_argument("--canary-users", default="", help="comma-separated user ids that always get B")
    canary.add_schedule_options(p)
    p.add_argument("--limit", type=check.positive_int, help="replay only the first N items")
    p.add_argument("--name", type=check.name, help="experiment name")
    p.add_argument("--seed", type=check.integer(), default=0, help="seed of the sticky traffic split")
    p.add_argument("--resume", metavar="EXPERIMENT", help="finish an interrupted experiment")
    p.add_argument("--retry-errors", action="store_true", help="with --resume: rerun failed runs")
    p.set_defaults(func=replay)

    experiments = sub.add_parser("experiments", help="experiments and their lifecycle").add_subparsers(
        dest="action", required=True)
    p = experiments.add_parser("list", help="list experiments")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=experiments_list)
    p = experiments.add_parser("complete", help="mark an experiment completed with a winner")
    p.add_argument("experiment")
    p.add_argument("--winner", required=True, help="winning arm (A, B) or 'none'")
    p.set_defaults(func=experiments_complete)

    p = experiments.add_parser("criteria", help="show or set the promotion criteria")
    p.add_argument("experiment")
    p.add_argument("--primary", help="primary metric: accuracy, expert_rating or win_rate")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="e.g. latency_p95.margin_ms=80 or min_items_per_arm=100 (repeatable)")
    p.add_argument("--reset", action="store_true", help="back to the defaults")
    p.set_defaults(func=experiments_criteria)

    p = sub.add_parser("report", help="statistics and promotion verdict of an experiment")
    p.add_argument("experiment")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--markdown", action="store_true")
    p.add_argument("--sequential", action="store_true",
                   help="always-valid p-values (safe to read while data still arrives)")
    p.add_argument("--price-per-1k", type=check.non_negative,
                   help="cost per 1000 tokens for the cost column")
    p.add_argument("--by", choices=GROUPINGS,
                   help="then the report and an exploratory verdict per feature or category")
    p.add_argument("--min-items", type=check.positive_int, default=MIN_GROUP_ITEMS, metavar="N",
                   help=f"with --by: a group under N items gets no verdict (default "
                        f"{MIN_GROUP_ITEMS})")
    p.set_defaults(func=report)


def _variant_id(ws: OpenedWorkspace, ref: str) -> int:
    """A variant by name; a bare model id gets (or reuses) a default variant named after it."""
    try:
        return ws.store.get_variant(ref).id
    except NotFound:
        pass
    try:
        ws.store.get_model(ref)
    except NotFound:
        raise NotFound(f"{ref!r} is neither a variant nor a model id "
                       "(see `workbench variants list` and `workbench models list`)") from None
    return ws.store.create_variant(ref, ref).id


def _dataset_id(ws: OpenedWorkspace, ref: str) -> int:
    path = Path(ref)
    if path.suffix == ".jsonl" and path.is_file():
        report = import_dataset(ws.store, path)
        for error in report.errors:
            print(f"{cell(path.name)}: {cell(error)}", file=sys.stderr)
        print(cell(report.summary()), file=sys.stderr)
        return report.dataset_id
    return ws.store.get_dataset(ref)["id"]


def _arm_refs(args) -> list[str] | str:
    """The variants named for the arms, in arm order, or an error message."""
    letters = [x for x in (args.a, args.b, args.c) if x]
    if args.variant and letters:
        return "use either --variant (repeated) or --a/--b/--c, not both"
    refs = list(args.variant) or letters
    if (args.a is None or args.b is None) and letters:
        return "--a and --b are both needed (--c adds a third arm)"
    if len(refs) < 2:
        return "replay needs DATASET and two or more variants: --a A --b B, or --variant X " \
               "--variant Y [...] (or --resume EXPERIMENT)"
    if len(refs) > 26:
        return "at most 26 arms"
    if len(refs) > 2 and args.mode != "shadow":
        return f"{args.mode} mode routes traffic between two arms; 3+ arms need --mode shadow"
    return refs


def _print_plan(ws: OpenedWorkspace, exp, concurrency: int | None) -> str | None:
    """Say which engine serves each arm; return an error if one cannot be served."""
    from ..experiments.arm_engines import ArmEngines

    variants = {arm: ws.store.get_variant(vid) for arm, vid in exp.arms.items()}
    try:
        plans = ArmEngines(ws.store, concurrency=concurrency).plan(variants)
    except RuntimeError as exc:  # e.g. a model set to `server` and no llama-server binary
        return str(exc)
    for plan in plans:
        print(f"  {plan.arm}: {cell(plan.variant.name)} ({cell(plan.variant.target)}) on "
              f"{cell(plan.why)}, "
              f"{plan.concurrency} in flight", file=sys.stderr)
    return None


def replay(ws: OpenedWorkspace, args) -> int:
    if args.concurrency is not None and args.concurrency < 1:  # `finetune ab --run` too
        return fail("--concurrency must be at least 1")
    if args.resume:
        exp = ws.store.get_experiment(args.resume)
    else:
        refs = _arm_refs(args) if args.dataset else "replay needs a DATASET (or --resume EXPERIMENT)"
        if isinstance(refs, str):
            return fail(refs)
        try:
            schedule = canary.schedule_from_args(args)
        except ValueError as exc:
            return fail(str(exc))
        weight_b = 0.0 if schedule else (0.5 if args.weight_b is None else args.weight_b)
        dataset_id = _dataset_id(ws, args.dataset)
        arms = {chr(ord("A") + k): _variant_id(ws, ref) for k, ref in enumerate(refs)}
        users = [u.strip() for u in args.canary_users.split(",") if u.strip()]
        name = args.name or f"{' vs '.join(refs)} ({args.mode})"
        exp = ws.store.create_experiment(name, dataset_id, arms, mode=args.mode,
                                         weight_b=weight_b, canary_users=users,
                                         item_limit=args.limit, seed=args.seed,
                                         canary_schedule=schedule)
        print(f"experiment {exp.id}: {cell(name)}", file=sys.stderr)
    problem = _print_plan(ws, exp, args.concurrency)
    if problem:
        return fail(problem)
    job = Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs",
                 retry_errors=args.retry_errors, concurrency=args.concurrency)
    bar = ProgressBar()
    progress = None
    steps = job.run()
    try:
        for progress in steps:
            bar.update(progress.done, progress.total, progress.elapsed_s, progress.eta_s,
                       f"errors {progress.errors} fallbacks {progress.fallbacks}")
    except KeyboardInterrupt:
        job.cancel()
        steps.close()  # ends the engines now: workers and managed servers
        bar.finish()
        Store(ws.store.path).set_experiment(exp.id, status="paused")
        print(f"stopped; finish it with: workbench replay --resume {exp.id}", file=sys.stderr)
        return 130
    bar.finish()
    if progress is not None and progress.stopped_reason:
        print(f"error: {one_line(progress.stopped_reason)}", file=sys.stderr)
        print(f"{progress.done} new run(s) stored; finish it with: workbench replay --resume "
              f"{exp.id}", file=sys.stderr)
        return 1
    exp = ws.store.get_experiment(exp.id)
    if exp.mode == "canary" and exp.canary_schedule:
        canary.print_canary(plan_canary(ws.store, exp))
    print_text(render_text(build_report(ws.store, exp.id), summary_only=True))
    return 0 if progress is None or progress.finished else 1


def experiments_list(ws: OpenedWorkspace, args) -> int:
    from ..experiments.replay import replay_size

    rows = []
    for exp in ws.store.list_experiments():
        stored, planned = replay_size(ws.store, exp)
        rows.append({"id": exp.id, "name": exp.name, "mode": exp.mode, "status": exp.status,
                     "dataset": ws.store.get_dataset(exp.dataset_id)["name"], "runs": stored,
                     "planned": planned, "winner": exp.winner, "created_at": exp.created_at})
    if args.json:
        print_json(rows)
        return 0
    print_table(("id", "name", "mode", "status", "dataset", "runs", "winner"),
                ((r["id"], r["name"], r["mode"], r["status"], r["dataset"],
                  f"{r['runs']}/{r['planned']}", r["winner"]) for r in rows))
    return 0


def experiments_complete(ws: OpenedWorkspace, args) -> int:
    from ..monitoring.promotion import complete_experiment

    exp = ws.store.get_experiment(args.experiment)
    winner = None if args.winner.lower() == "none" else args.winner.upper()
    if winner is not None and winner not in exp.arms:
        return fail(f"--winner must be one of {', '.join(exp.arms)} or none, "
                    f"not {args.winner!r}")
    baseline = complete_experiment(ws.store, exp.id, winner)
    print(f"experiment {exp.id} completed, winner: {winner or 'none'}")
    if baseline is not None:  # the promoted variant's monitoring baseline (`workbench monitor`)
        variant = ws.store.get_variant(int(exp.arms[winner]))
        print(f"monitoring baseline recorded for variant:{cell(variant.name)}")
    return 0


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def experiments_criteria(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    criteria = default_criteria() if args.reset or not exp.criteria else dict(exp.criteria)
    for assignment in args.set:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise CriteriaError(f"--set needs SECTION.KEY=VALUE, got {assignment!r}")
        section, _, name = key.partition(".")
        if name:
            criteria[section] = dict(criteria.get(section) or {}, **{name: _parse_value(value)})
        else:
            criteria[section] = _parse_value(value)
    primary = args.primary or exp.primary_metric
    checked = validate_criteria(criteria, primary_metric=primary)
    if args.set or args.reset or args.primary:
        ws.store.set_experiment(exp.id, criteria=criteria, primary_metric=checked["primary_metric"])
    print_json(checked)
    return 0


def report(ws: OpenedWorkspace, args) -> int:
    exp = ws.store.get_experiment(args.experiment)
    data = build_report(ws.store, exp.id, sequential=args.sequential,
                        price_per_1k_tokens=args.price_per_1k)
    groups = None
    if args.by:
        groups = breakdown(ws.store, exp.id, args.by, sequential=args.sequential,
                           price_per_1k_tokens=args.price_per_1k, min_items=args.min_items)
    if args.json:
        print_json(data if groups is None else {**data, "breakdown": groups})
    elif args.markdown:
        print_text(render_markdown(data)
                   + ("" if groups is None else "\n" + render_breakdown_markdown(groups)), end="")
    else:
        print_text(render_text(data)
                   + ("" if groups is None else "\n\n" + render_breakdown_text(groups)))
    return 0
