"""The llama.cpp engine. It runs only inside a model worker process (see ``worker.py``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from .base import Generation, GenerationRequest


@dataclass
class EngineSpec:
    """How to load one model: file, context, GPU offload, threads, optional LoRA adapter."""

    model_path: str
    n_ctx: int = 2048
    n_gpu_layers: int = 0
    n_threads: int | None = None
    lora_path: str | None = None
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class LlamaCppEngine:
    """One loaded ``llama_cpp.Llama``; every request starts from a clean state."""

    def __init__(self, spec: EngineSpec):
        import llama_cpp

        self._lib = llama_cpp
        started = time.perf_counter()
        self.spec = spec
        # n_batch = n_ctx: the whole prompt is one decode call, so llama.cpp's own counters
        # separate prompt tokens (n_p_eval) from generated tokens (n_eval) exactly.
        self.llm = llama_cpp.Llama(
            model_path=spec.model_path, n_ctx=spec.n_ctx, n_batch=spec.n_ctx,
            n_gpu_layers=spec.n_gpu_layers, n_threads=spec.n_threads,
            n_threads_batch=spec.n_threads, lora_path=spec.lora_path, seed=spec.seed,
            verbose=True)  # the worker's stdout/stderr go to its log file, never the terminal
        self.load_ms = (time.perf_counter() - started) * 1000

    def describe(self) -> dict:
        """What was loaded, for the caller's records."""
        return {"load_ms": self.load_ms, "n_ctx": self.llm.n_ctx(),
                "n_threads": self.llm.n_threads, "n_gpu_layers": self.spec.n_gpu_layers,
                "gpu_offload": bool(self._lib.llama_supports_gpu_offload())}

    def generate(self, payload: dict) -> dict:
        """Answer one request (a ``GenerationRequest`` as a dict) and measure it."""
        request = GenerationRequest(**payload)
        llm, lib = self.llm, self._lib
        llm.reset()  # no prefix reuse: equal requests give equal outputs at temperature 0
        lib.llama_perf_context_reset(llm._ctx.ctx)
        kwargs = dict(messages=request.chat_messages(), temperature=request.temperature,
                      top_p=request.top_p, max_tokens=request.max_tokens, seed=request.seed,
                      stream=True)
        if request.json_schema:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        started = time.perf_counter()
        first = None
        parts: list[str] = []
        finish = None
        for chunk in llm.create_chat_completion(**kwargs):
            choice = chunk["choices"][0]
            content = choice["delta"].get("content")
            if content:
                if first is None:
                    first = time.perf_counter()
                parts.append(content)
            finish = choice.get("finish_reason") or finish
        ended = time.perf_counter()
        perf = lib.llama_perf_context(llm._ctx.ctx)
        # The last sampled token is evaluated only if generation went on after it.
        completion = perf.n_eval + (1 if finish == "length" else 0)
        result = Generation(
            text="".join(parts), latency_ms=(ended - started) * 1000,
            ttft_ms=((first or ended) - started) * 1000, prompt_tokens=perf.n_p_eval,
            completion_tokens=completion,
            decode_tps=perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms > 0 else None,
            prompt_tps=perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else None,
            finish_reason=finish)
        return asdict(result)

    def close(self) -> None:
        self.llm.close()
