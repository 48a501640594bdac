"""Printing helpers shared by the CLI commands: JSON, aligned tables, a progress bar."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from ..formatting import aligned, duration


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as left-aligned columns under a header."""
    table = [list(map(str, header))] + [["-" if c is None else str(c) for c in r] for r in rows]
    print("\n".join(aligned(table)))


class ProgressBar:
    """A one-line progress bar with ETA on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream, self.width = stream or sys.stderr, width  # sys.stderr as it is now
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_plain = -1

    def update(self, done: int, total: int, elapsed: float, eta: float | None, note: str = "") -> None:
        fraction = done / total if total else 1.0
        filled = int(self.width * fraction)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {fraction:4.0%} "
                f"elapsed {duration(elapsed)} ETA {duration(eta)} {note}").rstrip()
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            step = int(fraction * 10)
            if step == self._last_plain and done != total:
                return
            self._last_plain = step
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
