"""A llama-server the workbench starts, watches and stops itself (``ManagedServer``).

The server listens on a free port of 127.0.0.1 only, in its own session (a Ctrl-C in the terminal
is the workbench's to handle). ``health()`` says, without any HTTP, whether the process still
runs and, if not, how it ended and what its log said.

How orphans are prevented: every server has a *watchdog*, a tiny stdlib-only Python process
(``sys.executable -I -S -c``) whose stdin is the read end of a pipe. The write end lives only in
the workbench (it is not inheritable, and every ``subprocess`` child has it closed). After
the server starts its pid is written to the pipe and the watchdog opens a pidfd on it; when the
workbench dies in any way, SIGKILL included, the kernel closes the pipe, the watchdog reads
EOF and SIGKILLs the server through the pidfd (so a recycled pid is never hit). ``stop()`` stops
the server itself (SIGTERM, then SIGKILL) and disarms the watchdog; ``stop_all_servers()``
(also run at exit) stops every server still running. ``PR_SET_PDEATHSIG`` is deliberately not
used: it fires when the *thread* that started the server ends, which would kill servers that a
short-lived thread started, and it needs a ``preexec_fn``, which is unsafe in threaded programs.
The one gap: a workbench killed in the microseconds between the server's fork and the pid write.
"""

from __future__ import annotations

import atexit
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .exits import describe_exit
from .logs import open_log_fd, read_tail, rotate, useful_tail
from ..config import default_threads
from .cpu_features import use_extra_buffers
from .server_binary import (ServerNotFound, find_llama_server, require_llama_server, server_version,
                            supports_flag)

__all__ = ["ManagedServer", "ServerNotFound", "ServerSpec", "ServerStartError", "find_llama_server",
           "require_llama_server", "server_version", "stop_all_servers"]

PORT_ATTEMPTS = 3
POLL_S = 0.1

WATCHDOG = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
line = sys.stdin.buffer.readline().strip()
if not line.isdigit():
    sys.exit(0)
pid = int(line)
try:
    handle = os.pidfd_open(pid)  # immune to pid reuse
except ProcessLookupError:
    sys.exit(0)
except (AttributeError, OSError):
    handle = None
if b"disarm" in sys.stdin.buffer.read():
    sys.exit(0)
try:
    if handle is not None:
        signal.pidfd_send_signal(handle, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
except OSError:
    pass
"""


class ServerStartError(RuntimeError):
    """llama-server did not come up; the message carries the useful tail of its log."""


@dataclass(frozen=True)
class ServerSpec:
    """What to serve and how. ``n_ctx`` is the context of *one* slot."""

    model_path: str
    n_ctx: int = 2048
    parallel: int = 8
    n_gpu_layers: int = 0
    n_threads: int | None = None
    lora_paths: tuple[str, ...] = ()
    alias: str | None = None
    niceness: int = 0  # > 0: lower CPU priority (so an interactive UI stays snappy)

    def argv(self, binary: str, port: int) -> list[str]:
        threads = self.n_threads if self.n_threads is not None else default_threads(1)
        nice = shutil.which("nice") if self.niceness > 0 else None
        prefix = [nice, "-n", str(self.niceness)] if nice else []  # nice execs: same pid
        argv = [*prefix, binary, "-m", str(self.model_path), "--host", "127.0.0.1", "--port", str(port),
                "-np", str(self.parallel), "-c", str(self.n_ctx * self.parallel),
                "-t", str(threads), "-ngl", str(self.n_gpu_layers)]
        if self.alias:
            argv += ["--alias", self.alias]
        for path in self.lora_paths:
            argv += ["--lora", str(path)]
        if self.lora_paths:
            argv.append("--lora-init-without-apply")  # requests pick adapters: "lora": [{id, scale}]
        if not use_extra_buffers():
            argv.append("--no-repack")  # AMX repacked weights segfault (see cpu_features)
        if supports_flag(binary, "--no-webui"):
            argv.append("--no-webui")
        return argv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_registry: dict[int, "ManagedServer"] = {}
_registry_lock = threading.Lock()


def stop_all_servers() -> None:
    """Stop every ``ManagedServer`` this process started and has not stopped."""
    with _registry_lock:
        servers = list(_registry.values())
    for server in servers:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - stop the others anyway
            pass


atexit.register(stop_all_servers)


class ManagedServer:
    """One llama-server child process. Thread-safe; ``start()`` and ``stop()`` are idempotent."""

    def __init__(self, spec: ServerSpec, *, binary: str | None = None, log_path: Path | None = None,
                 startup_timeout_s: float = 180.0):
        self.spec = spec
        self.binary = binary
        self.log_path = Path(log_path) if log_path is not None else None
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self.props: dict = {}
        self._process: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self._pipe: int | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=200)
        self._reader: threading.Thread | None = None
        self._stopped = False
        self._cancel = threading.Event()  # stop() during start(): give up waiting
        self._lock = threading.RLock()

    # -- what it is -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.alias or Path(self.spec.model_path).stem

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def version(self) -> str:
        return server_version(self.binary or require_llama_server())

    @property
    def label(self) -> str:
        slots = self.props.get("total_slots", self.spec.parallel)
        return f"llama-server {self.version.split()[0]}, {slots} slots (managed)"

    def log_tail(self) -> str:
        """The useful end of the server's log ("" when there is none)."""
        if self.log_path is None:
            lines = list(self._tail)
        else:
            lines = read_tail(self.log_path)
        return useful_tail(lines)

    def health(self) -> str | None:
        """None while the server process runs; else why it is gone (no HTTP, cheap)."""
        process = self._process
        if process is None:
            return f"llama-server ({self.name}) " + ("was stopped" if self._stopped else "is not started")
        code = process.poll()
        if code is None:
            return None
        tail = self.log_tail()
        return f"llama-server ({self.name}) {describe_exit(code)}" + (f" | log: {tail}" if tail else "")

    # -- start / stop -----------------------------------------------------------------------
    def start(self) -> "ManagedServer":
        with self._lock:
            if self.alive:
                return self
            self._cancel.clear()
            if self._process is not None:
                self._cleanup()
            self.binary = self.binary or require_llama_server()
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                rotate(self.log_path)
            deadline = time.monotonic() + self.startup_timeout_s
            for attempt in range(PORT_ATTEMPTS):
                self._spawn(_free_port())
                failure = self._wait_healthy(deadline)
                if failure is None:
                    break
                port_taken = "couldn't bind" in failure or "address already in use" in failure.lower()
                self._cleanup(timeout_s=2.0)
                if not port_taken or attempt == PORT_ATTEMPTS - 1:
                    raise ServerStartError(failure)
            self._stopped = False
            try:
                self.props = httpx.get(f"{self.base_url}/props", timeout=10, trust_env=False).json()
            except (httpx.HTTPError, ValueError):
                self.props = {}
            return self

    def _spawn(self, port: int) -> None:
        self.port = port
        self._tail.clear()
        with _registry_lock:
            _registry[id(self)] = self
        read_end, self._pipe = os.pipe()  # both non-inheritable
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG], stdin=read_end,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            self._watchdog = None  # (a frozen app without a Python): the server runs unguarded
        finally:
            os.close(read_end)
        log = (os.fdopen(open_log_fd(str(self.log_path)), "wb") if self.log_path is not None
               else subprocess.PIPE)
        try:
            self._process = subprocess.Popen(
                self.spec.argv(self.binary, port), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "GGML_NO_BACKTRACE": "1"})
        except OSError as exc:
            self._cleanup()
            raise ServerStartError(f"could not run {self.binary}: {exc}") from exc
        finally:
            if log is not subprocess.PIPE:
                log.close()  # the child has its own descriptor
        try:
            os.write(self._pipe, f"{self._process.pid}\n".encode())  # arms the watchdog
        except OSError:
            pass  # no watchdog
        if self.log_path is None:
            self._reader = threading.Thread(target=self._read_log, args=(self._process.stdout,),
                                            name=f"llama-server-log-{port}", daemon=True)
            self._reader.start()

    def _read_log(self, stream) -> None:
        for raw in stream:
            self._tail.append(raw.decode("utf-8", "replace"))

    def _wait_healthy(self, deadline: float) -> str | None:
        """None once /health answers 200; else why the server will not come up."""
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if self._process.poll() is not None:
                    if self._reader is not None:
                        self._reader.join(2.0)
                    return (f"llama-server ({self.name}) {describe_exit(self._process.returncode)} "
                            f"while starting | log: {self.log_tail() or '(empty)'}")
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return None
                except httpx.HTTPError:
                    pass
                if self._cancel.is_set():
                    return f"llama-server ({self.name}) was stopped while starting"
                if time.monotonic() > deadline:
                    return (f"llama-server ({self.name}) was not healthy after "
                            f"{self.startup_timeout_s:.0f} s | log: {self.log_tail() or '(empty)'}")
                time.sleep(POLL_S)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM the server, wait up to ``timeout_s``, then SIGKILL. Idempotent."""
        self._cancel.set()
        with self._lock:
            if self._process is not None:
                self._stopped = True
            self._cleanup(timeout_s)

    def _cleanup(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                if self._reader is not None:
                    self._reader.join(2.0)
                process.stdout.close()
        self._reader = None
        if self._pipe is not None:
            try:
                os.write(self._pipe, b"disarm\n")
            except OSError:
                pass
            os.close(self._pipe)
            self._pipe = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            try:
                watchdog.wait(5)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
        with _registry_lock:
            _registry.pop(id(self), None)

    def __enter__(self) -> "ManagedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ManagedServer {self.name} port={self.port} {'running' if self.alive else 'not running'}>"
