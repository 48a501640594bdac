"""`workbench finetune ...` and `workbench quantize`: the fine-tune -> GGUF -> A/B loop, headless."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from ..finetune import jobs
from ..finetune.dataset_builder import FORMATS, LEVELS, build_examples, export_split
from ..finetune.settings import ENGINES, LoraSettings
from ..workspace import OpenedWorkspace
from . import fail, validators as check
from .output import cell, print_fields, print_json, print_table, print_text, run_with_log_progress

QUANT_TYPES = ("q8_0", "q5_k_m", "q4_k_m", "f16")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    ft = sub.add_parser("finetune", help="LoRA fine-tunes: data, jobs, export, A/B").add_subparsers(
        dest="action", required=True)
    p = ft.add_parser("data", help="build train/validation JSONL from a dataset, its runs and ratings")
    p.add_argument("dataset")
    p.add_argument("--out", required=True, type=check.output_folder,
                   help="folder for train.jsonl and validation.jsonl")
    p.add_argument("--min-quality", choices=LEVELS, default="good")
    p.add_argument("--category", action="append", dest="categories", help="keep only this category")
    p.add_argument("--balance", action="store_true", help="same number of examples per category")
    p.add_argument("--val-fraction", type=check.number(0.0, below=1.0), default=0.1)
    p.add_argument("--seed", type=check.integer(), default=0)
    p.add_argument("--format", choices=FORMATS, default="openai")
    p.add_argument("--no-references", action="store_true", help="use replayed answers only")
    p.set_defaults(func=finetune_data)

    p = ft.add_parser("start", help="start a LoRA fine-tune job (a subprocess)")
    p.add_argument("--base", required=True, help="registered model id, GGUF file or HF folder")
    p.add_argument("--train", required=True, type=check.readable_file,
                   help="chat JSONL (see `finetune data`)")
    p.add_argument("--val", type=check.readable_file, help="validation chat JSONL")
    p.add_argument("--name", type=check.name)
    defaults = LoraSettings()
    for name, kind in (("rank", check.positive_int), ("alpha", check.positive_int),
                       ("dropout", check.number(0.0, below=1.0)),
                       ("learning-rate", check.positive), ("epochs", check.positive),
                       ("max-steps", check.positive_int), ("seq-len", check.integer(16)),
                       ("batch-size", check.positive_int), ("grad-accum", check.positive_int),
                       ("seed", check.integer()), ("eval-every", check.positive_int),
                       ("save-every", check.positive_int), ("warmup-steps", check.non_negative_int)):
        p.add_argument(f"--{name}", type=kind, default=getattr(defaults, name.replace("-", "_")))
    p.add_argument("--target-modules", default=",".join(defaults.target_modules))
    p.add_argument("--engine", choices=ENGINES, default="auto")
    p.add_argument("--detach", action="store_true", help="return at once; the job keeps running")
    p.set_defaults(func=finetune_start)

    p = ft.add_parser("list", help="fine-tune jobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=finetune_list)
    p = ft.add_parser("show", help="one job: settings, metrics, log tail")
    p.add_argument("job", type=check.positive_int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=finetune_show)
    p = ft.add_parser("cancel", help="stop a running job (it saves a checkpoint)")
    p.add_argument("job", type=check.positive_int)
    p.set_defaults(func=finetune_cancel)
    p = ft.add_parser("resume", help="continue a cancelled or failed job from its checkpoint")
    p.add_argument("job", type=check.positive_int)
    p.add_argument("--detach", action="store_true")
    p.set_defaults(func=finetune_resume)
    p = ft.add_parser("export", help="merge, write GGUF + adapter GGUF, quantize, check parity, register")
    p.add_argument("job", type=check.positive_int)
    p.add_argument("--quantize", choices=QUANT_TYPES, default="q4_k_m")
    p.add_argument("--outtype", choices=("f16", "f32"), default="f16")
    p.add_argument("--json", action="store_true", help="the raw summary instead of tables")
    p.set_defaults(func=finetune_export)
    p = ft.add_parser("ab", help="create a shadow experiment: production variant vs the new model")
    p.add_argument("model", help="the candidate model id (e.g. from `finetune export`)")
    p.add_argument("--production", required=True, help="production variant name")
    p.add_argument("--dataset", required=True)
    p.add_argument("--limit", type=check.positive_int)
    p.add_argument("--run", action="store_true", help="start the replay now")
    p.add_argument("--concurrency", type=check.positive_int, metavar="N",
                   help="with --run: requests in flight per arm")
    p.set_defaults(func=finetune_ab)

    p = sub.add_parser("quantize", help="quantize a GGUF with llama.cpp (in a subprocess)")
    p.add_argument("input", type=check.readable_file, help="a GGUF in f16/f32 (or q8_0)")
    p.add_argument("output", type=check.writable_file)
    p.add_argument("--type", choices=QUANT_TYPES, default="q4_k_m", dest="qtype")
    p.add_argument("--register", action="store_true", help="add the result to the model registry")
    p.add_argument("--json", action="store_true", help="the raw result instead of a table")
    p.set_defaults(func=quantize)


def finetune_data(ws: OpenedWorkspace, args) -> int:
    result = build_examples(ws.store, args.dataset, min_quality=args.min_quality,
                            categories=args.categories, balance=args.balance,
                            val_fraction=args.val_fraction, seed=args.seed,
                            include_references=not args.no_references)
    files = export_split(result, args.out, args.format)
    print(cell(result.summary()))
    print(f"wrote {cell(files['train'])} and {cell(files['validation'])} ({args.format} format)")
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
    print(f"job {job_id}: {job['status']}" + (f" ({cell(job['error'])})" if job["error"] else ""))
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
    print(f"job {job_id} started (pid {process.pid}); "
          f"log: {cell(jobs.get_job(ws.store, job_id)['log_path'])}", file=sys.stderr)
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
    print_fields((key, job[key]) for key in (
        "id", "name", "status", "engine", "base_path", "output_dir", "checkpoint", "gguf_path",
        "adapter_gguf_path", "error", "config"))
    if data["metrics"]:
        last = data["metrics"][-1]
        print_fields([("last step", f"{last['step']} loss {last['loss']} val {last['eval_loss']}")])
    print_text("\n".join(map(str, data["log_tail"][-10:])))
    return 0


def finetune_cancel(ws: OpenedWorkspace, args) -> int:
    job = jobs.cancel(ws.store, args.job)
    print(f"job {args.job}: {job['status']} (a running job saves a checkpoint, then stops)")
    return 0


def finetune_export(ws: OpenedWorkspace, args) -> int:
    from ..finetune.export_job import run_export

    job = jobs.get_job(ws.store, args.job)
    if job["status"] != "completed":
        return fail(f"job {args.job} is {job['status']}; only a completed job can be exported")
    print(f"exporting job {args.job}; log: {cell(job['log_path'])}", file=sys.stderr)
    summary = run_with_log_progress(
        lambda: run_export(ws.store, args.job, quantize_type=args.quantize, outtype=args.outtype),
        job["log_path"], _export_progress)
    if args.json:
        print_json(summary)
    else:
        _print_export(summary)
    return 0 if summary.get("parity_passed", True) else 1


_EXPORT_STEP = re.compile(r"export: (\S+) \((\d+)%\)")
_QUANT_TENSOR = re.compile(r"\[\s*(\d+)/\s*(\d+)\]\s+(\S+)")


def _export_progress(text: str):
    """The last `export: STEP (N%)` line the export child logged, as (done, 100, step)."""
    steps = _EXPORT_STEP.findall(text)
    return (int(steps[-1][1]), 100, steps[-1][0]) if steps else None


def _quantize_progress(text: str):
    """The last `[ i/ n] tensor` line llama.cpp logged, as (i, n, tensor)."""
    seen = _QUANT_TENSOR.findall(text)
    return (int(seen[-1][0]), int(seen[-1][1]), seen[-1][2]) if seen else None


def _print_export(summary: dict) -> None:
    from ..formatting import file_size

    files = [("merged", (summary.get("merged") or {}).get("path")),
             ("adapter", (summary.get("adapter") or {}).get("path"))]
    files += [(f"quantized {q}", info.get("output"))
              for q, info in (summary.get("quantized") or {}).items()]
    print_table(("product", "file", "size"),
                ((kind, path, file_size(Path(path).stat().st_size) if path and Path(path).is_file()
                  else None) for kind, path in files if path))
    if summary.get("parity"):
        print()
        print_table(("model", "parity check", "result", "agreement", "threshold",
                     "greedy prefix", "exact", "prompts"),
                    ((p.get("model"), p.get("kind"),
                      p.get("verdict") or ("passed" if p.get("passed") else "FAILED"),
                      p.get("agreement", p.get("token_agreement")), p.get("threshold"),
                      p.get("token_agreement"), p.get("exact_matches"),
                      p.get("n_prompts")) for p in summary["parity"]))
        print("agreement: teacher-forced top-1 for two GGUFs, greedy common prefix otherwise")
        if summary.get("parity_advisory"):
            print("advisory: below the usual agreement for its quantization (a warning, not a "
                  "failure): " + ", ".join(summary["parity_advisory"]))
    print(f"registered: {cell(', '.join(map(str, summary.get('models') or [])) or 'nothing')}")


def finetune_ab(ws: OpenedWorkspace, args) -> int:
    from ..finetune.export_job import create_ab

    exp = create_ab(ws.store, args.model, production=args.production, dataset=args.dataset,
                    limit=args.limit)
    print(f"experiment {exp.id}: {cell(exp.name)}")
    if args.run:
        from .experiments import replay

        args.resume, args.retry_errors = str(exp.id), False
        return replay(ws, args)
    print(f"run it with: workbench replay --resume {exp.id}")
    return 0


def quantize(ws: OpenedWorkspace, args) -> int:
    from ..export.quantize import quantize as run_quantize

    from ..export.quantize import QuantizeError

    if args.input.resolve() == args.output.resolve():
        return fail("quantize: INPUT and OUTPUT are the same file")
    log_path = ws.workspace.root / "logs" / f"quantize-{args.output.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"quantizing {cell(args.input.name)} to {args.qtype}; log: {cell(log_path)}",
          file=sys.stderr)
    try:
        result = run_with_log_progress(
            lambda: run_quantize(args.input, args.output, args.qtype, log_path=log_path),
            log_path, _quantize_progress)
    except QuantizeError as exc:  # llama.cpp's reason is the log's last line
        tail = log_path.read_text("utf-8", "replace").strip().splitlines()[-1:]
        reason = tail[0].rsplit(":", 1)[-1].strip() if tail else ""
        return fail(f"{exc}" + (f" ({reason})" if reason and reason not in str(exc) else ""))
    if args.register:
        model = ws.registry.add(args.output, source="quantized",
                                lineage={"quantized_from": str(Path(args.input).resolve()),
                                         "quantization": args.qtype})
        result["model_id"] = model.id
    if args.json:
        print_json(result)
        return 0
    from ..formatting import file_size

    print_table(("input", "output", "type", "size before", "size after", "ratio", "seconds",
                 "registered as"),
                [(Path(result["input"]).name, result["output"], result["type"],
                  file_size(result["input_bytes"]), file_size(result["output_bytes"]),
                  result["ratio"], result["seconds"], result.get("model_id"))])
    return 0
