"""What token agreement is normal for each quantization of the bundled model?

    .venv/bin/python bench/parity_thresholds.py [--tokens 32] [--qtypes q8_0,q6_k,q5_k_m,q4_k_m]

Writes the bundled SmolLM2-135M (dequantized by transformers) as an F16 GGUF, quantizes it to
each type, and runs the export's own parity check (teacher-forced top-1 agreement, and the
greedy common-prefix agreement, of F16 vs quantized) on the default prompts plus the first items
of the sample datasets. The per-type thresholds in ``workbench/export/parity_gates.py`` (on the
teacher-forced figure) come from these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def prompts(n_dataset: int) -> list[str]:
    from workbench.export.parity import DEFAULT_PROMPTS

    out = list(DEFAULT_PROMPTS)
    for name in ("devops_incidents.jsonl", "emergency_response.jsonl"):
        lines = (REPO / "datasets" / name).read_text(encoding="utf-8").splitlines()
        out += [json.loads(line)["input"] for line in lines[:n_dataset] if line.strip()]
    return out


def main() -> int:
    from workbench.export.gguf_writer import write_gguf
    from workbench.export.hf_loader import load_base_model, load_tokenizer
    from workbench.export.parity import check_gguf_parity
    from workbench.export.parity_gates import gate_for
    from workbench.export.quantize import quantize
    from workbench.models.registry import bundled_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--per-dataset", type=int, default=6)
    parser.add_argument("--qtypes", default="f16,q8_0,q5_k_m,q4_k_m")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    base = bundled_model_path()
    texts = prompts(args.per_dataset)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        f16 = Path(tmp) / "reference.f16.gguf"
        write_gguf(load_base_model(base), f16, base_gguf=base, outtype="f16", name="bundled")
        tokenizer = load_tokenizer(base)
        for qtype in args.qtypes.split(","):
            out = Path(tmp) / f"bundled.{qtype}.gguf"
            quantize(f16, out, qtype, threads=args.threads)
            started = time.perf_counter()
            result = check_gguf_parity(f16, out, texts, tokenizer=tokenizer,
                                       max_new_tokens=args.tokens, n_threads=args.threads)
            gate = gate_for(qtype)
            rows.append({"qtype": qtype, "forced_agreement": round(result.forced_agreement, 3),
                         "token_agreement": round(result.token_agreement, 3),
                         "exact": f"{result.exact_matches}/{result.n_prompts}",
                         "threshold": gate.threshold, "advisory": gate.advisory,
                         "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"model": base.name, "prompts": len(texts), "tokens": args.tokens,
                      "results": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
