"""`workbench drift concept|data|retraining|schedule|unschedule|list|run-due`.

The orchestration that runs models lives here (a one-arm shadow replay for concept drift, the
embedding process for data drift); judging and storing is ``monitoring/``'s.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from ..engines.embeddings import EmbeddingError, EmbeddingSpec, embed_texts
from ..experiments.replay import Replay
from ..models.registry import BUNDLED_ID
from ..monitoring import concept_drift, data_drift
from ..monitoring.drift_schedule import (check_history, due_schedules, list_schedules, mark_run,
                                         parse_every, parse_now, remove_schedule, save_schedule)
from ..monitoring.monitor import iso
from ..monitoring.retraining import retraining_decision
from ..store import NotFound, Variant, utcnow
from ..workspace import OpenedWorkspace
from . import fail, one_line, validators as check
from .output import ProgressBar, cell, print_fields, print_json, print_table

CRONTAB = """\
run it from cron (exit status 0 when nothing is due, 1 when a check failed):
  # every hour: the drift checks whose period has passed
  0 * * * *  cd /srv/workbench && .venv/bin/workbench drift run-due --workspace /srv/workbench >> logs/drift.log 2>&1
"""


class DriftRunError(RuntimeError):
    """A drift check could not run (the replay stopped, the embedding process failed)."""


def _concept_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=check.positive_int, help="only the first N reference items")
    p.add_argument("--baseline-of", metavar="OTHER",
                   help="compare with OTHER's baseline (e.g. the deployed variant)")
    p.add_argument("--threshold", type=check.non_negative, default=concept_drift.DEFAULT_DROP_POINTS,
                   help="drift when accuracy drops by more than this many points (default 15)")
    p.add_argument("--alpha", type=check.probability, default=concept_drift.DEFAULT_ALPHA)
    p.add_argument("--concurrency", type=check.positive_int, metavar="N",
                   help="requests in flight (default: the engine's slots)")


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", required=True, help="reference dataset (e.g. a training set)")
    p.add_argument("--recent", required=True, metavar="DS_OR_LOG",
                   help="recent inputs: a dataset or an imported log (logs:NAME)")
    p.add_argument("--model", help=f"model that embeds the inputs (default {BUNDLED_ID})")
    p.add_argument("--sample", type=check.positive_int, metavar="N",
                   help="at most N inputs per side (reference: seeded sample; recent: newest)")
    p.add_argument("--target", help="what the inputs feed, for the history and alerts "
                                    "(default: the recent source, e.g. logs:NAME)")
    p.add_argument("--threshold", type=check.non_negative, default=data_drift.DEFAULT_THRESHOLD,
                   help="centroid cosine distance above which inputs drifted (default 0.25)")
    p.add_argument("--alpha", type=check.probability, default=data_drift.DEFAULT_ALPHA)
    p.add_argument("--permutations", type=check.positive_int, default=data_drift.DEFAULT_PERMUTATIONS)
    p.add_argument("--seed", type=check.integer(), default=0)
    p.add_argument("--max-tokens", type=check.positive_int, default=128,
                   help="tokens of each input that are embedded (default 128)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    drift = sub.add_parser("drift", help="concept and data drift checks, retraining decision",
                           epilog=CRONTAB, formatter_class=argparse.RawDescriptionHelpFormatter
                           ).add_subparsers(dest="action", required=True)
    p = drift.add_parser("concept", help="re-run a reference dataset; compare accuracy with the "
                                         "baseline")
    p.add_argument("target", metavar="MODEL_OR_VARIANT")
    p.add_argument("--reference", required=True, help="reference dataset")
    _concept_options(p)
    p.add_argument("--set-baseline", action="store_true",
                   help="record this run as the target's baseline on the reference")
    p.add_argument("--now", help="the time to record (ISO-8601; default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=concept_cmd)

    p = drift.add_parser("data", help="embeddings and category mix of recent vs reference inputs")
    _data_options(p)
    p.add_argument("--now", help="the time to record (ISO-8601; default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=data_cmd)

    p = drift.add_parser("retraining", help="the retraining table of a model, variant or log")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("--now", help="evaluate at this time (ISO-8601; default: now)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=retraining_cmd)

    schedule = drift.add_parser("schedule", help="add or update a scheduled check"
                                ).add_subparsers(dest="kind", required=True)
    p = schedule.add_parser("concept", help="schedule a concept check")
    p.add_argument("target", metavar="MODEL_OR_VARIANT")
    p.add_argument("--reference", required=True)
    _concept_options(p)
    p.add_argument("--every", required=True, type=_every, help="period: 24h, 2d, 1w, 30m")
    p.set_defaults(func=schedule_cmd)
    p = schedule.add_parser("data", help="schedule a data check")
    _data_options(p)
    p.add_argument("--every", required=True, type=_every, help="period: 24h, 2d, 1w, 30m")
    p.set_defaults(func=schedule_cmd)

    p = drift.add_parser("unschedule", help="remove a scheduled check")
    p.add_argument("schedule_id", type=check.positive_int, metavar="ID")
    p.set_defaults(func=unschedule_cmd)

    p = drift.add_parser("list", help="scheduled checks and the check history")
    p.add_argument("--limit", type=check.positive_int, default=20, help="newest N checks")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=list_cmd)

    p = drift.add_parser("run-due", help="run every scheduled check that is due (for cron)",
                         epilog=CRONTAB, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--now", help="run as if it were this time (ISO-8601)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_due_cmd)


def _every(text: str) -> float:
    try:
        return parse_every(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _now(text: str | None) -> datetime:
    return parse_now(text) or datetime.now(timezone.utc)


# -- concept drift ----------------------------------------------------------------------------
def resolve_variant(ws: OpenedWorkspace, ref: str, *, create: bool = True) -> Variant:
    """``variant:NAME``, ``model:ID``, a variant name, or a model id (its default variant, named
    after it, made when missing and ``create``)."""
    kind, sep, name = ref.partition(":")
    if sep and kind == "variant":
        return ws.store.get_variant(name)
    if not (sep and kind == "model"):
        name = ref
        try:
            return ws.store.get_variant(name)
        except NotFound:
            pass
    try:
        ws.store.get_model(name)
    except NotFound:
        raise NotFound(f"{ref!r} is neither a variant nor a model id (see `workbench variants "
                       "list` and `workbench models list`)") from None
    try:
        return ws.store.get_variant(name)
    except NotFound:
        if not create:
            raise
    return ws.store.create_variant(name, name)


def _replay_reference(ws: OpenedWorkspace, variant: Variant, dataset: dict, options: dict,
                      now: datetime, quiet: bool) -> int:
    """Run the reference through the variant in a one-arm shadow experiment; its id."""
    name = f"drift check: concept {variant.name} on {dataset['name']} ({iso(now)})"
    exp = ws.store.create_experiment(name, dataset["id"], {"A": variant.id}, mode="shadow",
                                     item_limit=options.get("limit"))
    job = Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs",
                 concurrency=options.get("concurrency"), command="workbench drift concept")
    bar = None if quiet else ProgressBar()
    progress = None
    for progress in job.run():
        if bar:
            bar.update(progress.done, progress.total, progress.elapsed_s, progress.eta_s,
                       f"errors {progress.errors}")
    if bar:
        bar.finish()
    if progress is None or progress.stopped_reason or not progress.finished:
        reason = progress.stopped_reason if progress else "nothing ran"
        raise DriftRunError(f"the reference replay (experiment {exp.id}) stopped: {reason}")
    ws.store.set_experiment(exp.id, status="completed", completed_at=utcnow())
    return exp.id


def run_concept_check(ws: OpenedWorkspace, target_ref: str, reference: str, options: dict,
                      now: datetime, *, quiet: bool = False) -> concept_drift.ConceptCheck:
    """Re-run ``reference`` through the target and judge it against the baseline."""
    ws.store.require_writable()
    variant = resolve_variant(ws, target_ref)
    dataset = ws.store.get_dataset(reference)
    other = resolve_variant(ws, options["baseline_of"], create=False) \
        if options.get("baseline_of") else None
    exp_id = _replay_reference(ws, variant, dataset, options, now, quiet)
    current = concept_drift.run_outcomes(ws.store, exp_id, variant.id,
                                         source=f"drift replay, experiment {exp_id}")
    return concept_drift.record_concept_check(
        ws.store, target=f"variant:{variant.name}", reference=dataset["name"], current=current,
        variant_id=variant.id, dataset_id=dataset["id"],
        baseline_of=f"variant:{other.name}" if other else None,
        baseline_variant_id=other.id if other else None,
        set_baseline=bool(options.get("set_baseline")),
        threshold=options.get("threshold", concept_drift.DEFAULT_DROP_POINTS),
        alpha=options.get("alpha", concept_drift.DEFAULT_ALPHA), now=now)


def _concept_options_of(args) -> dict:
    return {"limit": args.limit, "baseline_of": args.baseline_of, "threshold": args.threshold,
            "alpha": args.alpha, "concurrency": args.concurrency}


def _print_concept(check: concept_drift.ConceptCheck) -> None:
    cur, base, comp = check.current, check.baseline, check.comparison
    rows = [("check", check.id), ("target", check.target), ("reference", check.reference),
            ("items counted", f"{cur['n']} ({cur['uncounted']} without a reference severity, "
                              f"{cur['failed']} failed runs counted wrong)"),
            ("accuracy now", f"{cur['accuracy']:.1%} ({cur['correct']}/{cur['n']})"),
            ("baseline", f"{base['owner']}: {base['source']}")]
    if comp:
        rows += [("baseline accuracy", f"{comp['baseline_accuracy']:.1%} on {comp['n_paired']} "
                                       "paired items"),
                 ("drop", f"{comp['drop_points']:.1f} points (threshold {check.threshold:g}); "
                          f"now - baseline 95% CI {comp['ci_points'][0]:.1f} to "
                          f"{comp['ci_points'][1]:.1f}"),
                 ("test", f"{comp['test']}: p = {comp['p_value']:.3g} ({comp['baseline_only']} "
                          f"right only at baseline, {comp['current_only']} right only now)"),
                 ("drifted", "yes" if check.drifted else "no")]
    else:
        rows.append(("drifted", "- (this check is the baseline)"))
    print_fields(rows)
    for note in check.notes:
        print(f"note: {cell(note)}")
    if check.alert:
        state = " (throttled: already raised within the hour)" if check.alert.throttled else ""
        print(f"alert {check.alert.severity}: {cell(check.alert.message)}{state}")


def concept_cmd(ws: OpenedWorkspace, args) -> int:
    options = {**_concept_options_of(args), "set_baseline": args.set_baseline}
    try:
        result = run_concept_check(ws, args.target, args.reference, options, _now(args.now),
                                   quiet=args.json)
    except DriftRunError as exc:
        return fail(exc)
    print_json(result.to_dict()) if args.json else _print_concept(result)
    return 0


# -- data drift -------------------------------------------------------------------------------
def _recent_dataset(ws: OpenedWorkspace, ref: str) -> tuple[dict, str]:
    """The recent inputs' dataset and its default target key (logs:NAME or dataset:NAME)."""
    kind, sep, name = ref.partition(":")
    dataset = ws.store.get_dataset(name if sep and kind in ("logs", "dataset") else ref)
    logged = ws.store.rows("SELECT 1 FROM observations WHERE dataset_id = ? LIMIT 1",
                           [dataset["id"]])
    return dataset, f"{'logs' if logged else 'dataset'}:{dataset['name']}"


def run_data_check(ws: OpenedWorkspace, reference: str, recent: str, options: dict,
                   now: datetime) -> data_drift.DataCheck:
    """Embed both sides (plus the background texts) and judge and store the data check."""
    ws.store.require_writable()
    ref_ds = ws.store.get_dataset(reference)
    new_ds, default_target = _recent_dataset(ws, recent)
    model = ws.store.get_model(options.get("model") or BUNDLED_ID)
    seed, sample = options.get("seed", 0), options.get("sample")
    ref_items = data_drift.sample_items(ws.store, ref_ds["id"], sample, seed=seed)
    new_items = data_drift.sample_items(ws.store, new_ds["id"], sample, newest=True)
    texts = ([i.prompt_text for i in ref_items] + [i.prompt_text for i in new_items]
             + list(data_drift.BACKGROUND_TEXTS))
    spec = EmbeddingSpec(model.path, max_tokens=options.get("max_tokens", 128),
                         n_gpu_layers=model.n_gpu_layers, n_threads=model.n_threads)
    try:
        vectors = embed_texts(spec, texts, log_path=ws.workspace.root / "logs" / "embeddings.log")
    except EmbeddingError as exc:
        raise DriftRunError(str(exc)) from None
    n_ref, n_new = len(ref_items), len(new_items)
    result = data_drift.judge_data_drift(
        vectors[:n_ref], vectors[n_ref:n_ref + n_new], background=vectors[n_ref + n_new:],
        reference_categories=[i.category for i in ref_items],
        recent_categories=[i.category for i in new_items],
        threshold=options.get("threshold", data_drift.DEFAULT_THRESHOLD),
        alpha=options.get("alpha", data_drift.DEFAULT_ALPHA),
        n_permutations=options.get("permutations", data_drift.DEFAULT_PERMUTATIONS), seed=seed)
    details = {"recent": new_ds["name"], "model": model.id, "max_tokens": spec.max_tokens,
               "sample": sample, "reference_keys": [i.key for i in ref_items],
               "recent_keys": [i.key for i in new_items]}
    return data_drift.record_data_check(ws.store, result, target=options.get("target")
                                        or default_target, reference=ref_ds["name"],
                                        details=details, now=now)


def _data_options_of(args) -> dict:
    return {"recent": args.recent, "model": args.model, "sample": args.sample,
            "target": args.target, "threshold": args.threshold, "alpha": args.alpha,
            "permutations": args.permutations, "seed": args.seed, "max_tokens": args.max_tokens}


def _print_data(check: data_drift.DataCheck) -> None:
    r, mix = check.result, check.result.categories
    print_fields([
        ("check", check.id), ("target", check.target), ("reference", check.reference),
        ("inputs", f"{r.n_reference} reference vs {r.n_recent} recent "
                   f"(embedded by {check.details['model']})"),
        ("centroid distance", f"{r.distance:.4f} (cosine, centred on the {r.centre}; "
                              f"threshold {r.threshold:g})"),
        ("permutation test", f"p = {r.p_value:.3g} over {r.n_permutations} shuffles (shuffled "
                             f"distances: mean {r.null_mean:.4f}, 95th pct {r.null_p95:.4f})"),
        ("category mix", f"chi-square {mix['statistic']:.2f}, dof {mix['dof']}, "
                         f"p = {mix['p_value']:.3g}" if mix else None),
        ("drifted", "yes" if r.drifted else "no")])
    for note in mix.get("notes", []):
        print(f"note: {cell(note)}")
    if check.alert:
        state = " (throttled: already raised within the hour)" if check.alert.throttled else ""
        print(f"alert {check.alert.severity}: {cell(check.alert.message)}{state}")


def data_cmd(ws: OpenedWorkspace, args) -> int:
    try:
        result = run_data_check(ws, args.reference, args.recent, _data_options_of(args),
                                _now(args.now))
    except DriftRunError as exc:
        return fail(exc)
    print_json(result.to_dict()) if args.json else _print_data(result)
    return 0


# -- retraining, schedules, history -----------------------------------------------------------
def retraining_cmd(ws: OpenedWorkspace, args) -> int:
    decision = retraining_decision(ws.store, args.target, now=_now(args.now))
    if args.json:
        print_json(decision.to_dict())
        return 0

    def shown(c, value):
        if value is None:
            return "unknown"
        return f"{value * 100:.1f}%" if c.unit == "%" else f"{value:.1f} {c.unit}"

    print(f"retraining for {cell(decision.target)} at {decision.evaluated_at}: "
          f"{'recommended' if decision.retrain else 'not needed'}")
    print_table(("criterion", "value", "threshold", "met", "detail"),
                ((c.name, shown(c, c.value), f"{c.comparison} {shown(c, c.threshold)}",
                  "yes" if c.met else ("unknown" if not c.known else "no"), c.detail)
                 for c in decision.criteria))
    return 0


def schedule_cmd(ws: OpenedWorkspace, args) -> int:
    ws.store.require_writable()
    if args.kind == "concept":
        target = f"variant:{resolve_variant(ws, args.target).name}"
        reference = ws.store.get_dataset(args.reference)["name"]
        options = _concept_options_of(args)
        if args.baseline_of:
            resolve_variant(ws, args.baseline_of, create=False)
    else:
        reference = ws.store.get_dataset(args.reference)["name"]
        target = args.target or _recent_dataset(ws, args.recent)[1]
        options = _data_options_of(args)
        ws.store.get_model(args.model or BUNDLED_ID)
    saved = save_schedule(ws.store, args.kind, target, reference, args.every, options)
    print(f"schedule {saved.id}: {saved.kind} check of {cell(saved.target)} on "
          f"{cell(saved.reference)} every {saved.every_hours:g} h")
    return 0


def unschedule_cmd(ws: OpenedWorkspace, args) -> int:
    ws.store.require_writable()
    if not remove_schedule(ws.store, args.schedule_id):
        return fail(f"no drift schedule {args.schedule_id} (see `workbench drift list`)")
    print(f"schedule {args.schedule_id} removed")
    return 0


def list_cmd(ws: OpenedWorkspace, args) -> int:
    schedules, checks = list_schedules(ws.store), check_history(ws.store, limit=args.limit)
    if args.json:
        print_json({"schedules": [s.to_dict() for s in schedules], "checks": checks})
        return 0
    print("schedules:" if schedules else "no scheduled checks")
    if schedules:
        print_table(("id", "kind", "target", "reference", "every", "last run"),
                    ((s.id, s.kind, s.target, s.reference, f"{s.every_hours:g} h", s.last_run_at)
                     for s in schedules))
    print()
    print("checks (newest first):" if checks else "no drift checks yet")
    if checks:
        print_table(("id", "time", "kind", "target", "reference", "statistic", "p", "drifted"),
                    ((c["id"], c["created_at"], c["kind"], c["target"], c["reference"],
                      f"{c['statistic']:.3f}" if c["statistic"] is not None else None,
                      f"{c['p_value']:.3g}" if c["p_value"] is not None else None,
                      "baseline" if c["baseline_role"] else ("yes" if c["drifted"] else "no"))
                     for c in checks))
    return 0


def run_due_cmd(ws: OpenedWorkspace, args) -> int:
    now = _now(args.now)
    due = due_schedules(ws.store, now)
    results, failed = [], 0
    if due:
        ws.store.require_writable()
    for schedule in due:
        options = dict(schedule.options)
        try:
            if schedule.kind == "concept":
                checked = run_concept_check(ws, schedule.target, schedule.reference, options,
                                            now, quiet=True)
            else:
                checked = run_data_check(ws, schedule.reference, options.pop("recent"),
                                         {**options, "target": schedule.target}, now)
        except (DriftRunError, NotFound, ValueError, OSError) as exc:
            failed += 1
            results.append({"schedule": schedule.id, "kind": schedule.kind, "error": str(exc)})
            print(f"error: schedule {schedule.id}: {one_line(exc)}", file=sys.stderr)
            continue
        mark_run(ws.store, schedule.id, now)
        results.append({"schedule": schedule.id, "kind": schedule.kind, "check": checked.id,
                        "target": schedule.target, "drifted": checked.drifted,
                        "alert": checked.alert.to_dict() if checked.alert else None})
    if args.json:
        print_json({"now": iso(now), "due": len(due), "failed": failed, "results": results})
    elif not due:
        print(f"nothing due at {iso(now)}")
    else:
        for r in results:
            if "check" in r:
                print(f"schedule {r['schedule']}: {r['kind']} check {r['check']} of "
                      f"{cell(r['target'])}: {'DRIFTED' if r['drifted'] else 'no drift'}")
    return 1 if failed else 0
