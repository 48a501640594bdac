"""Write a PEFT LoRA alone as a GGUF adapter that llama.cpp applies on top of the base GGUF.

Conventions of llama.cpp's ``convert_lora_to_gguf.py`` / ``llama-adapter.cpp``: ``general.type =
adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``; tensors ``<base tensor>.lora_a`` with
numpy shape (r, n_in) and ``<base tensor>.lora_b`` with shape (n_out, r), i.e. PEFT's own layouts.
llama.cpp scales by ``alpha / r`` with r read from lora_b; a module whose PEFT scaling differs from
that (rsLoRA, rank or alpha patterns) has its factor folded into lora_b. The q/k rows of lora_b get
the same permutation as the base weights, since permute(W + s·B·A) = permute(W) + s·permute(B)·A.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .gguf_writer import atomic_gguf, gguf_tensor_name, permute_qk

OUTTYPES = {"f32": 0, "f16": 1}


@dataclass
class LoraPair:
    """One adapted linear layer: its HF module name, A (r, in), B (out, r) and PEFT scaling."""

    module: str
    a: np.ndarray
    b: np.ndarray
    scaling: float


def _module_name(name: str) -> str:
    """'base_model.model.model.layers.0.self_attn.q_proj' -> 'model.layers.0.self_attn.q_proj'."""
    return name[len("base_model.model."):] if name.startswith("base_model.model.") else name


def _pattern_value(patterns: dict, module: str, default):
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def pairs_from_peft_model(peft_model,
                          adapter_name: str | None = None) -> tuple[list[LoraPair], float]:
    """LoRA pairs of an in-memory ``PeftModel`` (unmerged) and the config's lora_alpha."""
    import torch
    from peft.tuners.lora import LoraLayer

    adapter_name = adapter_name or peft_model.active_adapter
    config = peft_model.peft_config[adapter_name]
    if getattr(config, "modules_to_save", None):
        raise ValueError(f"the adapter also trains whole modules {config.modules_to_save}; "
                         "a GGUF LoRA cannot carry them (export the merged model instead)")
    pairs = []
    for name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer) or adapter_name not in module.lora_A:
            continue
        if module.use_dora.get(adapter_name):
            raise ValueError("DoRA adapters cannot be exported as a llama.cpp LoRA")
        if getattr(module, "merged", False):
            raise ValueError("the adapter is merged into the model; export it before merging")
        with torch.no_grad():
            a = module.lora_A[adapter_name].weight.detach().float().cpu().numpy()
            b = module.lora_B[adapter_name].weight.detach().float().cpu().numpy()
        pairs.append(LoraPair(_module_name(name), a, b, float(module.scaling[adapter_name])))
    return pairs, float(config.lora_alpha)


def pairs_from_folder(adapter_dir: str | Path) -> tuple[list[LoraPair], float]:
    """LoRA pairs from a saved PEFT folder (adapter_config.json + adapter_model.safetensors)."""
    folder = Path(adapter_dir)
    config = json.loads((folder / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA").upper() != "LORA":
        raise ValueError(f"not a LoRA adapter: peft_type {config.get('peft_type')!r}")
    if config.get("use_dora"):
        raise ValueError("DoRA adapters cannot be exported as a llama.cpp LoRA")
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors.numpy import load_file

        tensors = load_file(str(weights))
    else:
        import torch

        state = torch.load(str(folder / "adapter_model.bin"), map_location="cpu", weights_only=True)
        tensors = {k: v.float().numpy() for k, v in state.items()}
    alpha = float(config["lora_alpha"])
    found: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        match = re.match(r"^(.*)\.lora_([AB])(?:\.[^.]+)?\.weight$", key)
        if not match:
            raise ValueError(f"unexpected tensor {key!r} in the adapter: only lora_A/lora_B are "
                             "supported (export the merged model instead)")
        module = _module_name(match.group(1))
        found.setdefault(module, {})[match.group(2)] = value.astype(np.float32)
    pairs = []
    for module, ab in sorted(found.items()):
        if set(ab) != {"A", "B"}:
            raise ValueError(f"{module}: lora_A or lora_B is missing")
        rank = ab["A"].shape[0]
        mod_alpha = float(_pattern_value(config.get("alpha_pattern"), module, alpha))
        scaling = mod_alpha / (rank ** 0.5 if config.get("use_rslora") else rank)
        pairs.append(LoraPair(module, ab["A"], ab["B"], scaling))
    return pairs, alpha


def write_adapter_gguf(adapter: Any, out_path: str | Path, *, base_gguf: str | Path,
                       outtype: str = "f32", name: str | None = None) -> dict:
    """Write a LoRA (a ``PeftModel`` or a saved adapter folder) as a llama.cpp GGUF adapter.

    ``base_gguf`` is the GGUF the adapter will be applied to: its architecture, head counts and
    tensor shapes are checked here, as llama.cpp checks them at load time.
    """
    from gguf.constants import GGUFValueType

    from ..models.gguf_inspect import inspect_gguf

    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {sorted(OUTTYPES)}, not {outtype!r}")
    started = time.perf_counter()
    if isinstance(adapter, (str, Path)):
        pairs, alpha = pairs_from_folder(adapter)
    else:
        pairs, alpha = pairs_from_peft_model(adapter)
    if not pairs:
        raise ValueError("the adapter has no LoRA layers")
    if alpha == 0:
        raise ValueError("lora_alpha is 0: llama.cpp would read that as 'no scaling'")
    info = inspect_gguf(base_gguf)
    arch = info.architecture
    if arch != "llama":
        raise ValueError(f"base GGUF architecture is {arch!r}; only llama is supported")
    n_head = int(info.metadata[f"{arch}.attention.head_count"])
    n_kv = int(info.metadata.get(f"{arch}.attention.head_count_kv") or n_head)
    shapes = {t.name: t.shape for t in info.tensors}

    out_path = Path(out_path)
    dtype = np.float16 if outtype == "f16" else np.float32
    with atomic_gguf(out_path, arch) as writer:
        writer.add_type("adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_key_value("adapter.lora.alpha", float(alpha), GGUFValueType.FLOAT32)
        writer.add_name(name or out_path.stem)
        writer.add_file_type(OUTTYPES[outtype])
        for pair in pairs:
            target = gguf_tensor_name(pair.module + ".weight")
            if target is None or target not in shapes:
                raise ValueError(f"LoRA on {pair.module!r} has no matching tensor in the base GGUF "
                                 f"(only attention and MLP projections can be exported)")
            rank = pair.a.shape[0]
            n_in, n_out = pair.a.shape[1], pair.b.shape[0]
            if pair.b.shape[1] != rank or tuple(shapes[target]) != (n_in, n_out):
                raise ValueError(f"{target}: LoRA shapes A{pair.a.shape} B{pair.b.shape} do not "
                                 f"fit the base tensor {shapes[target]} (wrong base model?)")
            factor = pair.scaling * rank / alpha  # 1.0 for plain LoRA
            b = pair.b if abs(factor - 1.0) < 1e-9 else pair.b * np.float32(factor)
            if ".attn_q." in target:
                b = permute_qk(b, n_head, n_head)
            elif ".attn_k." in target:
                b = permute_qk(b, n_head, n_kv)
            writer.add_tensor(target + ".lora_a", np.ascontiguousarray(pair.a, dtype=dtype))
            writer.add_tensor(target + ".lora_b", np.ascontiguousarray(b, dtype=dtype))
    return {"path": str(out_path), "outtype": outtype, "layers": len(pairs), "alpha": alpha,
            "rank": int(max(p.a.shape[0] for p in pairs)), "bytes": out_path.stat().st_size,
            "seconds": round(time.perf_counter() - started, 3)}


def write_random_adapter(base_gguf: str | Path, folder: str | Path, *, r: int = 8,
                         alpha: float = 16.0, std: float = 0.05, seed: int = 0,
                         targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj",
                                                     "gate_proj", "up_proj", "down_proj")) -> Path:
    """Save a PEFT LoRA folder with random non-zero A and B for ``base_gguf`` (smoke tests,
    benchmarks): it changes the model's outputs without any training."""
    from peft import LoraConfig
    from safetensors.numpy import save_file

    from ..models.gguf_inspect import inspect_gguf

    info = inspect_gguf(base_gguf)
    arch = info.architecture
    layers = int(info.metadata[f"{arch}.block_count"])
    shapes = {t.name: t.shape for t in info.tensors}  # ggml order: (n_in, n_out)
    rng = np.random.default_rng(seed)
    tensors = {}
    for layer in range(layers):
        for module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                       "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            if module.split(".")[-1] not in targets:
                continue
            hf = f"model.layers.{layer}.{module}"
            n_in, n_out = shapes[gguf_tensor_name(hf + ".weight")]
            key = f"base_model.model.{hf}"
            a = rng.uniform(-1, 1, (r, n_in)) / n_in ** 0.5  # like PEFT's kaiming init
            tensors[f"{key}.lora_A.weight"] = a.astype(np.float32)
            tensors[f"{key}.lora_B.weight"] = rng.normal(0.0, std, (n_out, r)).astype(np.float32)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(targets),
               task_type="CAUSAL_LM").save_pretrained(str(folder))
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    return folder
