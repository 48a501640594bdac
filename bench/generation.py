"""Workbench generation path vs a bare llama-cpp-python loop: same model, prompts, parameters.

Usage: python bench/generation.py [--model PATH] [--prompts 8] [--max-tokens 64] [--rounds 3]

Both paths answer the same incidents with the same system prompt, greedy, in alternating rounds
(after one warm-up pass each). Throughput is completion tokens / wall time seen by the caller, so
the workbench figure includes its worker process, pipe and measurement overhead. Target: >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_prompts(n: int) -> list[str]:
    lines = (REPO / "datasets" / "devops_incidents.jsonl").read_text().splitlines()
    return [json.loads(line)["input"] for line in lines if line.strip()][:n]


def main() -> None:
    from workbench.engines.base import GenerationRequest
    from workbench.engines.llama_cpp import EngineSpec
    from workbench.engines.worker import ModelWorker
    from workbench.config import default_threads
    from workbench.models.registry import bundled_model_path
    from workbench.workspace import TRIAGE_SYSTEM

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(bundled_model_path()))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_threads(1))
    args = parser.parse_args()
    prompts = load_prompts(args.prompts)
    requests = [GenerationRequest(messages=[{"role": "user", "content": p}], system=TRIAGE_SYSTEM,
                                  temperature=0.0, top_p=1.0, max_tokens=args.max_tokens, seed=0)
                for p in prompts]

    import llama_cpp

    from workbench.engines.cpu_features import llama_model_params, use_extra_buffers

    with llama_model_params(llama_cpp, extra_buffers=use_extra_buffers()):  # same as the worker
        bare = llama_cpp.Llama(model_path=args.model, n_ctx=2048, n_threads=args.threads,
                               n_threads_batch=args.threads, verbose=False)
    worker = ModelWorker(EngineSpec(model_path=args.model, n_ctx=2048, n_threads=args.threads),
                         label="bench")
    worker.start()

    def bare_pass() -> tuple[int, float, list[str]]:
        tokens, texts, started = 0, [], time.perf_counter()
        for r in requests:
            out = bare.create_chat_completion(messages=r.chat_messages(), temperature=0.0, top_p=1.0,
                                              max_tokens=r.max_tokens, seed=0)
            tokens += out["usage"]["completion_tokens"]
            texts.append(out["choices"][0]["message"]["content"])
        return tokens, time.perf_counter() - started, texts

    def workbench_pass() -> tuple[int, float, list[str]]:
        tokens, texts, started = 0, [], time.perf_counter()
        for r in requests:
            g = worker.generate(r)
            if g.error:
                raise SystemExit(f"workbench generation failed: {g.error}")
            tokens += g.completion_tokens
            texts.append(g.text)
        return tokens, time.perf_counter() - started, texts

    bare_pass(), workbench_pass()  # warm-up
    totals = {"bare": [0, 0.0], "workbench": [0, 0.0]}
    same_text = True
    for round_no in range(args.rounds):
        order = [("bare", bare_pass), ("workbench", workbench_pass)]
        results = {}
        for name, run in (order if round_no % 2 == 0 else order[::-1]):
            tokens, seconds, texts = run()
            totals[name][0] += tokens
            totals[name][1] += seconds
            results[name] = texts
            print(f"round {round_no + 1} {name:9} {tokens:5d} tokens {seconds:6.2f} s "
                  f"{tokens / seconds:6.1f} tok/s")
        same_text &= results["bare"] == results["workbench"]
    worker.close()
    bare_tps = totals["bare"][0] / totals["bare"][1]
    wb_tps = totals["workbench"][0] / totals["workbench"][1]
    print(f"model {Path(args.model).name}, {len(prompts)} prompts x {args.rounds} rounds, "
          f"max_tokens {args.max_tokens}, {args.threads} threads")
    print(f"bare llama-cpp-python loop: {bare_tps:.1f} tok/s")
    print(f"workbench worker path:      {wb_tps:.1f} tok/s")
    print(f"ratio workbench/bare: {wb_tps / bare_tps:.3f} (target >= 0.97); "
          f"identical outputs: {same_text}")


if __name__ == "__main__":
    main()
