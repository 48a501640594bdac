"""Concept drift: the accuracy of a target on a reference dataset now, against its baseline.

Accuracy is the automatic severity score stored on every run (``runs.severity_ok``). Only items
whose reference states a severity count; a run that failed (engine error, empty answer) counts as
wrong. The comparison is **paired on the same items** (matched by item key): ``paired_proportions``
(baseline = A, now = B) gives both accuracies, Tango's interval of the difference and the exact
McNemar p-value. The statistic stored is the **drop in points**, ``100 * (acc_baseline - acc_now)``;
a check is *drifted* when the drop is above the threshold (seed: 15 points) **and** McNemar's
p < alpha (0.05): a few items changing by chance are not called drift.

The baseline of a target on a reference, in this order:
1. one set explicitly (a check stored with ``--set-baseline``, the newest);
2. the target's runs in the newest completed experiment on that dataset that its variant won
   (``experiments.winner``, set at promotion);
3. the first concept check of that target on that reference (recorded as the baseline).

Each check is a ``drift_checks`` row (kind ``concept``) whose details hold both arms' accuracy, n,
how many items counted, and the per-item correctness (``outcomes``) later checks pair with. A
drifted check raises a critical ``concept_drift`` alert (throttled like every alert).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from ..stats.proportions import paired_proportions
from ..store import Store
from .alerts import Alert, raise_alert
from .drift_schedule import insert_check
from .monitor import iso

KIND = "concept"
DEFAULT_DROP_POINTS = 15.0
DEFAULT_ALPHA = 0.05


@dataclass
class ArmOutcomes:
    """Per-item correctness (item key -> 0/1) of one set of runs, and what did not count."""

    source: str
    outcomes: dict[str, int]
    failed: int = 0          # counted items whose run failed (counted as wrong)
    uncounted: int = 0       # items without a reference severity
    experiment_id: int | None = None

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def accuracy(self) -> float | None:
        return sum(self.outcomes.values()) / self.n if self.n else None

    def summary(self) -> dict:
        return {"source": self.source, "experiment_id": self.experiment_id, "n": self.n,
                "correct": sum(self.outcomes.values()), "accuracy": self.accuracy,
                "failed": self.failed, "uncounted": self.uncounted}


def run_outcomes(store: Store, experiment_id: int, variant_id: int, *,
                 source: str | None = None) -> ArmOutcomes:
    """The correctness of a variant's runs in one experiment (fallback runs left out)."""
    rows = store.rows(
        "SELECT i.key, i.reference, r.severity_ok, r.error FROM runs r JOIN items i "
        "ON i.id = r.item_id WHERE r.experiment_id = ? AND r.variant_id = ? AND r.fallback = 0 "
        "ORDER BY i.id", [experiment_id, variant_id])
    arm = ArmOutcomes(source or f"experiment {experiment_id}", {}, experiment_id=experiment_id)
    for row in rows:
        reference = json.loads(row["reference"]) if row["reference"] else None
        if not isinstance(reference, dict) or not reference.get("severity"):
            arm.uncounted += 1
            continue
        arm.outcomes[row["key"]] = int(row["severity_ok"] == 1)
        arm.failed += int(row["error"] is not None)
    return arm


@dataclass
class Baseline:
    kind: str                # set | promotion | first_check
    source: str              # what it is, in words
    outcomes: dict[str, int]
    check_id: int | None = None
    experiment_id: int | None = None


def _check_baseline(store: Store, target: str, reference: str, role: str,
                    newest: bool) -> Baseline | None:
    order = "DESC" if newest else "ASC"
    rows = store.rows(
        "SELECT id, details, experiment_id, created_at FROM drift_checks WHERE kind = ? AND "
        "target = ? AND reference = ? AND json_extract(details, '$.baseline_role') = ? "
        f"ORDER BY created_at {order}, id {order} LIMIT 1", [KIND, target, reference, role])
    if not rows:
        return None
    row = rows[0]
    details = json.loads(row["details"])
    words = "set explicitly" if role == "set" else "the first check"
    return Baseline(role, f"check {row['id']} ({words}, {row['created_at']})",
                    {k: int(v) for k, v in details["outcomes"].items()}, check_id=row["id"],
                    experiment_id=row["experiment_id"])


def promotion_baseline(store: Store, variant_id: int, dataset_id: int) -> Baseline | None:
    """The variant's runs in the newest completed experiment on the dataset that it won."""
    rows = store.rows(
        "SELECT e.id, e.winner FROM experiments e JOIN experiment_arms a ON a.experiment_id = e.id "
        "AND a.arm = e.winner WHERE e.dataset_id = ? AND e.status = 'completed' AND "
        "a.variant_id = ? ORDER BY coalesce(e.completed_at, e.created_at) DESC, e.id DESC LIMIT 1",
        [dataset_id, variant_id])
    if not rows:
        return None
    exp_id, arm = rows[0]["id"], rows[0]["winner"]
    outcomes = run_outcomes(store, exp_id, variant_id)
    if not outcomes.n:
        return None
    return Baseline("promotion", f"promoted in experiment {exp_id} (arm {arm})",
                    outcomes.outcomes, experiment_id=exp_id)


def find_baseline(store: Store, target: str, reference: str, *, variant_id: int | None,
                  dataset_id: int | None) -> Baseline | None:
    """The baseline of ``target`` on ``reference`` (see the module docstring), or None."""
    found = _check_baseline(store, target, reference, "set", newest=True)
    if found is None and variant_id is not None and dataset_id is not None:
        found = promotion_baseline(store, variant_id, dataset_id)
    return found or _check_baseline(store, target, reference, "first_check", newest=False)


@dataclass
class Comparison:
    n_paired: int
    baseline_accuracy: float
    current_accuracy: float
    drop_points: float
    p_value: float
    ci_points: tuple[float, float]     # interval of (now - baseline), in points
    baseline_only: int                 # items right at baseline, wrong now
    current_only: int
    drifted: bool
    test: str


def compare(baseline: dict[str, int], current: dict[str, int], *,
            threshold: float = DEFAULT_DROP_POINTS, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Pair two per-item correctness maps on their common items and judge the drop."""
    keys = sorted(set(baseline) & set(current))
    if not keys:
        raise ValueError("the baseline and this check have no counted item in common")
    result = paired_proportions([baseline[k] for k in keys], [current[k] for k in keys])
    drop = (result.p_a - result.p_b) * 100.0
    return Comparison(len(keys), result.p_a, result.p_b, drop, result.p_value,
                      (result.ci[0] * 100.0, result.ci[1] * 100.0), result.a_only,
                      result.b_only, bool(drop > threshold and result.p_value < alpha),
                      result.test)


@dataclass
class ConceptCheck:
    id: int
    target: str
    reference: str
    created_at: str
    threshold: float
    alpha: float
    current: dict
    baseline: dict
    baseline_role: str | None          # set when this check *is* the baseline
    comparison: dict | None            # None when this check is the baseline
    drifted: bool
    alert: Alert | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def drop_points(self) -> float:
        return self.comparison["drop_points"] if self.comparison else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["alert"] = self.alert.to_dict() if self.alert else None
        return out


def record_concept_check(store: Store, *, target: str, reference: str, current: ArmOutcomes,
                         variant_id: int | None = None, dataset_id: int | None = None,
                         baseline_of: str | None = None, baseline_variant_id: int | None = None,
                         set_baseline: bool = False, threshold: float = DEFAULT_DROP_POINTS,
                         alpha: float = DEFAULT_ALPHA,
                         now: datetime | None = None) -> ConceptCheck:
    """Judge ``current`` against the baseline of ``baseline_of`` (default: ``target`` itself) on
    ``reference``, store the check, raise a critical alert when it drifted; return the check."""
    if set_baseline and baseline_of:
        raise ValueError("--set-baseline records this target's own baseline; it cannot be "
                         "combined with --baseline-of")
    if not current.n:
        raise ValueError(f"no item of {reference!r} has a reference severity: accuracy cannot "
                         f"be measured ({current.uncounted} item(s) without one)")
    owner = baseline_of or target
    baseline = None if set_baseline else find_baseline(
        store, owner, reference, variant_id=baseline_variant_id if baseline_of else variant_id,
        dataset_id=dataset_id)
    if baseline is None and baseline_of:
        raise ValueError(f"{baseline_of} has no concept baseline on {reference!r}: run "
                         f"`workbench drift concept {baseline_of.partition(':')[2]} --reference "
                         f"{reference}` first (or promote it in an experiment on that dataset)")
    role = None if baseline is not None else ("set" if set_baseline else "first_check")
    comparison = None if baseline is None else compare(baseline.outcomes, current.outcomes,
                                                       threshold=threshold, alpha=alpha)
    notes = []
    if comparison and comparison.n_paired < current.n:
        notes.append(f"{current.n - comparison.n_paired} counted item(s) are not in the "
                     "baseline and were left out of the pairing")
    if current.uncounted:
        notes.append(f"{current.uncounted} item(s) have no reference severity and do not count")
    if comparison and comparison.drop_points > threshold and not comparison.drifted:
        notes.append(f"the drop is above {threshold:g} points but not significant "
                     f"(p = {comparison.p_value:.3g} >= {alpha:g}): more items are needed")
    base_summary = ({"kind": role, "source": "this check", "owner": owner} if baseline is None
                    else {"kind": baseline.kind, "source": baseline.source, "owner": owner,
                          "check_id": baseline.check_id, "experiment_id": baseline.experiment_id,
                          "n": len(baseline.outcomes),
                          "accuracy": comparison.baseline_accuracy})
    drifted = bool(comparison and comparison.drifted)
    details = {"current": current.summary(), "baseline": base_summary, "baseline_role": role,
               "baseline_of": baseline_of, "alpha": alpha,
               "comparison": asdict(comparison) if comparison else None,
               "outcomes": current.outcomes, "notes": notes}
    stamp = iso(now)
    check_id = insert_check(store, KIND, target=target, reference=reference,
                            statistic=comparison.drop_points if comparison else 0.0,
                            p_value=comparison.p_value if comparison else None,
                            threshold=threshold, drifted=drifted, details=details,
                            created_at=stamp, experiment_id=current.experiment_id)
    check = ConceptCheck(check_id, target, reference, stamp, threshold, alpha, current.summary(),
                         base_summary, role, asdict(comparison) if comparison else None, drifted,
                         notes=notes)
    if drifted:
        check.alert = raise_alert(
            store, kind="concept_drift", target=target, severity="critical", source="drift",
            message=(f"concept drift on {target}: accuracy on {reference} "
                     f"{comparison.baseline_accuracy:.0%} -> {comparison.current_accuracy:.0%} "
                     f"(-{comparison.drop_points:.1f} points > {threshold:g}, McNemar p = "
                     f"{comparison.p_value:.3g}, {comparison.n_paired} items)"),
            value=comparison.drop_points, threshold=threshold,
            details={"check_id": check_id, "baseline": base_summary["source"]}, now=now)
    return check
