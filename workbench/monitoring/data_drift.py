"""Data drift: are recent inputs still like the reference (training) inputs?

Two views, side by side:

- **Embeddings.** Each input's mean-pooled llama.cpp embedding (``engines/embeddings.py``). The
  statistic is the cosine distance between the reference centroid and the recent centroid (seed
  threshold 0.25), with a **permutation test**: the pooled set's labels are shuffled
  ``n_permutations`` times (seeded), the distance recomputed, and p = (1 + #{shuffled >= observed})
  / (1 + n_permutations). A check is *drifted* only when distance > threshold **and** p < alpha.
- **Category mix.** Chi-square test of the two sides' category counts
  (``scipy.stats.chi2_contingency``); a category missing on one side is a zero cell, a single
  category on both sides has no mix to compare (p = 1).

Why the embeddings are centred on a background mean. Raw LLM embeddings are anisotropic: every
vector shares one large common component (SmolLM2-135M: mean pairwise cosine 0.95 within the
devops incidents; one dimension averages -33 where most are below 1), so raw centroid distances
are tiny. Measured on the shipped datasets with SmolLM2-135M: a resample of devops_incidents
(37 vs 37 items) gives 0.001, the devops incidents vs the emergency-response questions only 0.24,
below the seed's 0.25 even for a complete change of domain. Centring on the *reference* mean is
no cure for a two-centroid cosine: it makes the reference centroid zero (centring on the pooled
mean makes the two centroids exactly opposite). So vectors are centred on the mean embedding of
``BACKGROUND_TEXTS``, general-domain sentences unrelated to either side: the model's common
direction estimated independently of both samples (the "common mean" removal of Mu & Viswanath,
2018, with an external corpus). The same translation of every vector keeps the permutation test
exact. Measured after centring: devops resample 0.004 (37 vs 37; 0.017 at 8 vs 8), devops vs
emergency 0.93 (min 0.64 over 50 draws at 8 vs 8); resamples of the emergency questions, nearer
to the background, are noisier (0.04 at 31 vs 31, up to 0.29 at 8 vs 8) — which is what the
permutation test is for. ``centre="none"`` keeps the raw vectors.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np
from scipy.stats import chi2_contingency

from ..store import Item, Store
from .alerts import Alert, raise_alert
from .drift_schedule import insert_check
from .monitor import iso

KIND = "data"
DEFAULT_THRESHOLD = 0.25
DEFAULT_ALPHA = 0.05
DEFAULT_PERMUTATIONS = 999
NO_CATEGORY = "(none)"

BACKGROUND_TEXTS = (
    "The recipe calls for two cups of flour, a pinch of salt and a spoonful of honey.",
    "Our team won the match in the last minute with a goal from a corner kick.",
    "The museum opens at nine and the guided tour of the old castle lasts an hour.",
    "Prices of apartments in the city centre rose again this spring.",
    "She practised the piano every evening before the school concert.",
    "A cold front will bring rain and strong winds to the coast tomorrow.",
    "The novel follows a family of farmers over three generations.",
    "To solve the equation, move every term with x to the left-hand side.",
    "The train to the airport leaves every twenty minutes from platform four.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "He planted tomatoes, beans and sunflowers in the small garden behind the house.",
    "The committee will vote on the new budget at its meeting next Thursday.",
    "def add(a, b):\n    return a + b",
    "Dear customer, your order has been shipped and should arrive within three days.",
    "The ancient Romans built roads, aqueducts and bridges across their empire.",
    "Remember to bring sunscreen, a hat and plenty of water on the hike.",
    "The film won three awards, including best director and best soundtrack.",
    "Interest rates are expected to stay unchanged until the end of the year.",
    "Cats sleep for up to sixteen hours a day and are most active at dusk.",
    "The violin was made in Italy more than two hundred years ago.",
    "Please translate this paragraph from Spanish into English by Friday.",
    "The marathon route passes the river, the old town and the city park.",
    "Volcanoes form where tectonic plates pull apart or push against each other.",
    "Thank you for the lovely dinner; we should meet again soon.",
)


def centroid_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine distance (1 - cosine similarity) between the mean vectors of ``a`` and ``b``."""
    ca, cb = np.asarray(a, dtype=float).mean(0), np.asarray(b, dtype=float).mean(0)
    norm = np.linalg.norm(ca) * np.linalg.norm(cb)
    if norm == 0:
        raise ValueError("a centroid is the zero vector: its cosine distance is undefined")
    return float(1.0 - np.dot(ca, cb) / norm)


def permutation_test(reference: np.ndarray, recent: np.ndarray, *,
                     n_permutations: int = DEFAULT_PERMUTATIONS,
                     seed: int = 0) -> tuple[float, float, np.ndarray]:
    """(observed distance, p-value with the +1 correction, the shuffled distances)."""
    reference, recent = np.asarray(reference, float), np.asarray(recent, float)
    if len(reference) < 2 or len(recent) < 2:
        raise ValueError("the permutation test needs at least 2 inputs on each side")
    observed = centroid_distance(reference, recent)
    pooled = np.vstack([reference, recent])
    n_ref = len(reference)
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for k in range(n_permutations):
        order = rng.permutation(len(pooled))
        null[k] = centroid_distance(pooled[order[:n_ref]], pooled[order[n_ref:]])
    p_value = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + n_permutations)
    return observed, float(p_value), null


def category_shift(reference: list[str | None], recent: list[str | None], *,
                   alpha: float = DEFAULT_ALPHA) -> dict:
    """Chi-square test of the category counts of the two sides (None is ``(none)``)."""
    ref = Counter(c or NO_CATEGORY for c in reference)
    new = Counter(c or NO_CATEGORY for c in recent)
    categories = sorted(set(ref) | set(new))
    out = {"categories": categories, "reference_counts": [ref[c] for c in categories],
           "recent_counts": [new[c] for c in categories], "only_in_reference":
           [c for c in categories if not new[c]], "only_in_recent":
           [c for c in categories if not ref[c]], "notes": []}
    if not ref or not new:
        raise ValueError("the category test needs inputs on both sides")
    if len(categories) < 2:
        out.update(statistic=0.0, p_value=1.0, dof=0, shifted=False)
        out["notes"].append(f"one category ({categories[0]}) on both sides: no mix to compare")
        return out
    table = np.array([out["reference_counts"], out["recent_counts"]])
    result = chi2_contingency(table)
    if (result.expected_freq < 5).any():
        out["notes"].append("some expected counts are below 5: the chi-square p-value is "
                            "approximate")
    out.update(statistic=float(result.statistic), p_value=float(result.pvalue),
               dof=int(result.dof), shifted=bool(result.pvalue < alpha))
    return out


@dataclass
class DataDriftResult:
    distance: float
    p_value: float
    threshold: float
    alpha: float
    drifted: bool
    n_reference: int
    n_recent: int
    n_permutations: int
    seed: int
    centre: str
    null_mean: float
    null_p95: float
    categories: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def judge_data_drift(reference: np.ndarray, recent: np.ndarray, *,
                     reference_categories: list | None = None,
                     recent_categories: list | None = None,
                     background: np.ndarray | None = None, threshold: float = DEFAULT_THRESHOLD,
                     alpha: float = DEFAULT_ALPHA, n_permutations: int = DEFAULT_PERMUTATIONS,
                     seed: int = 0) -> DataDriftResult:
    """The embedding test (centred on ``background``'s mean when given) and the category mix."""
    reference, recent = np.asarray(reference, float), np.asarray(recent, float)
    centre = "none"
    if background is not None and len(background):
        origin = np.asarray(background, float).mean(0)
        reference, recent, centre = reference - origin, recent - origin, "background mean"
    distance, p_value, null = permutation_test(reference, recent, n_permutations=n_permutations,
                                               seed=seed)
    categories = (category_shift(reference_categories, recent_categories, alpha=alpha)
                  if reference_categories is not None and recent_categories is not None else {})
    return DataDriftResult(distance, p_value, threshold, alpha,
                           bool(distance > threshold and p_value < alpha), len(reference),
                           len(recent), n_permutations, seed, centre, float(null.mean()),
                           float(np.percentile(null, 95)), categories)


def sample_items(store: Store, dataset_id: int, n: int | None, *, seed: int = 0,
                 newest: bool = False) -> list[Item]:
    """Up to ``n`` items of a dataset: a seeded random sample, or the ``newest`` (by timestamp,
    else file order). ``n`` None: all of them."""
    items = store.items(dataset_id)
    if n is None or n >= len(items):
        return items
    if newest:
        ordered = sorted(enumerate(items), key=lambda p: (p[1].timestamp or "", p[0]))
        return [item for _, item in ordered[-n:]]
    chosen = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[k] for k in chosen]


@dataclass
class DataCheck:
    id: int
    target: str
    reference: str
    created_at: str
    result: DataDriftResult
    details: dict
    alert: Alert | None = None

    @property
    def drifted(self) -> bool:
        return self.result.drifted

    def to_dict(self) -> dict:
        return {"id": self.id, "target": self.target, "reference": self.reference,
                "created_at": self.created_at, "drifted": self.drifted,
                **self.result.to_dict(), "details": self.details,
                "alert": self.alert.to_dict() if self.alert else None}


def record_data_check(store: Store, result: DataDriftResult, *, target: str, reference: str,
                      details: dict | None = None, now: datetime | None = None) -> DataCheck:
    """Store a data check in ``drift_checks`` (kind ``data``); a drifted one raises a warning."""
    stamp = iso(now)
    details = {**(details or {}), **result.to_dict()}
    check_id = insert_check(store, KIND, target=target, reference=reference,
                            statistic=result.distance, p_value=result.p_value,
                            threshold=result.threshold, drifted=result.drifted, details=details,
                            created_at=stamp)
    check = DataCheck(check_id, target, reference, stamp, result, details)
    if result.drifted:
        mix = result.categories
        extra = (f"; category mix shifted too (chi-square p = {mix['p_value']:.3g})"
                 if mix.get("shifted") else "")
        check.alert = raise_alert(
            store, kind="data_drift", target=target, severity="warning", source="drift",
            message=(f"data drift on {target} vs {reference}: centroid cosine distance "
                     f"{result.distance:.3f} > {result.threshold:g} (permutation p = "
                     f"{result.p_value:.3g}, {result.n_reference} vs {result.n_recent} "
                     f"inputs){extra}"),
            value=result.distance, threshold=result.threshold,
            details={"check_id": check_id}, now=now)
    return check
