"""Export a fine-tuned model for llama.cpp: HF -> GGUF writer, LoRA adapter GGUF, quantization,
parity checks and registration with lineage.

Importing this package is cheap: torch, transformers, peft and llama.cpp are imported only inside
the functions that need them (llama.cpp only ever in worker / quantize subprocesses). The public
names below are resolved lazily from their modules.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_base_model": "hf_loader", "load_tokenizer": "hf_loader",
    "load_merged_model": "hf_loader", "merge_peft": "hf_loader",
    "write_gguf": "gguf_writer", "permute_qk": "gguf_writer",
    "write_adapter_gguf": "adapter_gguf",
    # `quantize` is also the submodule's name (python -m workbench.export.quantize), hence the alias
    "quantize_gguf": ("quantize", "quantize"), "quantize_command": "quantize",
    "QuantizeError": "quantize", "QTYPES": "quantize",
    "ParityResult": "parity", "check_hf_vs_gguf": "parity", "check_gguf_parity": "parity",
    "check_chat_template": "parity", "store_result": "parity", "stored_results": "parity",
    "register_product": "lineage", "lineage_for": "lineage",
    "export_finetune": "pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'workbench.export' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
