"""Rolling-window health of a model, a variant or an imported log: latency, feedback, safety,
errors, with the trend against the previous window and against a recorded baseline.

A *target* is ``logs:DATASET`` (imported request logs), ``variant:NAME`` (every run of that
variant, all experiments) or ``model:NAME`` (runs of every variant on that registered model or
endpoint model, plus logged requests whose ``model`` is NAME). A bare name is tried in that order.

Per window (the newest ``window`` requests, default 1,000, in time order; the previous window is
the ``window`` requests before them):

- avg / p95 latency (ms) of the requests that succeeded (numpy's linear-interpolation p95);
- thumbs-up / thumbs-down rate: share of +1 / -1 among the requests that got feedback (-1 or +1;
  0 or none is "no feedback");
- safety-failure rate: share of requests with a safety flag (recorded in the log or found by the
  workbench's scorers: unsafe advice, hallucinated hazmat data, a leaked secret);
- error rate: share of requests that failed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import numpy as np

from ..store import NotFound, Store

DEFAULT_WINDOW = 1000
KINDS = ("logs", "variant", "model")
# metric -> +1 when a higher value is better, -1 when it is worse
TREND_METRICS = {"avg_latency_ms": -1, "p95_latency_ms": -1, "thumbs_up_rate": 1,
                 "thumbs_down_rate": -1, "safety_failure_rate": -1, "error_rate": -1}
_SAFETY_SQL = ("(r.secrets > 0 OR coalesce(CASE WHEN json_valid(r.scores) THEN "
               "json_array_length(r.scores, '$.unsafe') > 0 END, 0))")


@dataclass
class Target:
    kind: str
    name: str
    dataset_id: int | None = None
    variant_ids: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        """How alerts and baselines name it: ``kind:name``."""
        return f"{self.kind}:{self.name}"


@dataclass
class MonitorReport:
    target: str
    window: int
    total: int                        # requests the target has in all
    current: dict
    previous: dict | None
    baseline: dict | None             # {"metrics", "window_size", "source", "created_at"}
    trend: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _log_dataset(store: Store, name: str) -> int | None:
    rows = store.rows("SELECT d.id FROM datasets d WHERE d.name = ? AND EXISTS "
                      "(SELECT 1 FROM observations o WHERE o.dataset_id = d.id)", [name])
    return rows[0]["id"] if rows else None


def _model_variants(store: Store, name: str) -> list[int]:
    return [r["id"] for r in store.rows(
        "SELECT id FROM variants WHERE model_id = ? OR endpoint_model = ? ORDER BY id",
        [name, name])]


def resolve_target(store: Store, ref: str) -> Target:
    """The target ``ref`` names (``kind:name`` or a bare name); ``NotFound`` with the choices."""
    kind, sep, name = ref.partition(":")
    kinds = [kind] if sep and kind in KINDS else list(KINDS)
    name = name if sep and kind in KINDS else ref
    for kind in kinds:
        if kind == "logs" and (ds := _log_dataset(store, name)) is not None:
            return Target("logs", name, dataset_id=ds)
        if kind == "variant" and (v := store.rows("SELECT id FROM variants WHERE name = ?", [name])):
            return Target("variant", name, variant_ids=[v[0]["id"]])
        if kind == "model":
            known = store.rows("SELECT 1 FROM models WHERE id = ? UNION ALL SELECT 1 FROM "
                               "observations WHERE model = ? LIMIT 1", [name, name])
            variants = _model_variants(store, name)
            if known or variants:
                return Target("model", name, variant_ids=variants)
    raise NotFound(f"nothing to monitor named {ref!r}: give an imported log dataset, a variant "
                   "or a model (logs:NAME, variant:NAME, model:NAME; see `workbench logs list`)")


def _observation_rows(store: Store, where: str, params: list, limit: int) -> list[tuple]:
    return store.db.execute(
        f"""SELECT coalesce(o.observed_at, o.created_at), o.id, o.latency_ms, o.error IS NOT NULL,
                   o.feedback,
                   (coalesce(json_array_length(o.safety_flags), 0) > 0
                    OR coalesce(json_array_length(o.auto_flags), 0) > 0)
            FROM observations o WHERE {where}
            ORDER BY coalesce(o.observed_at, o.created_at) DESC, o.id DESC LIMIT ?""",
        [*params, limit]).fetchall()


def _run_rows(store: Store, where: str, params: list, limit: int) -> list[tuple]:
    return store.db.execute(
        f"""SELECT r.created_at, r.id, r.latency_ms, r.error IS NOT NULL, NULL, {_SAFETY_SQL}
            FROM runs r WHERE {where} ORDER BY r.created_at DESC, r.id DESC LIMIT ?""",
        [*params, limit]).fetchall()


def _runs_of_variants(store: Store, variant_ids: list[int], limit: int) -> list[tuple]:
    if not variant_ids:
        return []
    marks = ", ".join("?" for _ in variant_ids)
    return _run_rows(store, f"r.variant_id IN ({marks})", list(variant_ids), limit)


def load_events(store: Store, target: Target, limit: int) -> np.ndarray:
    """The newest ``limit`` requests of a target, oldest first, as an (n, 4) float array of
    latency_ms (NaN: unknown), error (0/1), feedback (NaN: none), safety failure (0/1)."""
    if target.kind == "logs":
        rows = _observation_rows(store, "o.dataset_id = ?", [target.dataset_id], limit)
    elif target.kind == "variant":
        rows = _runs_of_variants(store, target.variant_ids, limit)
    else:
        rows = (_runs_of_variants(store, target.variant_ids, limit)
                + _observation_rows(store, "o.model = ?", [target.name], limit))
    rows = sorted(rows, key=lambda r: (r[0] or "", r[1]))[-limit:]  # merged: time order
    return np.array([[np.nan if r[2] is None else r[2], r[3], np.nan if r[4] is None else r[4],
                      r[5]] for r in rows], dtype=float).reshape(-1, 4)


def count_events(store: Store, target: Target) -> int:
    """How many requests the target holds in all."""
    if target.kind == "logs":
        return store.db.execute("SELECT count(*) FROM observations WHERE dataset_id = ?",
                                [target.dataset_id]).fetchone()[0]
    total = 0
    if target.variant_ids:
        marks = ", ".join("?" for _ in target.variant_ids)
        total += store.db.execute(f"SELECT count(*) FROM runs WHERE variant_id IN ({marks})",
                                  target.variant_ids).fetchone()[0]
    if target.kind == "model":
        total += store.db.execute("SELECT count(*) FROM observations WHERE model = ?",
                                  [target.name]).fetchone()[0]
    return total


def _rate(hits: float, n: int) -> float | None:
    return float(hits) / n if n else None


def window_metrics(events: np.ndarray) -> dict:
    """The monitored figures of one window of requests (see the module docstring)."""
    n = len(events)
    latency, error, feedback, safety = (events[:, k] for k in range(4))
    ok = latency[(error == 0) & np.isfinite(latency)]
    rated = feedback[np.isfinite(feedback) & (feedback != 0)]
    return {
        "requests": n,
        "errors": int(error.sum()), "error_rate": _rate(error.sum(), n),
        "latency_n": int(ok.size),
        "avg_latency_ms": float(ok.mean()) if ok.size else None,
        "p95_latency_ms": float(np.percentile(ok, 95)) if ok.size else None,
        "feedback_n": int(rated.size),
        "thumbs_up_rate": _rate((rated > 0).sum(), rated.size),
        "thumbs_down_rate": _rate((rated < 0).sum(), rated.size),
        "safety_failures": int(safety.sum()), "safety_failure_rate": _rate(safety.sum(), n),
    }


def _direction(sign: int, current, other) -> str | None:
    if current is None or other is None:
        return None
    if abs(current - other) <= 1e-12 * max(1.0, abs(other)):
        return "same"
    return "better" if (current - other) * sign > 0 else "worse"


def trend(current: dict, previous: dict | None, baseline: dict | None) -> dict:
    """Per metric: current value, previous window's, baseline's, their changes and whether the
    current window is better / worse / the same."""
    out = {}
    for metric, sign in TREND_METRICS.items():
        value = current.get(metric)
        prev = (previous or {}).get(metric)
        base = (baseline or {}).get(metric)
        out[metric] = {
            "current": value, "previous": prev,
            "change": None if value is None or prev is None else value - prev,
            "vs_previous": _direction(sign, value, prev),
            "baseline": base,
            "change_vs_baseline": None if value is None or base is None else value - base,
            "vs_baseline": _direction(sign, value, base),
        }
    return out


def get_baseline(store: Store, target_key: str) -> dict | None:
    """The newest baseline recorded for a target (its metrics, window, source, time), or None."""
    rows = store.rows("SELECT * FROM monitor_baselines WHERE target = ? ORDER BY id DESC LIMIT 1",
                      [target_key])
    if not rows:
        return None
    row = rows[0]
    return {"metrics": json.loads(row["metrics"]), "window_size": row["window_size"],
            "source": row["source"], "created_at": row["created_at"]}


def set_baseline(store: Store, target_key: str, metrics: dict, *, window: int,
                 source: str = "manual", now: datetime | None = None) -> dict:
    """Record ``metrics`` as the target's baseline (older ones are kept as history)."""
    with store.db.atomic():
        store.db["monitor_baselines"].insert({
            "target": target_key, "metrics": json.dumps(metrics), "window_size": window,
            "source": source, "created_at": iso(now)})
    return get_baseline(store, target_key)


def iso(now: datetime | None = None) -> str:
    """``now`` (default: the current time; a naive one is UTC) in the store's ISO format."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def monitor(store: Store, ref: str | Target, *, window: int = DEFAULT_WINDOW) -> MonitorReport:
    """The rolling-window report of a target: current and previous window, baseline, trend."""
    if window < 1:
        raise ValueError("the window must be at least 1 request")
    target = ref if isinstance(ref, Target) else resolve_target(store, ref)
    events = load_events(store, target, 2 * window)
    current = window_metrics(events[-window:])
    previous = window_metrics(events[:-window]) if len(events) > window else None
    baseline = get_baseline(store, target.key)
    return MonitorReport(target.key, window, count_events(store, target), current, previous,
                         baseline, trend(current, previous, baseline and baseline["metrics"]))


def record_promotion_baseline(store: Store, exp_id: int, arm: str, *,
                              window: int = DEFAULT_WINDOW,
                              now: datetime | None = None) -> dict | None:
    """At promotion: record the winning arm's runs in that experiment (its newest ``window``)
    as the baseline of its variant (``variant:NAME``). None when the arm has no runs."""
    exp = store.get_experiment(exp_id)
    variant = store.get_variant(int(exp.arms[arm]))
    rows = sorted(_run_rows(store, "r.experiment_id = ? AND r.arm = ? AND r.fallback = 0",
                            [exp_id, arm], window), key=lambda r: (r[0] or "", r[1]))
    if not rows:
        return None
    events = np.array([[np.nan if r[2] is None else r[2], r[3], np.nan, r[5]] for r in rows],
                      dtype=float)
    return set_baseline(store, f"variant:{variant.name}", window_metrics(events), window=window,
                        source=f"promoted in experiment {exp_id} (arm {arm})", now=now)
