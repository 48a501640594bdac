"""Printing helpers shared by the CLI commands: JSON, aligned tables, fields, a progress bar.

Everything printed as text goes through ``safe_text``: names, ids and texts from files, models
and users never reach the terminal with raw control characters or escape sequences.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, Iterable, Sequence

from ..formatting import aligned, duration
from ..terminal_text import safe_text

# json.dumps escapes U+0000-U+001F itself; with ensure_ascii=False it leaves DEL, the C1 controls
# (U+009B is a one-byte CSI) and bidi/zero-width format characters raw. Inside a JSON string
# "\u009b" means the same character, so escaping them keeps the JSON identical in value.
_JSON_RAW_CONTROLS = re.compile(r"[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def to_json(value: Any) -> str:
    """``value`` as indented JSON with every control/format character escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(value: Any) -> None:
    print(to_json(value))


def cell(value: Any) -> str:
    """One table cell or field value: '-' for None, control characters escaped."""
    return "-" if value is None else safe_text(value)


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print rows as left-aligned columns under a header (cells made terminal-safe)."""
    table = [[cell(h) for h in header]] + [[cell(c) for c in r] for r in rows]
    print("\n".join(aligned(table)))


def print_fields(pairs: Iterable[tuple[str, Any]], width: int = 18) -> None:
    """Print ``key value`` lines (a `show` command's body), values made terminal-safe."""
    for key, value in pairs:
        print(f"{safe_text(key):{width}} {cell(value)}")


def print_text(text: Any, **kwargs) -> None:
    """Print a long text (a report, a log tail) keeping its newlines, escaping other controls."""
    print(safe_text(text, multiline=True), **kwargs)


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
                f"elapsed {duration(elapsed)} ETA {duration(eta)} {safe_text(note)}").rstrip()
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


def run_with_log_progress(work, log_path, parse, *, bar: ProgressBar | None = None,
                          poll_s: float = 0.25):
    """Run ``work()`` in a thread while a progress bar follows what it appends to ``log_path``.

    ``parse(new_text)`` returns ``(done, total, note)`` from the text appended since the last
    look, or None. Returns ``work()``'s value or raises its exception.
    """
    import threading
    import time
    from pathlib import Path

    path = Path(log_path)
    offset = path.stat().st_size if path.is_file() else 0
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    bar = bar or ProgressBar()
    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        while True:
            thread.join(poll_s)
            alive = thread.is_alive()  # read once more after it ended: the last lines
            if path.is_file() and path.stat().st_size > offset:
                with open(path, "rb") as log:
                    log.seek(offset)
                    chunk = log.read()
                offset += len(chunk)
                seen = parse(chunk.decode("utf-8", "replace"))
                if seen:
                    done, total, note = seen
                    elapsed = time.monotonic() - started
                    fraction = done / total if total else 0.0
                    eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
                    bar.update(done, total, elapsed, eta, note)
            if not alive:
                break
    finally:
        bar.finish()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def print_import_report(report, path, *, as_json: bool = False) -> int:
    """A dataset/log import report: bad lines and warnings by number, then the summary (or the
    same as JSON); exit status 1 when any line was refused."""
    if as_json:
        print_json({"dataset_id": report.dataset_id, "name": report.name,
                    "imported": report.imported,
                    "errors": [{"line": e.line_no, "reason": e.reason} for e in report.errors],
                    "warnings": [{"line": w.line_no, "reason": w.reason} for w in report.warnings]})
    else:
        for error in report.errors:
            print(f"{cell(path.name)}: {cell(error)}")
        for warning in report.warnings:
            print(f"{cell(path.name)}: warning: {cell(warning)}")
        print(cell(report.summary()))
    return 1 if report.errors else 0
