"""Model worker processes: each loaded model lives in its own (spawned) process.

The calling process never imports llama.cpp. A model that fails to load, or a process that dies
(a hostile file, an out-of-memory kill, a signal), becomes a failed ``Generation`` with a clear
message; the worker is restarted for the next request and the caller carries on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from .exits import describe_exit
from .logs import open_log_fd, read_tail, rotate, useful_tail
from .base import Generation, GenerationRequest
from .llama_cpp import EngineSpec

LOAD_TIMEOUT_S = 300.0
# A request's time limit: a base plus a budget per token it may write (a runaway generation or
# a hostile chat template that never ends is killed with the worker); WORKBENCH_REQUEST_TIMEOUT_S
# sets a fixed limit instead.
REQUEST_BASE_S = 120.0
REQUEST_PER_TOKEN_S = 1.0
REQUEST_MAX_S = 900.0
MAX_LOAD_CRASHES = 2
MIB = 1024 * 1024


def request_timeout_for(request: GenerationRequest, fixed: float | None = None) -> float:
    """Seconds one request may take before its worker is killed."""
    if fixed:
        return fixed
    env = os.environ.get("WORKBENCH_REQUEST_TIMEOUT_S")
    if env:
        try:
            return max(1.0, float(env))
        except ValueError:
            pass
    return min(REQUEST_MAX_S, REQUEST_BASE_S + REQUEST_PER_TOKEN_S * max(1, request.max_tokens or 1))


def memory_limit_bytes(spec: EngineSpec) -> int | None:
    """The worker's private-memory limit (RLIMIT_DATA), or None for no limit.

    Default on CPU: twice the model file, 1 MiB per context token, plus 2 GiB, which leaves room
    for any normal load while a runaway allocation (a chat template that builds a huge string)
    fails with a clear error instead of taking the machine's memory. Not set with GPU offload
    (drivers map large host areas). ``WORKBENCH_WORKER_MEMORY_MB`` overrides it (0: no limit).
    """
    env = os.environ.get("WORKBENCH_WORKER_MEMORY_MB")
    if env is not None:
        try:
            megabytes = int(env)
        except ValueError:
            megabytes = -1
        if megabytes >= 0:
            return megabytes * MIB or None
    if spec.n_gpu_layers:
        return None
    try:
        size = os.path.getsize(spec.model_path)
    except OSError:
        size = 0
    return 2 * size + spec.n_ctx * MIB + 2048 * MIB


def _limit_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform: the request time limit still bounds a runaway


class WorkerError(RuntimeError):
    """The worker could not serve a request; the message says why."""


class ModelLoadError(WorkerError):
    """The model failed to load (llama.cpp refused the file or ran out of memory)."""


class WorkerCrashed(WorkerError):
    """The worker process died."""


def _log_tail(path: Path | None) -> str:
    useful = useful_tail(read_tail(path, 8000), keep=3)
    return (" | log: " + useful) if useful else ""


def prepare_child(log_path: str | None, niceness: int = 0,
                  memory_limit: int | None = None) -> None:
    """Set up a llama.cpp child process: Ctrl-C left to the parent, no debugger chatter on an
    abort, lower priority, a memory cap, stdout and stderr (llama.cpp's own too) into the log."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    os.environ["GGML_NO_BACKTRACE"] = "1"  # an abort logs its reason, not debugger chatter
    if niceness:
        try:
            os.nice(niceness)
        except OSError:
            pass
    _limit_memory(memory_limit)
    target = open_log_fd(log_path)
    os.dup2(target, 1)
    os.dup2(target, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def _serve(conn, spec: dict, log_path: str | None, niceness: int = 0,
           memory_limit: int | None = None) -> None:
    """Worker process main loop: load once, then answer (op, payload) messages until closed."""
    prepare_child(log_path, niceness, memory_limit)
    from .llama_cpp import LlamaCppEngine

    try:
        engine = LlamaCppEngine(EngineSpec(**spec))
    except BaseException as exc:  # noqa: BLE001 - report any load failure to the parent
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", engine.describe()))
    while True:
        try:
            op, payload = conn.recv()
        except (EOFError, OSError):
            break
        if op == "close":
            break
        try:
            conn.send(("ok", getattr(engine, op)(payload)))
        except MemoryError:
            conn.send(("error", "out of memory: the request needed more than the worker's "
                                f"memory limit ({(memory_limit or 0) / 2**30:.1f} GiB; "
                                "WORKBENCH_WORKER_MEMORY_MB raises it)"))
        except Exception as exc:  # noqa: BLE001 - a failed request must not end the worker
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    engine.close()


class ModelWorker:
    """A handle on one model worker process. Thread-safe: one request at a time."""

    slots = 1  # llama-cpp-python cannot batch: one generation at a time

    def __init__(self, spec: EngineSpec, *, label: str = "model", log_dir: Path | None = None,
                 request_timeout: float | None = None, niceness: int = 0):
        """``niceness`` > 0 lowers the worker's CPU priority (so an interactive UI stays snappy);
        ``request_timeout`` fixes every request's limit (default: ``request_timeout_for``)."""
        self.spec = spec
        self.label = label
        self.log_path = (Path(log_dir) / f"worker-{label}.log") if log_dir else None
        self.request_timeout = request_timeout
        self.niceness = niceness
        self.info: dict = {}
        self.load_failure: str | None = None
        self._load_crashes = 0
        self._process = None
        self._conn = None
        self._lock = threading.RLock()

    @property
    def engine(self) -> str:
        """The label stored on each run this worker answers."""
        return "llama.cpp worker (embedded)"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> dict:
        """Spawn the process and load the model; raise ``ModelLoadError`` if that fails."""
        with self._lock:
            if self.alive:
                return self.info
            if self.load_failure:
                raise ModelLoadError(self.load_failure)
            if self.log_path:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                rotate(self.log_path)
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe()
            self._process = ctx.Process(
                target=_serve, args=(child, self.spec.to_dict(),
                                     str(self.log_path) if self.log_path else None, self.niceness,
                                     memory_limit_bytes(self.spec)),
                name=f"workbench-{self.label}", daemon=True)
            try:
                self._process.start()
            except (OSError, ValueError) as exc:
                self._process = None
                parent.close()
                raise WorkerError(f"could not start a model worker process: {exc}") from exc
            finally:
                child.close()
            self._conn = parent
            try:
                kind, payload = self._receive(LOAD_TIMEOUT_S, "loading the model")
            except WorkerCrashed as exc:
                self._load_crashes += 1
                if self._load_crashes >= MAX_LOAD_CRASHES:
                    self.load_failure = f"model {Path(self.spec.model_path).name} crashes on load: {exc}"
                raise
            if kind == "load_error":
                self._reap()
                self.load_failure = f"model {Path(self.spec.model_path).name} failed to load: {payload}"
                raise ModelLoadError(self.load_failure)
            self.info = payload
            return payload

    def _receive(self, timeout: float, doing: str):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._conn.poll(0.05):
                    return self._conn.recv()
            except (EOFError, OSError):
                pass
            if not self._process.is_alive():
                self._process.join(1)
                # The process may have answered just before exiting.
                try:
                    if self._conn.poll(0):
                        return self._conn.recv()
                except (EOFError, OSError):
                    pass
                code = self._process.exitcode
                self._reap()
                raise WorkerCrashed(f"model worker {describe_exit(code)} while {doing}"
                                    + _log_tail(self.log_path))
            if time.monotonic() > deadline:
                self._reap(kill=True)
                raise WorkerCrashed(f"model worker timed out after {timeout:.0f} s while {doing}; "
                                    "it was killed (a runaway generation or chat template?)")

    def call(self, op: str, payload: dict, timeout: float | None = None) -> dict:
        """Run one operation in the worker, starting it if needed. Raises ``WorkerError``."""
        with self._lock:
            self.start()
            try:
                self._conn.send((op, payload))
            except (BrokenPipeError, OSError):
                self._reap()
                raise WorkerCrashed("model worker went away before the request was sent")
            kind, result = self._receive(timeout or self.request_timeout or REQUEST_MAX_S,
                                         "generating")
            if kind == "error":
                raise WorkerError(result)
            return result

    def generate(self, request: GenerationRequest, options: dict | None = None) -> Generation:
        """Answer one request. Failures come back as ``Generation.failed``, never as exceptions.

        ``options``: engine options beside the request (see ``LlamaCppEngine.generate``).
        """
        started = time.perf_counter()
        try:
            timeout = request_timeout_for(request, self.request_timeout)
            payload = {**asdict(request), **(options or {})}
            return Generation(**self.call("generate", payload, timeout=timeout))
        except WorkerError as exc:
            return Generation.failed(str(exc), (time.perf_counter() - started) * 1000)

    def _reap(self, kill: bool = False) -> None:
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None:
            if kill and process.is_alive():
                process.kill()
            process.join(5)

    def close(self) -> None:
        """End the process (frees the model's memory, GPU included). A worker busy with a
        request is killed rather than waited for."""
        if not self._lock.acquire(timeout=1.0):
            self.kill()  # the request in flight ends with the process; its caller gets an error
            self._lock.acquire()
        try:
            if self._process is None:
                return
            if self._process.is_alive():
                try:
                    self._conn.send(("close", {}))
                except (BrokenPipeError, OSError):
                    pass
                self._process.join(5)
                if self._process.is_alive():
                    self._process.kill()
            self._reap()
        finally:
            self._lock.release()

    def kill(self) -> None:
        """Kill the process at once (used to cancel a long generation)."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    def __enter__(self) -> "ModelWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
