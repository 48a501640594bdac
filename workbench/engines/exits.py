"""How a child process ended, in words (for error messages)."""

from __future__ import annotations

import signal


def describe_exit(code: int | None) -> str:
    """``killed by SIGKILL``, ``exited with status 1`` or ``did not exit``."""
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"
