"""Small formatting helpers shared by the screens (pure functions, no Textual)."""

from __future__ import annotations

from workbench.formatting import duration, file_size

__all__ = ["count", "describe_error", "duration", "file_size", "milliseconds", "shorten", "timestamp"]


def milliseconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def shorten(text: str | None, width: int) -> str:
    """One line of at most ``width`` characters."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def timestamp(iso: str | None) -> str:
    """'2025-01-31T12:34:56.789+00:00' -> '2025-01-31 12:34'."""
    return "-" if not iso else iso[:16].replace("T", " ")


def describe_error(error: BaseException) -> str:
    """One line an operator can act on (no traceback)."""
    text = error.args[0] if isinstance(error, LookupError) and error.args else str(error)
    return str(text) or type(error).__name__
