"""How a verdict's numbers read: values and intervals on each metric's own scale, and why a
criterion did not pass.

Units: ``pt`` a difference of proportions shown in percentage points (x 100); ``ms``
milliseconds; ``rating`` a mean rating on the 1-5 scale ("4.21 / 5"); ``rating_diff`` a
difference of mean ratings (rating points, never "/ 5"); ``share`` a per-item vote score minus
1/2 (a proportion, never x 100); ``items`` a count.
"""

from __future__ import annotations

import math

UNIT_SPEC = {"pt": (100, ".1f"), "ms": (1, ".0f"), "rating": (1, ".2f"), "rating_diff": (1, ".2f"),
             "share": (1, ".3f"), "items": (1, ".0f")}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def value_text(value, unit: str) -> str:
    """A criterion's value, e.g. '+3.1 pt', '-27 ms', '4.21 / 5', '+0.45 rating pts'."""
    if not _finite(value):
        return "-"
    return {"pt": f"{value * 100:+.1f} pt", "ms": f"{value:+.0f} ms", "rating": f"{value:.2f} / 5",
            "rating_diff": f"{value:+.2f} rating pts", "items": f"{value:.0f} items",
            "share": f"{value:+.3f} vs 1/2"}.get(unit, f"{value:.3g}")


def interval_text(interval, unit: str) -> str:
    """An interval on the same scale as ``value_text`` shows the value ('-' when missing)."""
    if not interval or not all(_finite(v) for v in interval):
        return "-"
    scale, spec = UNIT_SPEC.get(unit, (1, ".3g"))
    return f"[{interval[0] * scale:{spec}}, {interval[1] * scale:{spec}}]"


def p_text(p, label: str | None) -> str:
    """'0.0123 (fixed-horizon)' or '-'."""
    return "-" if p is None else f"{p:.3g} ({label})" if label else f"{p:.3g}"


def why_groups(criteria) -> list[tuple[str, str, list[str]]]:
    """(status, reason, criteria names) for the criteria that did not pass, one per reason.
    ``criteria``: ``Criterion`` objects or their dicts."""
    groups: dict[tuple[str, str], list[str]] = {}
    for c in criteria:
        c = c if isinstance(c, dict) else c.to_dict()
        if c["status"] == "pass":
            continue
        groups.setdefault((c["status"], c.get("detail") or "no reason recorded"),
                          []).append(c["name"])
    return [(status, detail, names) for (status, detail), names in groups.items()]


def why_lines(criteria) -> list[str]:
    """Why the criteria that did not pass did not: 'names: status, reason', one line per reason."""
    return [f"{', '.join(names)}: {status}, {detail}"
            for status, detail, names in why_groups(criteria)]
