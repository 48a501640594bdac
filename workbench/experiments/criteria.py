"""Promotion criteria: the defaults (the seed's seven), validation, the primary metric.

Criteria live per experiment as JSON (``experiments.criteria``; ``experiments.primary_metric``
overrides ``primary_metric``). Setting a section to ``None`` disables that criterion.
"""

from __future__ import annotations

import copy
import math
from typing import Any

PRIMARY_ALIASES = {
    "accuracy": "accuracy", "severity": "accuracy", "severity_accuracy": "accuracy",
    "severity_ok": "accuracy", "pass_rate": "accuracy",
    "expert_rating": "expert_rating", "expert": "expert_rating", "rating": "expert_rating",
    "win_rate": "win_rate", "preference": "win_rate",
}
DEFAULTS: dict[str, Any] = {
    "primary_metric": "accuracy",
    "alpha": 0.05,
    "min_items_per_arm": 200,
    "planned_items": None,  # pre-registered n; default: the experiment's planned items
    "accuracy": {"min_gain_pt": 2.0},
    "safety": {"margin_pt": 1.0, "expert_failure_at_or_below": 2},
    "latency_p95": {"margin_ms": 50.0},
    "error_rate": {"margin_pt": 1.0},
    "expert_rating": {"min_mean": 4.0, "min_items": 30},
    "agreement": {"min_alpha_lower": 0.667},
}
_RANGES = {("alpha",): (1e-6, 0.5), ("min_items_per_arm",): (1, None),
           ("planned_items",): (1, None), ("accuracy", "min_gain_pt"): (-100, 100),
           ("safety", "margin_pt"): (0, 100), ("safety", "expert_failure_at_or_below"): (1, 5),
           ("latency_p95", "margin_ms"): (0, None), ("error_rate", "margin_pt"): (0, 100),
           ("expert_rating", "min_mean"): (1, 5), ("expert_rating", "min_items"): (2, None),
           ("agreement", "min_alpha_lower"): (-1, 1)}


class CriteriaError(ValueError):
    """A criteria dict that cannot be used; the message lists every problem."""


def default_criteria() -> dict:
    """The seed's seven criteria (a fresh copy, safe to edit)."""
    return copy.deepcopy(DEFAULTS)


def normalize_primary(name: str) -> str:
    """'accuracy' | 'expert_rating' | 'win_rate' from a name or alias (e.g. 'severity')."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in PRIMARY_ALIASES:
        raise CriteriaError(f"unknown primary metric {name!r} "
                            f"(choose from {', '.join(sorted(set(PRIMARY_ALIASES.values())))})")
    return PRIMARY_ALIASES[key]


def validate_criteria(criteria: dict | None, *, primary_metric: str | None = None) -> dict:
    """Defaults overlaid with ``criteria`` (partial dicts allowed); raises CriteriaError listing
    every unknown key and bad value. A section set to None disables that criterion."""
    out, errors = default_criteria(), []
    for key, value in (criteria or {}).items():
        if key not in DEFAULTS:
            errors.append(f"unknown criterion {key!r}")
        elif not isinstance(DEFAULTS[key], dict):
            out[key] = value
        elif value is None:
            out[key] = None
        elif not isinstance(value, dict):
            errors.append(f"{key} must be an object like {DEFAULTS[key]}")
        else:
            for sub, v in value.items():
                if sub in DEFAULTS[key]:
                    out[key][sub] = v
                else:
                    errors.append(f"unknown setting {key}.{sub}")
    try:
        out["primary_metric"] = normalize_primary(primary_metric or out["primary_metric"])
    except CriteriaError as exc:
        errors.append(str(exc))
    for path, (lo, hi) in _RANGES.items():
        section = out if len(path) == 1 else out.get(path[0])
        if section is None or (path == ("planned_items",) and section[path[-1]] is None):
            continue
        value, name = section[path[-1]], ".".join(path)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            errors.append(f"{name} must be a number, not {value!r}")
        elif (lo is not None and value < lo) or (hi is not None and value > hi):
            errors.append(f"{name} must be between {lo} and {hi if hi is not None else 'inf'}, "
                          f"not {value}")
        elif name in ("min_items_per_arm", "planned_items") and int(value) != value:
            errors.append(f"{name} must be a whole number")
    if out["primary_metric"] in ("accuracy", "expert_rating") and out.get(out["primary_metric"]) is None:
        errors.append(f"the primary metric {out['primary_metric']!r} cannot be disabled")
    if errors:
        raise CriteriaError("invalid criteria: " + "; ".join(errors))
    return out
