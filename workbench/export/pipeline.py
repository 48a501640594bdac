"""Fine-tuned LoRA -> merged GGUF + adapter GGUF + quantized GGUFs, checked and registered.

Heavy (torch, transformers, a merged model in memory): run it inside a job subprocess, e.g.
``python -m workbench.export.pipeline --base BASE.gguf --adapter DIR --out DIR --name NAME
--db workbench.db``, which prints one JSON line. llama.cpp runs in worker / quantize processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

Progress = Callable[[str, float], None]


def export_finetune(base: str | Path, adapter_dir: str | Path, out_dir: str | Path, *,
                    name: str, outtype: str = "f16", quantizations: tuple[str, ...] = ("q4_k_m",),
                    write_adapter: bool = True, parity: bool = True, prompts: list | None = None,
                    max_new_tokens: int = 32, store=None, base_model_id: str | None = None,
                    job: Any = None, dataset: Any = None, n_threads: int | None = None,
                    hf_threshold: float = 0.9, quant_threshold: float | None = None,
                    progress: Progress | None = None) -> dict:
    """Merge ``adapter_dir`` into ``base`` (a GGUF), write, quantize, check parity, register.

    With a ``store`` the merged and quantized GGUFs are registered (ids ``name``, ``name-<q>``;
    the adapter GGUF is named in their lineage, as it is not a model) and every parity result
    is stored. ``hf_threshold`` guards the writer (transformers vs GGUF); each quantization has
    its own gate (``parity_gates``: a threshold, advisory for 4-bit types) unless
    ``quant_threshold`` fixes one for all (then gating).
    Returns paths, per-step seconds and parity summaries.
    """
    from .adapter_gguf import write_adapter_gguf
    from .gguf_writer import write_gguf
    from .hf_loader import load_merged_model, load_tokenizer
    from .lineage import register_product
    from .quantize import quantize

    from .hf_loader import is_gguf

    report = progress or (lambda step, fraction: None)
    base, out_dir = Path(base), Path(out_dir)
    if not is_gguf(base):
        raise ValueError(f"the base must be a GGUF file (its tokenizer is copied): {base}")
    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise ValueError(f"no PEFT adapter (adapter_config.json) in {adapter_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    out: dict[str, Any] = {"name": name, "timings": timings, "parity": [], "models": []}

    def timed(step: str, fraction: float, fn, *args, **kwargs):
        report(step, fraction)
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[step] = round(time.perf_counter() - started, 3)
        return value

    merged = timed("merge", 0.0, load_merged_model, base, adapter_dir)
    merged_path = out_dir / f"{name}.{outtype}.gguf"
    out["merged"] = timed("write_gguf", 0.3, write_gguf, merged, merged_path, base_gguf=base,
                          outtype=outtype, name=name)
    if write_adapter:
        out["adapter"] = timed("write_adapter", 0.4, write_adapter_gguf, adapter_dir,
                               out_dir / f"{name}.lora.gguf", base_gguf=base, name=f"{name}-lora")
    out["quantized"] = {}
    for i, qtype in enumerate(quantizations):
        out["quantized"][qtype] = timed(f"quantize_{qtype}", 0.5 + 0.1 * i, quantize, merged_path,
                                        out_dir / f"{name}.{qtype}.gguf", qtype, threads=n_threads)

    results = []
    if parity:
        from .parity import check_chat_template, check_gguf_parity, check_hf_vs_gguf
        from .parity_gates import gate_for

        tokenizer = load_tokenizer(base)
        kwargs = dict(max_new_tokens=max_new_tokens, n_threads=n_threads)
        results.append((name, timed("parity_hf", 0.7, check_hf_vs_gguf, merged, tokenizer,
                                    merged_path, prompts, threshold=hf_threshold, **kwargs)))
        results.append((name, timed("parity_template", 0.8, check_chat_template, base,
                                    merged_path, n_threads=n_threads)))
        for qtype, info in out["quantized"].items():
            gate = gate_for(qtype)
            result = timed(f"parity_{qtype}", 0.85, check_gguf_parity, merged_path,
                           info["output"], prompts, tokenizer=tokenizer,
                           threshold=gate.threshold if quant_threshold is None else quant_threshold,
                           **kwargs)
            result.advisory = gate.advisory and quant_threshold is None
            result.details.update(qtype=qtype, normal=gate.normal)
            results.append((f"{name}-{qtype}", result))
        out["parity"] = [{"model": model_id, "kind": r.kind, "passed": r.passed,
                          "verdict": r.verdict, "threshold": r.threshold, "advisory": r.advisory,
                          "normal": r.details.get("normal"),
                          "agreement": r.agreement, "forced_agreement": r.forced_agreement,
                          "token_agreement": r.token_agreement, "exact_matches": r.exact_matches,
                          "n_prompts": r.n_prompts, "chat_template_ok": r.chat_template_ok}
                         for model_id, r in results]
    del merged

    if store is not None:
        from .parity import store_result

        report("register", 0.95)
        common = dict(base_model=base_model_id or str(base), job=job, dataset=dataset)
        if write_adapter:  # an adapter is not a model: it rides along in the lineage
            common["adapter_gguf"] = str(out["adapter"]["path"])
        records = [register_product(store, merged_path, kind="merged", model_id=name, **common)]
        for qtype, info in out["quantized"].items():
            records.append(register_product(store, info["output"], kind="quantized",
                                            model_id=f"{name}-{qtype}", quantization=qtype,
                                            parent=name, **common))
        out["models"] = [r.id for r in records]
        out["parity_ids"] = [store_result(store, r, model_id=model_id) for model_id, r in results]
    report("done", 1.0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.export.pipeline",
                                     description="Export a LoRA fine-tune to GGUF; prints JSON.")
    parser.add_argument("--base", required=True, type=Path, help="base model GGUF")
    parser.add_argument("--adapter", required=True, type=Path, help="PEFT adapter folder")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--outtype", default="f16", choices=("f16", "f32"))
    parser.add_argument("--quant", action="append", default=None, help="q8_0, q5_k_m, q4_k_m")
    parser.add_argument("--no-parity", action="store_true")
    parser.add_argument("--no-adapter", action="store_true")
    parser.add_argument("--db", type=Path, help="workspace database to register products in")
    parser.add_argument("--base-model-id")
    parser.add_argument("--job")
    parser.add_argument("--dataset")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--hf-threshold", type=float, default=0.9)
    parser.add_argument("--quant-threshold", type=float, default=None,
                        help="one gating threshold for every quantization (default: per type)")
    args = parser.parse_args(argv)
    store = None
    if args.db:
        from ..store import Store

        store = Store(args.db)
    try:
        result = export_finetune(
            args.base, args.adapter, args.out, name=args.name, outtype=args.outtype,
            quantizations=tuple(args.quant or ("q4_k_m",)), write_adapter=not args.no_adapter,
            parity=not args.no_parity, store=store, base_model_id=args.base_model_id,
            job=args.job, dataset=args.dataset, n_threads=args.threads,
            hf_threshold=args.hf_threshold, quant_threshold=args.quant_threshold,
            progress=lambda step, f: print(json.dumps({"step": step, "progress": f}),
                                           file=sys.stderr, flush=True))
        result = {"ok": True, **result}
    except Exception as exc:  # noqa: BLE001 - reported as JSON to the job runner
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        if store is not None:
            store.close()
    print(json.dumps(result, default=str), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
