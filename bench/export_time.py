"""How long does exporting a LoRA fine-tune take? merge + GGUF write + quantize (q4_k_m).

    .venv/bin/python bench/export_time.py [--base BASE.gguf] [--outtype f16] [--qtype q4_k_m]

Uses the bundled SmolLM2-135M GGUF and a random rank-8 LoRA on every projection by default.
Prints one line per step and a JSON summary. Target on a 2-core CPU: <= 30 s for
merge + write + quantize (loading the base into transformers is listed separately).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
TARGET_S = 30.0


def main() -> int:
    from workbench.models.registry import bundled_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=bundled_model_path())
    parser.add_argument("--outtype", default="f16", choices=("f16", "f32"))
    parser.add_argument("--qtype", default="q4_k_m")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="write the files here instead of a temp dir")
    args = parser.parse_args()

    steps: dict[str, float] = {}

    def step(label, fn, /, *a, **kw):
        started = time.perf_counter()
        value = fn(*a, **kw)
        steps[label] = round(time.perf_counter() - started, 2)
        print(f"{label:<22} {steps[label]:7.2f} s", flush=True)
        return value

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)

        def imports():
            import peft  # noqa: F401
            import torch  # noqa: F401
            import transformers  # noqa: F401

        step("import torch+hf", imports)
        from workbench.export.adapter_gguf import write_adapter_gguf, write_random_adapter
        from workbench.export.gguf_writer import write_gguf
        from workbench.export.hf_loader import load_base_model, load_merged_model
        from workbench.export.quantize import quantize

        adapter = write_random_adapter(args.base, out / "adapter")
        model = step("load base (dequant)", load_base_model, args.base)
        merged = step("merge LoRA", load_merged_model, model, adapter)
        written = step(f"write GGUF {args.outtype}", write_gguf, merged,
                       out / f"merged.{args.outtype}.gguf", base_gguf=args.base,
                       outtype=args.outtype, name="bench-merged")
        step("write adapter GGUF", write_adapter_gguf, adapter, out / "lora.gguf",
             base_gguf=args.base)
        quant = step(f"quantize {args.qtype}", quantize, written["path"],
                     out / f"merged.{args.qtype}.gguf", args.qtype, threads=args.threads)

    core = (steps["merge LoRA"] + steps[f"write GGUF {args.outtype}"]
            + steps[f"quantize {args.qtype}"])
    summary = {"base": str(args.base), "cpu_count": os.cpu_count(), "steps_s": steps,
               "merge_write_quantize_s": round(core, 2),
               "with_load_s": round(core + steps["load base (dequant)"], 2),
               "gguf_bytes": written["bytes"], "quantized_bytes": quant["output_bytes"],
               "quantize_in_process_s": quant["seconds"], "target_s": TARGET_S,
               "within_target": core <= TARGET_S}
    print(f"{'merge+write+quantize':<22} {core:7.2f} s  (target <= {TARGET_S:.0f} s)")
    print(json.dumps(summary))
    return 0 if summary["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
