"""Engine log files: rotated so they never grow without bound, created owner-only (they hold
prompts), and read back for the one or two lines that say why an engine failed."""

from __future__ import annotations

import os
import re
from pathlib import Path

MAX_LOG_BYTES = 5 * 1024 * 1024
KEEP_LOGS = 3

# What a crashing llama.cpp prints that is not the reason: gdb/lldb attach chatter and frames.
_NOISE = re.compile(
    r"ptrace|No stack\.|\[Inferior \d|\[New LWP|\[Thread debugging|Using host libthread_db|"
    r"Could not attach|warning: process \d+|Attaching to process|Detaching from|"
    r"^#\d+\s+0x|^0x[0-9a-f]+ in |^\S+\.so(?:\.\d+)*\(\+?[^)]*\)\s*\[0x|^\(gdb\)|"
    r"^/proc/\d+/|^Backtrace|^\s*$", re.IGNORECASE)
_REASON = re.compile(r"GGML_ASSERT|error|failed|abort|exception|terminate called|out of memory|"
                     r"cannot|invalid|what\(\):", re.IGNORECASE)


def rotate(path: Path, max_bytes: int = MAX_LOG_BYTES, keep: int = KEEP_LOGS) -> None:
    """Shift ``path`` to ``path.1`` (… ``path.keep``) once it is larger than ``max_bytes``."""
    try:
        if not path.is_file() or path.stat().st_size <= max_bytes:
            return
    except OSError:
        return
    for index in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{index + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))


def open_log_fd(path: str | None, *, truncate: bool = False) -> int:
    """A write descriptor on ``path`` (owner-only when created), or on /dev/null."""
    if not path:
        return os.open(os.devnull, os.O_WRONLY)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
    return os.open(path, flags, 0o600)


def read_tail(path: Path | None, size: int = 16000) -> list[str]:
    """The last lines of a log file (empty when there is none)."""
    if path is None or not path.is_file():
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def useful_tail(lines: list[str], keep: int = 6) -> str:
    """The distinct lines near the end of a llama.cpp log that say what went wrong.

    Debugger chatter and backtrace frames are dropped; lines that name an error, a failed
    check or an abort come first; without any, the last few meaningful lines.
    """
    recent = [line.strip() for line in lines[-120:] if line.strip() and not _NOISE.search(line.strip())]
    reasons: list[str] = []
    for line in recent:
        parts = line.split(None, 2)
        text = (parts[2] if len(parts) == 3 and parts[1] in {"E", "W", "I", "D"} else line)[:240]
        if (len(parts) == 3 and parts[1] == "E") or _REASON.search(line):
            if text not in reasons:
                reasons.append(text)
    chosen = reasons[-keep:] or [line[:240] for line in recent[-3:]]
    return " / ".join(chosen)
