"""Text made safe for a terminal: control characters and escape sequences never reach it raw.

Names, ids, model outputs and dataset texts come from files and models the operator does not
control. A raw ESC can move the cursor, rewrite the title or hide text; a raw CR can overwrite
a line. ``safe_text`` keeps printable text (and newlines/tabs where asked) and shows every other
control character as a visible escape such as ``\\x1b``.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_CONTROL_NO_NEWLINES = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object, *, multiline: bool = False) -> str:
    """``value`` as text with control characters shown as escapes.

    With ``multiline`` newlines and tabs are kept (for answers and incident texts); otherwise
    they are escaped too (for names, ids and table cells).
    """
    text = "" if value is None else str(value)
    pattern = _CONTROL if multiline else _CONTROL_NO_NEWLINES
    return pattern.sub(_visible, text)


def has_control(value: object) -> bool:
    """True when ``value`` holds a character ``safe_text`` would escape (newlines included)."""
    return bool(_CONTROL_NO_NEWLINES.search("" if value is None else str(value)))


def is_printable_name(value: str) -> bool:
    """True for a name without control or format characters (checked when names are created)."""
    return not has_control(value) and not any(unicodedata.category(c) == "Cf" for c in value)
