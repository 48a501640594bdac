"""Export package, fast checks: naming, permutation, adapter layout, quantize errors, parity
bookkeeping, lineage. No model is run here (see test_export_models.py for that)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from workbench.export.adapter_gguf import write_adapter_gguf
from workbench.export.gguf_writer import (check_llama_config, copy_tokenizer_metadata,
                                          gguf_tensor_name, llama3_rope_factors, permute_qk,
                                          read_base_metadata, rope_settings)
from workbench.export.lineage import lineage_for, register_product
from workbench.export.parity import (ParityResult, PromptParity, check_chat_template, compare,
                                     store_result, stored_results)
from workbench.export.quantize import QuantizeError, quantize, quantize_command


def test_import_is_light():
    code = ("import sys, workbench.export as e; e.__all__; "
            "print([m for m in ('torch', 'transformers', 'peft', 'llama_cpp', 'textual') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("hf, gguf", [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
    ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"),
    ("model.layers.12.self_attn.k_proj.bias", "blk.12.attn_k.bias"),
    ("model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"),
    ("model.layers.29.mlp.gate_proj.weight", "blk.29.ffn_gate.weight"),
    ("model.layers.1.mlp.down_proj.weight", "blk.1.ffn_down.weight"),
    ("model.layers.1.input_layernorm.weight", "blk.1.attn_norm.weight"),
    ("model.layers.1.post_attention_layernorm.weight", "blk.1.ffn_norm.weight"),
    ("model.layers.1.self_attn.q_proj.lora_A.default.weight", None),
    ("model.rotary_emb.inv_freq", None),
])
def test_tensor_names(hf, gguf):
    assert gguf_tensor_name(hf) == gguf


def test_permute_moves_rotate_half_pairs_next_to_each_other():
    # one head of dim 4: HF pairs rows (0, 2) and (1, 3); llama.cpp wants (0, 1) and (2, 3)
    rows = np.arange(4)[:, None] * np.ones((1, 3))
    assert permute_qk(rows, 1)[:, 0].tolist() == [0, 2, 1, 3]
    # GQA: k has n_head_kv heads; the permutation works per kv head and keeps the shape
    k = np.random.default_rng(0).normal(size=(3 * 64, 576)).astype(np.float32)
    permuted = permute_qk(k, 9, 3)
    assert permuted.shape == k.shape
    inverse = permuted.reshape(3, 32, 2, 576).swapaxes(1, 2).reshape(k.shape)
    assert np.array_equal(inverse, k)
    torch = pytest.importorskip("torch")
    assert np.array_equal(permute_qk(torch.from_numpy(k), 9, 3).numpy(), permuted)


def test_config_checks_and_rope():
    llama = SimpleNamespace(model_type="llama", architectures=["LlamaForCausalLM"],
                            hidden_act="silu", rope_parameters={"rope_theta": 5e5,
                                                                "rope_type": "llama3",
                                                                "factor": 32.0},
                            hidden_size=2048, num_attention_heads=32, head_dim=64)
    check_llama_config(llama)
    assert rope_settings(llama)["rope_theta"] == 5e5
    factors = llama3_rope_factors(llama, rope_settings(llama))
    assert factors.shape == (32,) and factors[0] == 1.0 and factors[-1] == 32.0
    with pytest.raises(ValueError, match="llama"):
        check_llama_config(SimpleNamespace(model_type="qwen2", architectures=["Qwen2ForCausalLM"]))
    yarn = SimpleNamespace(**{**vars(llama), "rope_parameters": {"rope_type": "yarn"}})
    with pytest.raises(ValueError, match="yarn"):
        check_llama_config(yarn)


def test_quantize_refuses_bad_input(tmp_path, tiny_broken_gguf):
    with pytest.raises(ValueError):
        quantize_command("a.gguf", "b.gguf", "q3_weird")
    with pytest.raises(FileNotFoundError):
        quantize(tmp_path / "missing.gguf", tmp_path / "out.gguf")
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(QuantizeError, match="not supported"):
        quantize(garbage, tmp_path / "out.gguf", "q8_0")
    with pytest.raises(QuantizeError, match="llama_model_quantize"):  # llama.cpp itself refuses it
        quantize(tiny_broken_gguf, tmp_path / "out.gguf", "q8_0")
    assert not list(tmp_path.glob("out.gguf*"))
    argv = quantize_command("in.gguf", "out.gguf", "q4_k_m", threads=2)
    assert argv[1:4] == ["-m", "workbench.export.quantize", "in.gguf"] and argv[-1] == "2"


def _adapter_folder(folder, shapes, *, r=4, alpha=8, rslora=False, scale=0.1):
    safetensors = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(1)
    tensors = {}
    for module, (n_in, n_out) in shapes.items():
        prefix = f"base_model.model.model.layers.0.{module}"
        tensors[f"{prefix}.lora_A.weight"] = rng.normal(size=(r, n_in)).astype(np.float32) * scale
        tensors[f"{prefix}.lora_B.weight"] = rng.normal(size=(n_out, r)).astype(np.float32) * scale
    folder.mkdir()
    safetensors.save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": r, "lora_alpha": alpha, "use_rslora": rslora,
        "target_modules": sorted({m.split(".")[-1] for m in shapes})}))
    return tensors


def test_adapter_gguf_layout(tmp_path, bundled_path):
    from gguf import GGUFReader

    shapes = {"self_attn.q_proj": (576, 576), "self_attn.k_proj": (576, 192),
              "mlp.down_proj": (1536, 576)}
    tensors = _adapter_folder(tmp_path / "lora", shapes, rslora=True)
    info = write_adapter_gguf(tmp_path / "lora", tmp_path / "a.gguf", base_gguf=bundled_path)
    assert info["layers"] == 3 and info["rank"] == 4 and info["alpha"] == 8
    reader = GGUFReader(str(tmp_path / "a.gguf"))
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == 8 and fields["general.architecture"] == "llama"
    got = {t.name: np.array(t.data) for t in reader.tensors}
    prefix = "base_model.model.model.layers.0."
    # PEFT layouts: lora_a (r, n_in), lora_b (n_out, r); rsLoRA's sqrt(r) folded into lora_b
    assert np.array_equal(got["blk.0.ffn_down.weight.lora_a"],
                          tensors[prefix + "mlp.down_proj.lora_A.weight"])
    np.testing.assert_allclose(got["blk.0.ffn_down.weight.lora_b"],
                               tensors[prefix + "mlp.down_proj.lora_B.weight"] * 2.0, rtol=1e-6)
    q_b, k_b = (tensors[prefix + f"self_attn.{m}_proj.lora_B.weight"] * 2 for m in "qk")
    np.testing.assert_allclose(got["blk.0.attn_q.weight.lora_b"], permute_qk(q_b, 9), rtol=1e-6)
    np.testing.assert_allclose(got["blk.0.attn_k.weight.lora_b"], permute_qk(k_b, 9, 3), rtol=1e-6)
    _adapter_folder(tmp_path / "wrong", {"self_attn.k_proj": (576, 576)})
    with pytest.raises(ValueError, match="do not fit"):
        write_adapter_gguf(tmp_path / "wrong", tmp_path / "w.gguf", base_gguf=bundled_path)
    assert not (tmp_path / "w.gguf").exists() and not (tmp_path / "w.gguf.part").exists()


class CharTokenizer:
    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def test_compare_and_result_bookkeeping(tmp_path):
    tok = CharTokenizer()
    same = compare("p1", "abcd", "abcd", tok)
    assert same.exact and same.first_divergence is None and same.agreement == 1.0
    split = compare("p2", "abcdef", "abXdef", tok, reference_prompt_tokens=5)
    assert split.first_divergence == 2
    assert (split.reference_token, split.candidate_token) == ("c", "X")
    assert split.agreement == pytest.approx(2 / 6)
    short = compare("p3", "ab", "abcd", tok)
    assert short.first_divergence == 2 and short.reference_token == "<end>"
    result = ParityResult("gguf_vs_gguf", "ref.gguf", "cand.gguf", [same, split, short],
                          threshold=0.5)
    assert result.token_agreement == pytest.approx((4 + 2 + 2) / (4 + 6 + 4))
    assert result.exact_matches == 1 and result.passed
    data = json.loads(json.dumps(result.to_dict()))
    assert data["prompts"][1]["first_divergence"] == 2 and data["n_prompts"] == 3
    failed = ParityResult("gguf_vs_gguf", "a", "b", [PromptParity("p", "", "", [], [], 0, None,
                                                                  error="worker crashed")])
    assert not failed.passed

    from workbench.store import Store

    with Store(tmp_path / "wb.db") as store:
        row_id = store_result(store, result, model_id="m1")
        store_result(store, ParityResult("chat_template", "a", "b", chat_template_ok=False))
        rows = stored_results(store, "m1")
        assert [r["id"] for r in rows] == [row_id]
        assert rows[0]["passed"] == 1 and rows[0]["exact_matches"] == 1
        assert rows[0]["token_agreement"] == pytest.approx(result.token_agreement)
        assert json.loads(rows[0]["details"])["prompts"][2]["candidate_text"] == "abcd"
        assert stored_results(store)[0]["passed"] == 0


def _tokenizer_only_gguf(path, base_meta, template=None):
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    copy_tokenizer_metadata(writer, base_meta, chat_template=template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_chat_template_check_metadata(tmp_path, bundled_path):
    base = read_base_metadata(bundled_path)
    same = _tokenizer_only_gguf(tmp_path / "same.gguf", base)
    ok = check_chat_template(bundled_path, same, run_llama=False)
    assert ok.chat_template_ok and ok.passed and ok.details["rendered_equal"]
    turn = "<|im_start|>user\nWho should be paged?<|im_end|>\n<|im_start|>assistant\n"
    assert turn in ok.details["rendered"]
    other = _tokenizer_only_gguf(tmp_path / "other.gguf", base,
                                 template="{% for m in messages %}{{ m['content'] }}{% endfor %}")
    bad = check_chat_template(bundled_path, other, run_llama=False)
    assert not bad.chat_template_ok and not bad.passed
    assert bad.details["differing_keys"] == ["tokenizer.chat_template"]
    assert bad.details["rendered_equal"] is False


def test_lineage_and_registration(tmp_path, bundled_path):
    from workbench.store import Store

    with pytest.raises(ValueError):
        lineage_for("copied", base_model="x")
    with Store(tmp_path / "wb.db") as store:
        record = register_product(store, bundled_path, kind="quantized", model_id="ft-q4_k_m",
                                  base_model="smollm2", job=7, dataset="incidents",
                                  quantization="q4_k_m", parent="ft")
        assert record.source == "export:quantized" and record.architecture == "llama"
        assert record.lineage == {"kind": "quantized", "base_model": "smollm2", "job": 7,
                                  "dataset": "incidents", "quantization": "q4_k_m", "parent": "ft"}
        assert store.get_model("ft-q4_k_m").lineage["job"] == 7
