"""Load a base model into transformers for training, merging and parity checks, fully offline.

A base is either a GGUF file (dequantized into a dense float model through transformers'
``gguf_file=`` loader) or a local Hugging Face folder. Nothing is ever fetched from a hub.
torch / transformers / peft are imported inside the functions only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def ensure_offline() -> None:
    """Forbid hub downloads for this process (and the processes it starts)."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def is_gguf(source: str | Path) -> bool:
    """True when ``source`` names a GGUF file (by its magic, not its suffix)."""
    path = Path(source)
    if not path.is_file():
        return False
    with open(path, "rb") as handle:
        return handle.read(4) == b"GGUF"


def _check_source(source: str | Path) -> Path:
    path = Path(source).expanduser().resolve()
    if path.is_file():
        if not is_gguf(path):
            raise ValueError(f"{path} is a file but not a GGUF model")
        return path
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is a folder without config.json: not a Hugging Face model")
        return path
    raise FileNotFoundError(f"no model at {path}")


def _torch_dtype(dtype: Any):
    import torch

    if isinstance(dtype, str):
        return {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
                "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}[dtype]
    return dtype


def load_base_model(source: str | Path, *, dtype: Any = "float32",
                    attn_implementation: str | None = None):
    """A dense, trainable ``AutoModelForCausalLM`` from a GGUF file or a local HF folder.

    GGUF weights are dequantized at load time (``GgufConfig(dequantize=True)``); without it recent
    transformers keep them packed and ``Trainer`` refuses the model. The model is in eval mode.
    """
    ensure_offline()
    from transformers import AutoModelForCausalLM

    path = _check_source(source)
    kwargs: dict[str, Any] = {"dtype": _torch_dtype(dtype), "local_files_only": True}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if path.is_file():
        from transformers import GgufConfig

        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=str(path),
            quantization_config=GgufConfig(dequantize=True), **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if getattr(model, "is_quantized", False):
        raise RuntimeError(f"{path.name} loaded as a quantized model; "
                           "it cannot be trained or merged")
    model.eval()
    return model


def load_tokenizer(source: str | Path):
    """The tokenizer of a GGUF file (rebuilt from its metadata) or of a local HF folder."""
    ensure_offline()
    from transformers import AutoTokenizer

    path = _check_source(source)
    if path.is_file():
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=str(path),
                                                  local_files_only=True)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_merged_model(base: str | Path | Any, adapter_dir: str | Path, *, dtype: Any = "float32"):
    """Base + a saved PEFT LoRA adapter folder, merged into a plain transformers model.

    ``base`` is a GGUF file, an HF folder, or an already loaded base model (it is modified).
    """
    ensure_offline()
    from peft import PeftModel

    model = base if not isinstance(base, (str, Path)) else load_base_model(base, dtype=dtype)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    merged = peft_model.merge_and_unload()
    merged.eval()
    return merged


def merge_peft(peft_model):
    """Merge an in-memory ``PeftModel`` into its base and return the plain model (in eval mode)."""
    merged = peft_model.merge_and_unload()
    merged.eval()
    return merged
