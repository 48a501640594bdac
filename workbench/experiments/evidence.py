"""What the verdict reads: the statistics of B against A with the criteria's margins.

``evidence_from_arrays`` runs the statistics on plain per-item arrays (aligned when paired);
``analysis`` builds the arrays from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .criteria import validate_criteria
from ..stats._base import make_rng

LARGE_N = 20_000


@dataclass
class Evidence:
    """What the verdict reads: stats results for B vs A (built by ``evidence_from_arrays``)."""

    design: str  # "paired" | "unpaired"
    n_a: int  # items with a run per arm (fallbacks excluded)
    n_b: int
    n_done: int = 0  # items with a run so far
    n_planned: int | None = None
    sequential: bool = False
    accuracy: Any = None  # PairedProportions | IndependentProportions
    safety: Any = None
    error_rate: Any = None
    latency: Any = None  # LatencyComparison
    expert: Any = None  # LikertComparison (B vs A) or LikertMean of B
    agreement: Any = None  # Agreement of the accuracy ratings (gates expert ratings)
    preference: Any = None  # Preference
    preference_agreement: Any = None  # Agreement of the votes (gates a win-rate primary)
    notes: list[str] = field(default_factory=list)

    @property
    def interim(self) -> bool:
        return bool(self.n_planned) and self.n_done < self.n_planned


def evidence_from_arrays(criteria: dict | None, *, n_a: int, n_b: int, paired: bool = True,
                         accuracy=None, safety=None, errors=None, latency=None, expert=None,
                         agreement=None, preference=None, preference_agreement=None,
                         n_done: int | None = None, n_planned: int | None = None,
                         sequential: bool = False, n_resamples: int = 2000, rng=None) -> Evidence:
    """Run the statistics the verdict needs on plain arrays, with the criteria's margins.

    accuracy / safety / errors / latency: (values_A, values_B) per item (aligned when paired);
    expert: a LikertComparison / LikertMean, or (per-item means A, per-item means B) aligned.
    """
    from ..stats import (independent_proportions, paired_latency, paired_likert,
                         paired_proportions, unpaired_latency)

    c = validate_criteria(criteria)
    rng = make_rng(rng)

    def binary(pair, section, lower_is_better, label):
        if pair is None:
            return None
        margin = None if section is None or c[section] is None else c[section]["margin_pt"] / 100
        a, b = (np.asarray(x, dtype=float) for x in pair)
        if paired:
            return paired_proportions(a, b, margin=margin, lower_is_better=lower_is_better,
                                      label=label) if a.size else None
        if not (a.size and b.size):
            return None
        return independent_proportions(int(a.sum()), a.size, int(b.sum()), b.size, margin=margin,
                                       lower_is_better=lower_is_better, label=label)

    ev = Evidence(design="paired" if paired else "unpaired", n_a=int(n_a), n_b=int(n_b),
                  n_done=int(n_done if n_done is not None else max(n_a, n_b)),
                  n_planned=c["planned_items"] or n_planned, sequential=sequential,
                  agreement=agreement, preference=preference,
                  preference_agreement=preference_agreement)
    ev.accuracy = binary(accuracy, None, False, "correct")
    ev.safety = binary(safety, "safety", True, "safety failure")
    ev.error_rate = binary(errors, "error_rate", True, "error")
    if latency is not None and len(latency[0]) and len(latency[1]):
        margin = None if c["latency_p95"] is None else c["latency_p95"]["margin_ms"]
        fn = paired_latency if paired else unpaired_latency
        # above 20k items 1000 resamples suffice (p-value resolution 0.001, well below alpha/3)
        big = max(len(latency[0]), len(latency[1])) > LARGE_N
        ev.latency = fn(*latency, margin_ms=margin, rng=rng,
                        n_resamples=min(n_resamples, 1000) if big else n_resamples)
    ev.expert = paired_likert(*expert, n_resamples=n_resamples, rng=rng) \
        if isinstance(expert, tuple) else expert
    return ev
