"""Quick model benchmark: prompt tok/s, decode tok/s and TTFT, measured in a model worker."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable

from ..engines.base import GenerationRequest
from ..engines.llama_cpp import EngineSpec
from ..engines.worker import ModelWorker, WorkerError
from ..config import default_threads
from ..store import Store

BENCH_PROMPT = (
    "Incident: 14:02 UTC the checkout-api p99 latency rose from 180 ms to 4.2 s and the error rate "
    "reached 12%. The database connection pool is at 100/100. Version 2.31 was deployed at 13:55 "
    "and added a per-item lookup in the cart endpoint. Explain the likely cause, the severity, "
    "and the first three steps you would take, one short paragraph each.")


def benchmark_model(store: Store, model_id: str, *, log_dir: Path | None = None, runs: int = 3,
                    max_tokens: int = 64,
                    on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Load the model in a worker, run ``runs`` timed generations after a warm-up, store medians."""
    model = store.get_model(model_id)
    threads = model.n_threads or default_threads(1)
    spec = EngineSpec(model_path=model.path, n_ctx=model.n_ctx, n_gpu_layers=model.n_gpu_layers,
                      n_threads=threads, reuse_prefix=False)  # every run evaluates the whole prompt
    request = GenerationRequest(messages=[{"role": "user", "content": BENCH_PROMPT}],
                                max_tokens=max_tokens)
    samples = []
    with ModelWorker(spec, label=f"bench-{model_id}", log_dir=log_dir) as worker:
        for step in range(runs + 1):
            generation = worker.generate(request)
            if generation.error:
                raise WorkerError(generation.error)
            if step:  # the first run warms caches and is not counted
                samples.append(generation)
            if on_progress:
                on_progress(step + 1, runs + 1)
    result = {
        "prompt_tokens": samples[0].prompt_tokens,
        "completion_tokens": samples[0].completion_tokens,
        "prompt_tps": statistics.median(g.prompt_tps or 0.0 for g in samples),
        "decode_tps": statistics.median(g.decode_tps or 0.0 for g in samples),
        "ttft_ms": statistics.median(g.ttft_ms or 0.0 for g in samples),
        "n_gpu_layers": model.n_gpu_layers, "n_threads": threads,
    }
    store.add_benchmark(model_id, result)
    return result
