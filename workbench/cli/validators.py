"""argparse ``type=`` validators: a bad value is refused at parse time with a clear one-line reason.

Each factory returns a callable argparse runs on the option's text; it raises
``argparse.ArgumentTypeError`` (argparse prefixes the option name) and never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable

from ..terminal_text import is_printable_name, safe_text


def _shown(text: str) -> str:
    return f"'{safe_text(text)}'"


def integer(minimum: int | None = None, maximum: int | None = None, *,
            what: str = "a whole number") -> Callable[[str], int]:
    """A whole number within [minimum, maximum] (either bound optional)."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_range(what, minimum, maximum)}, "
                                             f"got {_shown(text)}") from None
        _check(value, minimum, maximum, what, text)
        return value
    parse.__name__ = "integer"
    return parse


def number(minimum: float | None = None, maximum: float | None = None, *,
           above: float | None = None, below: float | None = None,
           what: str = "a number") -> Callable[[str], float]:
    """A finite number within [minimum, maximum]; ``above``/``below`` are exclusive bounds."""
    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f"expected {_range(what, minimum, maximum, above, below)}, got {_shown(text)}")
        if (above is not None and value <= above) or (below is not None and value >= below):
            raise argparse.ArgumentTypeError(
                f"must be {_range('', minimum, maximum, above, below).strip()}, got {_shown(text)}")
        _check(value, minimum, maximum, what, text)
        return value
    parse.__name__ = "number"
    return parse


def _range(what: str, minimum=None, maximum=None, above=None, below=None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if above is not None:
        parts.append(f"> {above:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    return f"{what} {' and '.join(parts)}".strip() if parts else what


def _check(value: float, minimum, maximum, what: str, text: str) -> None:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise argparse.ArgumentTypeError(
            f"must be {_range('', minimum, maximum).strip()}, got {_shown(text)}")


# the option kinds the subcommands share
positive_int = integer(1)
non_negative_int = integer(0)
gpu_layers = integer(-1, what="a whole number (-1: all layers)")
context_tokens = integer(16, what="a context size in tokens")
max_tokens = integer(1, what="a token count")
temperature = number(0.0, 2.0)
probability = number(0.0, 1.0)
top_p = number(above=0.0, maximum=1.0)
non_negative = number(0.0)
positive = number(above=0.0)


def name(text: str) -> str:
    """A name created from the CLI (variant, endpoint, experiment, rater): printable, not blank."""
    value = text.strip()
    if not value:
        raise argparse.ArgumentTypeError("a name cannot be empty")
    if not is_printable_name(value):
        raise argparse.ArgumentTypeError(
            f"{_shown(value)} holds control or format characters; use printable text only")
    if len(value) > 200:
        raise argparse.ArgumentTypeError("a name is at most 200 characters")
    return value


def readable_file(text: str) -> Path:
    """An existing regular file this process can read."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {safe_text(text)}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a regular file: {safe_text(text)}")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {safe_text(text)}: permission denied")
    return path


def writable_file(text: str) -> Path:
    """A file path whose folder exists and is writable (the file itself may not exist yet)."""
    path = Path(text).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{safe_text(text)} is a folder; name a file")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {safe_text(text)}: folder "
                                         f"{safe_text(folder)} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {safe_text(text)}: permission denied")
    return path


def output_folder(text: str) -> Path:
    """A folder to write into: an existing writable folder, or one whose nearest parent is."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{safe_text(text)} is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {safe_text(text)}: permission denied")
    return path
