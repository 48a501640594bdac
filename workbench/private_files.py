"""Files that hold incident texts and answers are created owner-only (0600)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def open_private(path: str | Path, mode: str = "w", **kwargs) -> IO:
    """``open(path, mode)`` for text, creating the file 0600 (an existing file is tightened).

    ``mode`` is "w" (truncate) or "a" (append); other ``open`` arguments pass through.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        pass  # a file we may write but not chmod (another owner): keep its mode
    kwargs.setdefault("encoding", "utf-8")
    return open(fd, mode, **kwargs)
