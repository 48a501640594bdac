"""`workbench finetune ...` and `workbench quantize`: the fine-tune -> GGUF -> A/B loop, headless."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..finetune import jobs
from ..finetune.dataset_builder import FORMATS, LEVELS, build_examples, export_split
from ..finetune.settings import ENGINES, LoraSettings
from ..workspace import OpenedWorkspace
from .output import print_json, print_table

QUANT_TYPES = ("q8_0", "q5_k_m", "q4_k_m", "f16")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser("finetune", help="LoRA fine-tunes: data, jobs, export, A/B").add_subparsers(
        dest="action", required=True)
    p = ft.add_parser("data", help="build train/validation JSONL from a dataset, its runs and ratings")
    p.add_argument("dataset")
    p.add_argument("--out", required=True, help="folder for train.jsonl and validation.jsonl")
    p.add_argument("--min-quality", choices=LEVELS, default="good")
    p.add_argument("--category", action="append", dest="categories", help="keep only this category")
    p.add_argument("--balance", action="store_true", help="same number of examples per category")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=FORMATS, default="openai")
    p.add_argument("--no-references", action="store_true", help="use replayed answers only")
    p.set_defaults(func=finetune_data)

    p = ft.add_parser("start", help="start a LoRA fine-tune job (a subprocess)")
    p.add_argument("--base", required=True, help="registered model id, GGUF file or HF folder")
    p.add_argument("--train", required=True, help="chat JSONL (see `finetune data`)")
    p.add_argument("--val", help="validation chat JSONL")
    p.add_argument("--name")
    defaults = LoraSettings()
    for name, kind in (("rank", int), ("alpha", int), ("dropout", float),
                       ("learning-rate", float), ("epochs", float), ("max-steps", int),
                       ("seq-len", int), ("batch-size", int), ("grad-accum", int), ("seed", int),
                       ("eval-every", int), ("save-every", int), ("warmup-steps", int)):
        p.add_argument(f"--{name}", type=kind, default=getattr(defaults, name.replace("-", "_")))
    p.add_argument("--target-modules", default=",".join(defaults.target_modules))
    p.add_argument("--engine", choices=ENGINES, default="auto")
    p.add_argument("--detach", action="store_true", help="return at once; the job keeps running")
    p.set_defaults(func=finetune_start)

    p = ft.add_parser("list", help="fine-tune jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=finetune_list)
    p = ft.add_parser("show", help="one job: settings, metrics, log tail")
    p.add_argument("job", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=finetune_show)
    p = ft.add_parser("cancel", help="stop a running job (it saves a checkpoint)")
    p.add_argument("job", type=int)
    p.set_defaults(func=finetune_cancel)
    p = ft.add_parser("resume", help="continue a cancelled or failed job from its checkpoint")
    p.add_argument("job", type=int)
    p.add_argument("--detach", action="store_true")
    p.set_defaults(func=finetune_resume)
    p = ft.add_parser("export", help="merge, write GGUF + adapter GGUF, quantize, check parity, register")
    p.add_argument("job", type=int)
    p.add_argument("--quantize", choices=QUANT_TYPES, default="q4_k_m")
    p.add_argument("--outtype", choices=("f16", "f32"), default="f16")
    p.set_defaults(func=finetune_export)
    p = ft.add_parser("ab", help="create a shadow experiment: production variant vs the new model")
    p.add_argument("model", help="the candidate model id (e.g. from `finetune export`)")
    p.add_argument("--production", required=True, help="production variant name")
    p.add_argument("--dataset", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--run", action="store_true", help="start the replay now")
    p.set_defaults(func=finetune_ab)

    p = sub.add_parser("quantize", help="quantize a GGUF with llama.cpp (in a subprocess)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--type", choices=QUANT_TYPES, default="q4_k_m", dest="qtype")
    p.add_argument("--register", action="store_true", help="add the result to the model registry")
    p.set_defaults(func=quantize)


def finetune_data(ws: OpenedWorkspace, args) -> int:
    result = build_examples(ws.store, args.dataset, min_quality=args.min_quality,
                            categories=args.categories, balance=args.balance,
                            val_fraction=args.val_fraction, seed=args.seed,
                            include_references=not args.no_references)
    files = export_split(result, args.out, args.format)
    print(result.summary())
    print(f"wrote {files['train']} and {files['validation']} ({args.format} format)")
    return 0 if result.train else 1


def _follow(ws: OpenedWorkspace, job_id: int, process) -> int:
    """Print metrics until the job ends; Ctrl-C cancels it (a checkpoint is kept)."""
    seen = 0
    try:
        while process.poll() is None:
            time.sleep(1.0)
            rows = jobs.metrics(ws.store, job_id)
            for row in rows[seen:]:
                parts = [f"step {row['step']}"]
                for key, label, spec in (("loss", "loss", ".4f"), ("eval_loss", "val", ".4f"),
                                         ("learning_rate", "lr", ".2e"), ("tokens_per_s", "tok/s", ".0f")):
                    if row[key] is not None:
                        parts.append(f"{label} {row[key]:{spec}}")
                print("  ".join(parts), file=sys.stderr)
            seen = len(rows)
    except KeyboardInterrupt:
        jobs.cancel(ws.store, job_id)
        process.wait()
    job = jobs.refresh(ws.store, job_id)
    print(f"job {job_id}: {job['status']}" + (f" ({job['error']})" if job["error"] else ""))
    if job["status"] in ("cancelled", "failed"):
        print(f"resume it with: workbench finetune resume {job_id}", file=sys.stderr)
    return 0 if job["status"] == "completed" else 1


def finetune_start(ws: OpenedWorkspace, args) -> int:
    settings = LoraSettings(
        rank=args.rank, alpha=args.alpha, dropout=args.dropout, learning_rate=args.learning_rate,
        epochs=args.epochs, max_steps=args.max_steps, seq_len=args.seq_len,
        batch_size=args.batch_size, grad_accum=args.grad_accum, seed=args.seed,
        eval_every=args.eval_every, save_every=args.save_every, warmup_steps=args.warmup_steps,
        target_modules=[m.strip() for m in args.target_modules.split(",") if m.strip()],
        engine=args.engine)
    job_id = jobs.create_job(ws.store, ws.workspace, base=args.base, train_file=args.train,
                             val_file=args.val, settings=settings, name=args.name)
    process = jobs.launch(ws.store, job_id)
    print(f"job {job_id} started (pid {process.pid}); log: {jobs.get_job(ws.store, job_id)['log_path']}",
          file=sys.stderr)
    return 0 if args.detach else _follow(ws, job_id, process)


def finetune_resume(ws: OpenedWorkspace, args) -> int:
    process = jobs.launch(ws.store, args.job, resume=True)
    return 0 if args.detach else _follow(ws, args.job, process)


def finetune_list(ws: OpenedWorkspace, args) -> int:
    rows = jobs.list_jobs(ws.store)
    if args.json:
        print_json(rows)
        return 0
    print_table(("id", "name", "base", "engine", "status", "created", "gguf"),
                ((j["id"], j["name"], j["base_model_id"] or Path(j["base_path"]).name, j["engine"],
                  j["status"], j["created_at"][:19], j["gguf_path"]) for j in rows))
    return 0


def finetune_show(ws: OpenedWorkspace, args) -> int:
    job = jobs.refresh(ws.store, args.job)
    data = {**job, "metrics": jobs.metrics(ws.store, args.job), "log_tail": jobs.log_tail(job)}
    if args.json:
        print_json(data)
        return 0
    for key in ("id", "name", "status", "engine", "base_path", "output_dir", "checkpoint",
                "gguf_path", "adapter_gguf_path", "error"):
        print(f"{key:18} {job[key] if job[key] is not None else '-'}")
    print(f"{'config':18} {job['config']}")
    if data["metrics"]:
        last = data["metrics"][-1]
        print(f"{'last step':18} {last['step']} loss {last['loss']} val {last['eval_loss']}")
    print("\n".join(data["log_tail"][-10:]))
    return 0


def finetune_cancel(ws: OpenedWorkspace, args) -> int:
    job = jobs.cancel(ws.store, args.job)
    print(f"job {args.job}: {job['status']} (a running job saves a checkpoint, then stops)")
    return 0


def finetune_export(ws: OpenedWorkspace, args) -> int:
    from ..finetune.export_job import run_export

    summary = run_export(ws.store, args.job, quantize_type=args.quantize, outtype=args.outtype)
    print_json(summary)
    return 0 if summary.get("parity_passed", True) else 1


def finetune_ab(ws: OpenedWorkspace, args) -> int:
    from ..finetune.export_job import create_ab

    exp = create_ab(ws.store, args.model, production=args.production, dataset=args.dataset,
                    limit=args.limit)
    print(f"experiment {exp.id}: {exp.name}")
    if args.run:
        from .experiments import replay

        args.resume, args.retry_errors = str(exp.id), False
        return replay(ws, args)
    print(f"run it with: workbench replay --resume {exp.id}")
    return 0


def quantize(ws: OpenedWorkspace, args) -> int:
    from ..export.quantize import quantize as run_quantize

    result = run_quantize(args.input, args.output, args.qtype)
    if args.register:
        model = ws.registry.add(args.output, source="quantized",
                                lineage={"quantized_from": str(Path(args.input).resolve()),
                                         "quantization": args.qtype})
        result["model_id"] = model.id
    print_json(result)
    return 0
