"""Write a (merged) Hugging Face llama-architecture model as an F16 or F32 GGUF.

Follows llama.cpp's ``convert_hf_to_gguf.py`` for the llama architecture: the same hyper-parameter
keys, tensor names, F16 rules (1-D tensors stay F32), tied embeddings (no ``output.weight``) and the
q/k row permutation llama.cpp's rope expects. The tokenizer is not converted: its metadata
(``tokenizer.*`` including ``tokenizer.chat_template``) is copied from the base GGUF, so llama.cpp
tokenizes and templates exactly as it does for the base.
"""

from __future__ import annotations

import math
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

OUTTYPES = {"f32": 0, "f16": 1}  # llama_ftype: ALL_F32, MOSTLY_F16
SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_LAYER_TENSORS = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_GLOBAL_TENSORS = {"model.embed_tokens": "token_embd", "model.norm": "output_norm",
                   "lm_head": "output"}


def gguf_tensor_name(hf_name: str) -> str | None:
    """llama.cpp's name for an HF llama parameter ('model.layers.3.mlp.up_proj.weight' ->
    'blk.3.ffn_up.weight'); None for anything that is not a llama weight."""
    base, _, suffix = hf_name.rpartition(".")
    if suffix not in ("weight", "bias"):
        return None
    if base in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[base]}.{suffix}"
    match = _LAYER.match(base)
    if match and match.group(2) in _LAYER_TENSORS:
        return f"blk.{match.group(1)}.{_LAYER_TENSORS[match.group(2)]}.{suffix}"
    return None


def permute_qk(weights, n_head: int, n_head_kv: int | None = None):
    """llama.cpp's ``LlamaModel.permute``: reorder q/k rows from HF's rotate-half layout to the
    interleaved rope layout. Works on numpy arrays and torch tensors (rows first)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return (weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
            .swapaxes(1, 2).reshape(shape))


def rope_settings(config) -> dict[str, Any]:
    """theta, scaling type and its parameters, from transformers 4.x or 5.x config fields."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    scaling = getattr(config, "rope_scaling", None) or {}
    if isinstance(scaling, dict):
        params = {**scaling, **params}
    theta = params.get("rope_theta", getattr(config, "rope_theta", None)) or 10000.0
    kind = (params.get("rope_type") or params.get("type") or "default").lower()
    return {**params, "rope_theta": float(theta), "rope_type": kind}


def llama3_rope_factors(config, rope: dict[str, Any]) -> np.ndarray:
    """The ``rope_freqs`` tensor llama.cpp uses for llama3-style rope scaling."""
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    freqs = 1.0 / (rope["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            factors.append(1.0)
        elif wavelen > old_ctx / low:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def check_llama_config(config) -> None:
    """Refuse models this writer cannot express faithfully."""
    archs = getattr(config, "architectures", None) or []
    is_llama = getattr(config, "model_type", None) == "llama"
    if not is_llama and not set(archs) & set(SUPPORTED_ARCHITECTURES):
        raise ValueError(f"only llama-architecture models can be written (got "
                         f"{getattr(config, 'model_type', '?')} {archs})")
    if getattr(config, "hidden_act", "silu") != "silu":
        raise ValueError(f"unsupported activation {config.hidden_act!r} (llama uses silu)")
    kind = rope_settings(config)["rope_type"]
    if kind not in ("default", "linear", "llama3"):
        raise ValueError(f"unsupported rope scaling {kind!r}; "
                         "use llama.cpp's convert_hf_to_gguf.py")


def read_base_metadata(base_gguf: str | Path) -> dict[str, tuple[Any, Any, Any]]:
    """Every ``tokenizer.*`` and ``general.*`` key of a GGUF: key -> (value, type, sub_type)."""
    from gguf import GGUFReader
    from gguf.constants import GGUFValueType

    reader = GGUFReader(str(base_gguf))
    out = {}
    for key, field in reader.fields.items():
        if not key.startswith(("tokenizer.", "general.")):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        value = field.contents()
        if isinstance(value, np.ndarray):  # keep plain python values for the writer
            value = value.tolist()
        out[key] = (value, vtype, sub)
    return out


def copy_tokenizer_metadata(writer, base: dict[str, tuple], *,
                            chat_template: str | None = None) -> None:
    """Copy the base's tokenizer keys (vocab, merges, types, special ids, add_bos/eos, template)."""
    from gguf.constants import GGUFValueType

    if "tokenizer.ggml.tokens" not in base:
        raise ValueError("the base GGUF has no tokenizer.ggml.tokens; cannot copy its tokenizer")
    for key, (value, vtype, sub) in base.items():
        if key.startswith("tokenizer.") and key != "tokenizer.chat_template":
            writer.add_key_value(key, value, vtype, sub)
    template = chat_template
    if template is None:
        template = base.get("tokenizer.chat_template", (None,))[0]
    if template:
        writer.add_key_value("tokenizer.chat_template", template, GGUFValueType.STRING)


def _hparams(writer, config, name: str, ftype: int, n_vocab: int) -> None:
    from gguf.constants import GGML_QUANT_VERSION, RopeScalingType

    n_head = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    rope = rope_settings(config)
    writer.add_type("model")
    writer.add_name(name)
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(int(config.num_hidden_layers))
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(int(n_head))
    writer.add_head_count_kv(int(getattr(config, "num_key_value_heads", None) or n_head))
    writer.add_rope_freq_base(rope["rope_theta"])
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_rope_dimension_count(int(head_dim))
    if head_dim * n_head != config.hidden_size:
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))
    if rope["rope_type"] == "linear":
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    writer.add_vocab_size(int(n_vocab))
    writer.add_file_type(ftype)
    writer.add_quantization_version(GGML_QUANT_VERSION)


def _is_tied(model, state: dict) -> bool:
    if getattr(model.config, "tie_word_embeddings", False):
        return True
    head, embed = state.get("lm_head.weight"), state.get("model.embed_tokens.weight")
    return head is not None and embed is not None and head.data_ptr() == embed.data_ptr()


def _order(name: str) -> tuple:
    if name.startswith("token_embd"):
        return (0, 0, name)
    if name.startswith("blk."):
        return (1, int(name.split(".")[1]), name)
    return (2, 0, name)


def llama_tensors(model, outtype: str = "f16") -> Iterator[tuple[str, np.ndarray]]:
    """(GGUF name, numpy array) for every weight of an HF llama model, permuted and cast."""
    import torch

    config = model.config
    n_head = config.num_attention_heads
    n_kv = getattr(config, "num_key_value_heads", None) or n_head
    state = model.state_dict()
    tied = _is_tied(model, state)
    named: list[tuple[str, str]] = []
    for hf_name in state:
        if hf_name.endswith("rotary_emb.inv_freq"):
            continue
        name = gguf_tensor_name(hf_name)
        if name is None:
            raise ValueError(f"unexpected tensor {hf_name!r}: not a llama weight (an unmerged "
                             "LoRA? merge the adapter first)")
        if name == "output.weight" and tied:
            continue
        named.append((name, hf_name))
    named.sort(key=lambda pair: _order(pair[0]))
    for name, hf_name in named:
        with torch.no_grad():
            data = state[hf_name].detach().to("cpu", torch.float32)
            if ".attn_q." in name:
                data = permute_qk(data, n_head, n_head)
            elif ".attn_k." in name:
                data = permute_qk(data, n_head, n_kv)
            if outtype == "f16" and data.ndim > 1:
                data = data.to(torch.float16)
            yield name, data.contiguous().numpy()
    rope = rope_settings(config)
    if rope["rope_type"] == "llama3":
        yield "rope_freqs.weight", llama3_rope_factors(config, rope)


@contextmanager
def atomic_gguf(out_path: Path, arch: str) -> Iterator[Any]:
    """A ``GGUFWriter`` on ``OUT.part``: finished and renamed to ``out_path`` when the block ends,
    removed if it fails, so a half-written GGUF is never registered."""
    from gguf import GGUFWriter

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    writer = GGUFWriter(str(tmp), arch)
    try:
        yield writer
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out_path)


def write_gguf(model: Any, out_path: str | Path, *, base_gguf: str | Path, outtype: str = "f16",
               name: str | None = None, chat_template: str | None = None) -> dict:
    """Write ``model`` (an HF llama model or a local HF folder) as a GGUF llama.cpp can load.

    ``base_gguf`` supplies the tokenizer metadata and chat template (copied verbatim) and the
    descriptive ``general.*`` keys. Returns path, outtype, tensor count, bytes and seconds.
    """

    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {sorted(OUTTYPES)}, not {outtype!r}")
    started = time.perf_counter()
    if isinstance(model, (str, Path)):
        from .hf_loader import load_base_model

        model = load_base_model(model, dtype="float32")
    config = model.config
    check_llama_config(config)
    base = read_base_metadata(base_gguf)
    n_vocab = len(base["tokenizer.ggml.tokens"][0])
    embed = model.get_input_embeddings().weight
    if embed.shape[0] != n_vocab:
        raise ValueError(f"the model has {embed.shape[0]} token embeddings but the base tokenizer "
                         f"has {n_vocab} tokens; resized vocabularies are not supported")
    out_path = Path(out_path)
    base_name = base.get("general.name", (None,))[0]
    with atomic_gguf(out_path, "llama") as writer:
        _hparams(writer, config, name or base_name or out_path.stem, OUTTYPES[outtype], n_vocab)
        for key in ("general.size_label", "general.license", "general.basename"):
            if key in base:
                writer.add_key_value(key, *base[key])
        copy_tokenizer_metadata(writer, base, chat_template=chat_template)
        count = 0
        for tensor_name, data in llama_tensors(model, outtype):
            writer.add_tensor(tensor_name, data)
            count += 1
    return {"path": str(out_path), "outtype": outtype, "tensors": count,
            "bytes": out_path.stat().st_size, "seconds": round(time.perf_counter() - started, 3)}
