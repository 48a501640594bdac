"""The llama.cpp engine. It runs only inside a model worker process (see ``worker.py``)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from .base import Generation, GenerationRequest
from .cpu_features import llama_model_params, use_extra_buffers


@dataclass
class EngineSpec:
    """How to load one model: file, context, GPU offload, threads, optional LoRA adapter."""

    model_path: str
    n_ctx: int = 2048
    n_gpu_layers: int = 0
    n_threads: int | None = None
    lora_path: str | None = None
    lora_scale: float = 1.0
    seed: int = 0
    reuse_prefix: bool = False  # True: keep the KV cache of a prefix shared with the last request

    def to_dict(self) -> dict:
        return asdict(self)


class LlamaCppEngine:
    """One loaded ``llama_cpp.Llama``; every request starts from a clean state."""

    def __init__(self, spec: EngineSpec):
        import llama_cpp

        self._lib = llama_cpp
        started = time.perf_counter()
        self.spec = spec
        self.extra_buffers = use_extra_buffers()
        with llama_model_params(llama_cpp, extra_buffers=self.extra_buffers):
            self.llm = llama_cpp.Llama(
                model_path=spec.model_path, n_ctx=spec.n_ctx,
                n_gpu_layers=spec.n_gpu_layers, n_threads=spec.n_threads,
                n_threads_batch=spec.n_threads, lora_path=spec.lora_path,
                lora_scale=spec.lora_scale, seed=spec.seed,
                verbose=True)  # the worker's stdout/stderr go to its log file, never the terminal
        self.load_ms = (time.perf_counter() - started) * 1000
        # Every request starts from a clean state, so a request's answer never depends on what was
        # asked before. Reusing the KV cache of a shared prefix (like llama-server's prompt cache)
        # saves re-evaluating the system prompt, but the rest of the prompt is then computed in a
        # smaller batch, and on some CPUs (seen in this project's CI) and GPUs that changes the last
        # digits of the logits and so, at a near tie, the greedy answer. Opt in with reuse_prefix.
        self.reuse_prefix = spec.reuse_prefix
        self._counts = {"prompt": 0, "sampled": 0, "last": None}
        self._wrap_generate()

    def _wrap_generate(self) -> None:
        """Count the prompt and the sampled tokens exactly, whatever the prefix cache reused."""
        original, counts = self.llm.generate, self._counts

        def counting_generate(tokens, *args, **kwargs):
            counts.update(prompt=len(tokens), sampled=0, last=None, ids=[])
            for token in original(tokens, *args, **kwargs):
                counts["sampled"] += 1
                counts["last"] = token
                counts["ids"].append(int(token))
                yield token

        self.llm.generate = counting_generate

    def describe(self) -> dict:
        """What was loaded, for the caller's records."""
        return {"load_ms": self.load_ms, "n_ctx": self.llm.n_ctx(),
                "n_threads": self.llm.n_threads, "n_gpu_layers": self.spec.n_gpu_layers,
                "gpu_offload": bool(self._lib.llama_supports_gpu_offload()),
                "extra_buffers": self.extra_buffers}

    def generate(self, payload: dict) -> dict:
        """Answer one request (a ``GenerationRequest`` as a dict) and measure it.

        Streams internally to time the first token. ``{"stream": False}`` in the payload uses
        llama-cpp-python's plain (non-streaming) call instead, whose usage counts are reported
        as they are (no TTFT); tests use it to check the streamed counts.

        For export parity checks: ``{"return_tokens": True}`` adds the sampled token ids as
        ``extra["tokens"]``; ``{"force_tokens": [...]}`` makes the model follow those tokens
        (teacher forcing) and adds ``extra["forced_matches"]``, how many of them were also its
        own top-1 choice at that position.
        """
        payload = dict(payload)
        stream = payload.pop("stream", True)
        return_tokens = payload.pop("return_tokens", False)
        forced = payload.pop("force_tokens", None)
        request = GenerationRequest(**payload)
        llm, lib = self.llm, self._lib
        if not self.reuse_prefix:
            llm.reset()  # a clean state: equal requests give equal outputs at temperature 0
        lib.llama_perf_context_reset(llm._ctx.ctx)
        kwargs = dict(messages=request.chat_messages(), temperature=request.temperature,
                      top_p=request.top_p, max_tokens=request.max_tokens, seed=request.seed,
                      stream=stream)
        if request.json_schema:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        matches = None
        if forced is not None:
            matches = [0]
            kwargs["logits_processor"] = _forcing_processor(list(forced), self._counts, matches)
        if not stream:
            return self._generate_plain(kwargs)
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
        counts = self._counts
        ended_on_eog = counts["last"] is not None and lib.llama_vocab_is_eog(llm._model.vocab,
                                                                                  counts["last"])
        completion = counts["sampled"] - int(bool(ended_on_eog))
        result = Generation(
            text="".join(parts), latency_ms=(ended - started) * 1000,
            ttft_ms=((first or ended) - started) * 1000, prompt_tokens=counts["prompt"],
            completion_tokens=completion,
            decode_tps=perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms > 0 else None,
            prompt_tps=perf.n_p_eval / (perf.t_p_eval_ms / 1000) if perf.t_p_eval_ms > 0 else None,
            finish_reason=finish, extra={"usage_source": "counted"})
        if return_tokens or forced is not None:
            result.extra["tokens"] = list(counts["ids"])
        if matches is not None:
            result.extra["forced_matches"] = matches[0]
        return asdict(result)

    def _generate_plain(self, kwargs: dict) -> dict:
        if not self.reuse_prefix:
            self.llm.reset()
        started = time.perf_counter()
        response = self.llm.create_chat_completion(**kwargs)
        usage, choice = response["usage"], response["choices"][0]
        return asdict(Generation(
            text=choice["message"]["content"] or "",
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"],
            finish_reason=choice["finish_reason"], extra={"usage_source": "response"}))

    def close(self) -> None:
        self.llm.close()


def _forcing_processor(forced: list[int], counts: dict, matches: list[int]):
    """A logits processor that picks ``forced[k]`` at step k and counts the steps where that
    token was also the model's own top-1 choice (past the end of ``forced``: its own choice)."""
    import numpy as np
    from llama_cpp import LogitsProcessorList

    def force(_input_ids, scores):
        step = counts["sampled"]  # tokens sampled so far in this generation
        if step >= len(forced):
            return scores
        wanted = forced[step]
        matches[0] += int(int(np.argmax(scores)) == wanted)
        out = np.full_like(scores, -np.inf)
        out[wanted] = 0.0
        return out

    return LogitsProcessorList([force])
