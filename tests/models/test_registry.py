"""GGUF checks and the model registry: bad files are refused before llama.cpp sees them."""

import json
import struct
import subprocess
import sys

import pytest

from workbench.models.gguf_inspect import InvalidGGUF, inspect_gguf
from workbench.models.registry import BUNDLED_ID, Registry, sha256_file


def test_bundled_model_is_registered_without_any_step(ws, bundled_path):
    model = ws.store.get_model(BUNDLED_ID)
    assert model.path == str(bundled_path.resolve())
    assert model.architecture == "llama"
    assert model.file_type == "Q4_1"
    assert model.size_label == "135M"
    assert model.context_length == 8192
    assert 130_000_000 < model.parameters < 140_000_000
    assert model.file_size == bundled_path.stat().st_size
    assert model.sha256 == sha256_file(bundled_path)
    assert model.has_chat_template == 1
    assert model.source.startswith("bundled")


def test_wrong_magic_is_refused(ws, tmp_path):
    bad = tmp_path / "weights.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(InvalidGGUF, match="not a GGUF file"):
        Registry(ws.store).add(bad)
    assert [m.id for m in ws.store.list_models()] == [BUNDLED_ID]


def test_truncated_copy_is_refused(tmp_path, bundled_path):
    data = bundled_path.read_bytes()
    for cut in (10, 2000, len(data) // 2, len(data) - 1):
        part = tmp_path / f"cut{cut}.gguf"
        part.write_bytes(data[:cut])
        with pytest.raises(InvalidGGUF, match="too short|truncated"):
            inspect_gguf(part)


def test_absurd_counts_and_lengths_are_refused(tmp_path):
    absurd = tmp_path / "absurd.gguf"
    absurd.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 2**40) + b"\0" * 64)
    with pytest.raises(InvalidGGUF, match="absurd header counts"):
        inspect_gguf(absurd)
    huge_key = tmp_path / "hugekey.gguf"
    huge_key.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 2**62) + b"k" * 40)
    with pytest.raises(InvalidGGUF, match="truncated or corrupt"):
        inspect_gguf(huge_key)
    version = tmp_path / "v9.gguf"
    version.write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 1, 1) + b"\0" * 64)
    with pytest.raises(InvalidGGUF, match="version 9"):
        inspect_gguf(version)


def test_random_bytes_after_a_valid_header_never_escape_as_other_errors(tmp_path):
    import random

    rng = random.Random(7)
    for n in range(200):
        blob = b"GGUF" + struct.pack("<IQQ", 3, rng.randint(0, 5), rng.randint(0, 5))
        blob += bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        path = tmp_path / f"fuzz{n}.gguf"
        path.write_bytes(blob)
        with pytest.raises(InvalidGGUF):
            inspect_gguf(path)


def test_tiny_valid_gguf_is_accepted_with_metadata(ws, tiny_broken_gguf):
    model = Registry(ws.store).add(tiny_broken_gguf)
    assert model.id == "broken-llama"
    assert model.architecture == "llama" and model.file_type == "F32"
    assert model.parameters == 128


def test_workspace_models_folder_is_scanned_and_bad_files_reported(ws, tiny_broken_gguf):
    target = ws.workspace.models_dir / "scanned.gguf"
    target.write_bytes(tiny_broken_gguf.read_bytes())
    (ws.workspace.models_dir / "junk.gguf").write_bytes(b"hello")
    problems = Registry(ws.store, ws.workspace).sync()
    assert any("junk.gguf" in p for p in problems)
    assert "scanned" in {m.id for m in ws.store.list_models()}


def test_cli_models_list_and_show_json(tmp_path, tiny_broken_gguf):
    (tmp_path / "w").mkdir()
    base = [sys.executable, "-m", "workbench", "--workspace", str(tmp_path / "w")]
    listed = json.loads(subprocess.run(base + ["models", "list", "--json"], capture_output=True,
                                       text=True, check=True).stdout)
    assert [m["id"] for m in listed] == [BUNDLED_ID]
    for key in ("architecture", "name", "size_label", "parameters", "file_type",
                "context_length", "file_size", "sha256", "source"):
        assert listed[0][key], key
    added = subprocess.run(base + ["models", "add", str(tiny_broken_gguf), "--json"],
                           capture_output=True, text=True, check=True)
    assert json.loads(added.stdout)["id"] == "broken-llama"
    shown = json.loads(subprocess.run(base + ["models", "show", "broken-llama", "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["benchmarks"] == [] and shown["n_gpu_layers"] == 0
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 4)
    refused = subprocess.run(base + ["models", "add", str(bad)], capture_output=True, text=True)
    assert refused.returncode == 2
    assert "too short for a GGUF header" in refused.stderr


# -- re-checked before each load -------------------------------------------------------------
def _tiny_gguf(path, name: str, rows: int = 16):
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(128)
    writer.add_file_type(0)
    writer.add_tensor("token_embd.weight", np.zeros((rows, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_an_unchanged_file_passes_and_a_changed_one_is_inspected_again(ws, tmp_path):
    from workbench.models.registry import verify_model_file

    path = _tiny_gguf(tmp_path / "m.gguf", "first")
    first = Registry(ws.store).add(path, model_id="m")
    ws.store.set_model_settings("m", n_ctx=512, engine="worker")
    assert verify_model_file(ws.store, "m").sha256 == first.sha256
    _tiny_gguf(path, "second", rows=32)  # replaced in place by another valid model
    again = verify_model_file(ws.store, "m")
    assert (again.name, again.parameters) == ("second", 256)
    assert again.sha256 == sha256_file(path) != first.sha256
    assert (again.n_ctx, again.engine) == (512, "worker")  # operator settings kept
    assert ws.store.get_model("m").file_size == path.stat().st_size


@pytest.mark.parametrize("damage", ["garbage", "same-size-and-mtime", "deleted"])
def test_a_file_broken_since_registration_is_refused_before_loading(ws, tmp_path, damage):
    import os

    from workbench.models.registry import verify_model_file

    path = _tiny_gguf(tmp_path / "m.gguf", "first")
    Registry(ws.store).add(path, model_id="m")
    before = path.stat()
    if damage == "deleted":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"<html>not found</html>")
    else:  # the header overwritten, size and mtime put back: the magic check catches it
        data = bytearray(path.read_bytes())
        data[:4] = b"XXXX"
        path.write_bytes(bytes(data))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    expected = "is gone" if damage == "deleted" else "no longer a valid GGUF model"
    with pytest.raises(InvalidGGUF, match=f"^model m: .*{expected}"):
        verify_model_file(ws.store, "m")


def test_a_replay_refuses_a_model_file_replaced_by_garbage(ws, tmp_path):
    from workbench.experiments.replay import Replay

    path = _tiny_gguf(tmp_path / "m.gguf", "first")
    Registry(ws.store).add(path, model_id="m")
    ws.store.set_model_settings("m", engine="worker")
    a = ws.store.create_variant("va", "m")
    b = ws.store.create_variant("vb", "m", system_prompt="other")
    ds = ws.store.save_dataset("d", [{"key": "k", "input": "x"}], source_path=None, sha256=None,
                               n_rejected=0)
    exp = ws.store.create_experiment("e", ds, {"A": a.id, "B": b.id})
    path.write_bytes(b"\0" * 64)
    progress = list(Replay(ws.store.path, exp.id, log_dir=tmp_path / "logs").run())
    assert "no longer a valid GGUF model" in progress[-1].stopped_reason
    assert progress[-1].cancelled and ws.store.run_count(exp.id) == 0
