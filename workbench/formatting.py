"""Plain-text formatting shared by the CLI, the reports and the screens (no UI imports)."""

from __future__ import annotations


def file_size(n: int | None) -> str:
    """Bytes as '93.8 MB' ('-' when unknown)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def duration(seconds: float | None) -> str:
    """Seconds as 'MM:SS' or 'H:MM:SS' ('--:--' when unknown)."""
    if seconds is None:
        return "--:--"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def aligned(rows: list[list[str]]) -> list[str]:
    """Rows of text cells as left-aligned columns, one string per row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
