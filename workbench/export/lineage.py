"""Register export products (merged GGUF, LoRA adapter GGUF, quantized GGUF) with their lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

KINDS = ("merged", "adapter", "quantized")


def lineage_for(kind: str, *, base_model: str | None, job: Any = None, dataset: Any = None,
                quantization: str | None = None, parent: str | None = None,
                **extra: Any) -> dict:
    """The lineage dict stored with a model: where it came from and how it was made."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return {"kind": kind, "base_model": base_model, "job": job, "dataset": dataset,
            "quantization": quantization, "parent": parent,
            **{k: v for k, v in extra.items() if v is not None}}


def register_product(store, path: str | Path, *, kind: str, base_model: str | None,
                     model_id: str | None = None, job: Any = None, dataset: Any = None,
                     quantization: str | None = None, parent: str | None = None,
                     **extra: Any):
    """Add one exported model GGUF to the registry (source 'export:<kind>'); returns its record."""
    from ..models.registry import Registry

    lineage = lineage_for(kind, base_model=base_model, job=job, dataset=dataset,
                          quantization=quantization, parent=parent, **extra)
    return Registry(store).add(path, model_id=model_id, source=f"export:{kind}", lineage=lineage)
