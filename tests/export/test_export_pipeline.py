"""The whole export of a LoRA fine-tune: merge, GGUF, adapter GGUF, q4_k_m, parity, registry."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")


def test_cli_refuses_bad_inputs_quickly(tmp_path, bundled_path):
    argv = [sys.executable, "-m", "workbench.export.pipeline", "--base", str(bundled_path),
            "--adapter", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), "--name", "x"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 1 and not result["ok"] and "adapter_config.json" in result["error"]


@pytest.mark.slow
def test_export_finetune_end_to_end(tmp_path, bundled_path):
    from workbench.export.adapter_gguf import write_random_adapter
    from workbench.export.parity import stored_results
    from workbench.export.parity_gates import gate_for
    from workbench.export.pipeline import export_finetune
    from workbench.store import Store

    adapter = write_random_adapter(bundled_path, tmp_path / "adapter", std=0.05)
    steps = []
    with Store(tmp_path / "wb.db") as store:
        out = export_finetune(
            bundled_path, adapter, tmp_path / "out", name="ft-test", quantizations=("q4_k_m",),
            prompts=["What is the capital of France?", "Is a failed backup an incident?"],
            max_new_tokens=16, store=store, base_model_id="smollm2-135m-instruct-q4_1", job=3,
            dataset="incidents", n_threads=2, progress=lambda step, f: steps.append(step))
        print(json.dumps({"timings": out["timings"], "parity": out["parity"]}))
        assert steps[0] == "merge" and steps[-1] == "done"
        assert out["models"] == ["ft-test", "ft-test-q4_k_m"]  # the adapter is not a model
        merged, quant = (store.get_model(m) for m in out["models"])
        assert merged.file_type == "F16" and merged.has_chat_template
        adapter_gguf = str(out["adapter"]["path"])
        assert merged.lineage["adapter_gguf"] == adapter_gguf
        assert quant.lineage == {"kind": "quantized", "base_model": "smollm2-135m-instruct-q4_1",
                                 "job": 3, "dataset": "incidents", "quantization": "q4_k_m",
                                 "parent": "ft-test", "adapter_gguf": adapter_gguf}
        from workbench.models.registry import InvalidGGUF, Registry
        with pytest.raises(InvalidGGUF, match="LoRA adapter, not a model"):
            Registry(store).add(adapter_gguf)
        assert quant.file_size < 0.5 * merged.file_size
        kinds = {p["kind"]: p for p in out["parity"]}
        assert kinds["chat_template"]["chat_template_ok"]
        assert kinds["hf_vs_gguf"]["token_agreement"] >= 0.75  # F16 GGUF vs float32 transformers
        assert 0.0 <= kinds["gguf_vs_gguf"]["token_agreement"] <= 1.0
        quantized = kinds["gguf_vs_gguf"]
        assert not quantized["advisory"] and quantized["threshold"] == gate_for("q4_k_m").threshold
        assert quantized["agreement"] == quantized["forced_agreement"] >= quantized["threshold"]
        assert all(p["verdict"] == "passed" for p in out["parity"])
        rows = stored_results(store)
        assert len(rows) == 3 and {r["model_id"] for r in rows} == {"ft-test", "ft-test-q4_k_m"}
