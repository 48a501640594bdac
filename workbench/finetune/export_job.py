"""After training: merge, write GGUF + adapter GGUF, quantize, check parity, register, A/B.

``run_export`` launches ``python -m workbench.finetune.export_job --db DB --job ID`` so that the
caller (the TUI or the CLI) never loads torch or llama.cpp itself; the child does the work with
``export_here`` and prints one JSON summary as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from ..private_files import open_private
from ..store import Experiment, NotFound, Store
from .jobs import get_job


class ExportError(RuntimeError):
    """The export pipeline could not run; the message says which step failed and why."""


def export_here(store: Store, job_id: int, *, quantize_type: str = "q4_k_m",
                outtype: str = "f16") -> dict:
    """The whole pipeline in this process (the child of ``run_export``)."""
    from ..export.pipeline import export_finetune

    job = get_job(store, job_id)
    adapter_dir = Path(job["output_dir"]) / "adapter"
    if job["status"] != "completed" or not adapter_dir.is_dir():
        raise ExportError(f"job {job_id} has no finished adapter (status {job['status']})")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in job["name"]).strip("-")
    summary = export_finetune(
        job["base_path"], adapter_dir, Path(job["output_dir"]) / "export", name=name,
        outtype=outtype, quantizations=(quantize_type,), store=store,
        base_model_id=job["base_model_id"], job=job_id, dataset=job["dataset_id"],
        progress=lambda step, fraction: print(f"export: {step} ({fraction:.0%})", file=sys.stderr,
                                              flush=True))
    quantized = summary["quantized"][quantize_type]["output"]
    with store.db.atomic():
        store.db["finetune_jobs"].update(job_id, {
            "merged_path": str(summary["merged"]["path"]), "gguf_path": str(quantized),
            "adapter_gguf_path": str(summary["adapter"]["path"])})
    # An advisory gate below its threshold is a warning shown with the result, not a failure.
    summary["parity_passed"] = all(p.get("verdict", "passed" if p["passed"] else "failed")
                                   != "failed" for p in summary["parity"])
    summary["parity_advisory"] = [p["model"] for p in summary["parity"]
                                  if p.get("verdict") == "advisory"]
    return summary


def run_export(store: Store, job_id: int, *, quantize_type: str = "q4_k_m",
               outtype: str = "f16", on_start=None) -> dict:
    """Run the pipeline in a child process (argv list); its log goes to the job's log file.

    ``on_start(process)`` receives the child as soon as it runs, so a UI can stop it on exit.
    """
    job = get_job(store, job_id)
    argv = [sys.executable, "-m", "workbench.finetune.export_job", "--db", str(store.path),
            "--job", str(job_id), "--quantize", quantize_type, "--outtype", outtype]
    with open_private(job["log_path"], "a") as log:
        log.write(f"\n== export: {' '.join(argv[1:])}\n")
        log.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                env={**os.environ, "HF_HUB_OFFLINE": "1",
                                     "TRANSFORMERS_OFFLINE": "1"})
        if on_start:
            on_start(proc)
        stdout, _ = proc.communicate()
    lines = stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        summary = {}
    if proc.returncode != 0 or "error" in summary or not summary:
        raise ExportError(summary.get("error") or f"export failed (exit {proc.returncode}); "
                          f"see {job['log_path']}")
    return summary


def create_ab(store: Store, model_id: str, *, production: str, dataset: str | int,
              limit: int | None = None) -> Experiment:
    """A shadow experiment: the production variant vs the same settings on ``model_id``."""
    prod = store.get_variant(production)
    store.get_model(model_id)
    name = f"{prod.name}@{model_id}"
    try:
        candidate = store.get_variant(name)
    except NotFound:
        candidate = store.create_variant(name, model_id, system_prompt=prod.system_prompt,
                                         temperature=prod.temperature, top_p=prod.top_p,
                                         max_tokens=prod.max_tokens, seed=prod.seed,
                                         json_schema=prod.json_schema)
    dataset_id = store.get_dataset(dataset)["id"]
    return store.create_experiment(f"{prod.name} vs {model_id} (fine-tune A/B)", dataset_id,
                                   {"A": prod.id, "B": candidate.id}, mode="shadow",
                                   item_limit=limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="export a finished fine-tune job")
    parser.add_argument("--db", required=True)
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--quantize", default="q4_k_m")
    parser.add_argument("--outtype", default="f16")
    args = parser.parse_args(argv)
    store = Store(args.db)
    try:
        summary = export_here(store, args.job, quantize_type=args.quantize, outtype=args.outtype)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as JSON
        import traceback

        traceback.print_exc()
        summary = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(summary, default=str), flush=True)
    return 1 if "error" in summary else 0


if __name__ == "__main__":
    sys.exit(main())
