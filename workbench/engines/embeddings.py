"""Text embeddings from a GGUF model: llama.cpp with mean pooling, in a child process.

``llama_cpp.Llama(model_path, embedding=True, pooling_type=LLAMA_POOLING_TYPE_MEAN)`` and
``Llama.embed(texts)`` (llama-cpp-python 0.3: one vector per input, the mean of its tokens' last
hidden states; inputs are truncated to ``n_batch`` tokens). ``embed_texts`` runs it in a spawned
process like the model workers (``worker.py``): llama.cpp's log goes to a file, never the
terminal, and a crash is an ``EmbeddingError`` with the log's reason, not a dead caller.

A text with no tokens (an empty prompt) cannot be decoded by llama.cpp; it is embedded as a single
space. Texts are cut to ``max_tokens`` tokens: mean pooling over the start of a long input keeps its
topic and bounds the cost on a CPU.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .cpu_features import llama_model_params, use_extra_buffers
from .logs import read_tail, rotate, useful_tail
from .worker import prepare_child

EMBED_TIMEOUT_S = 900.0


class EmbeddingError(RuntimeError):
    """The embedding model failed to load or to embed; the message says why."""


@dataclass
class EmbeddingSpec:
    """How to load a model for embeddings."""

    model_path: str
    max_tokens: int = 128        # tokens of each text that are embedded (the rest is cut)
    n_gpu_layers: int = 0
    n_threads: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class MeanPoolingEmbedder:
    """One ``llama_cpp.Llama`` in embedding mode with mean pooling (use it in a child process)."""

    def __init__(self, spec: EmbeddingSpec):
        import llama_cpp

        self.spec = spec
        n_ctx = max(8, int(spec.max_tokens))
        with llama_model_params(llama_cpp, extra_buffers=use_extra_buffers()):
            self.llm = llama_cpp.Llama(
                model_path=spec.model_path, embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, n_ctx=n_ctx, n_batch=n_ctx,
                n_ubatch=n_ctx, n_gpu_layers=spec.n_gpu_layers, n_threads=spec.n_threads,
                n_threads_batch=spec.n_threads, verbose=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        """An (n, dim) float array: one mean-pooled vector per text (not normalized)."""
        if not texts:
            return np.zeros((0, self.llm.n_embd()), dtype=np.float32)
        cleaned = [text if text and text.strip() else " " for text in texts]
        vectors = self.llm.embed(cleaned, normalize=False, truncate=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def close(self) -> None:
        self.llm.close()


def _serve(conn, spec: dict, texts: list[str], log_path: str | None, niceness: int) -> None:
    """Child process: load, embed every text, send the array back, exit."""
    prepare_child(log_path, niceness)
    try:
        embedder = MeanPoolingEmbedder(EmbeddingSpec(**spec))
        vectors = embedder.embed(texts)
        embedder.close()
    except BaseException as exc:  # noqa: BLE001 - report any failure to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", vectors))


def embed_texts(spec: EmbeddingSpec, texts: list[str], *, log_path: Path | None = None,
                niceness: int = 0, timeout_s: float = EMBED_TIMEOUT_S) -> np.ndarray:
    """Embed ``texts`` with ``spec``'s model in a spawned process; an (n, dim) float array.

    Raises ``EmbeddingError`` when the model does not load, llama.cpp fails, the process dies
    or it takes longer than ``timeout_s`` (it is then killed).
    """
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        rotate(Path(log_path))
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_serve, name="workbench-embeddings", daemon=True,
                          args=(child, spec.to_dict(), list(texts),
                                str(log_path) if log_path else None, niceness))
    try:
        process.start()
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"could not start the embedding process: {exc}") from exc
    finally:
        child.close()
    name = Path(spec.model_path).name
    try:
        if not parent.poll(timeout_s):
            raise EmbeddingError(f"embedding with {name} timed out after {timeout_s:.0f} s"
                                 + _tail(log_path))
        try:
            kind, payload = parent.recv()
        except (EOFError, OSError):
            process.join(5)
            raise EmbeddingError(f"the embedding process for {name} died (exit code "
                                 f"{process.exitcode})" + _tail(log_path)) from None
        if kind == "error":
            raise EmbeddingError(f"embedding with {name} failed: {payload}" + _tail(log_path))
        return payload
    finally:
        parent.close()
        if process.is_alive():
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)


def _tail(log_path: Path | None) -> str:
    useful = useful_tail(read_tail(Path(log_path) if log_path else None, 8000), keep=3)
    return (" | log: " + useful) if useful else ""
