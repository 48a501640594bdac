"""Should the model be retrained? The seed's table, evaluated from stored checks and windows.

| criterion | value | met when |
|---|---|---|
| concept drift | drop in points of the latest concept check | > 15 and that check drifted (p < alpha) |
| thumbs-up rate | the monitor's current window | < 60 % |
| safety failures | the monitor's current window | > 5 % |
| data drift sustained | days spanned by the newest run of consecutive drifted data checks | > 28 |
| time since training | days since the fine-tune job that made the model finished | > 182 (6 months) |

A criterion without data (no check, no feedback, a base model with no fine-tune job) is
*unknown* and not met. Retraining is recommended when any criterion is met. The checks of a
target are those stored under its key and, for a model, under each of its variants (and, for a
variant, under its model). ``now`` is injected everywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ..store import Store
from .monitor import DEFAULT_WINDOW, Target, iso, monitor, resolve_target

CONCEPT_DROP_POINTS = 15.0
THUMBS_UP_MIN = 0.60
SAFETY_MAX = 0.05
DATA_DRIFT_DAYS = 28.0
TRAINING_AGE_DAYS = 182.0


@dataclass
class Criterion:
    name: str
    value: float | None
    threshold: float
    comparison: str            # ">" or "<"
    met: bool
    unit: str                  # "points", "%", "days"
    detail: str

    @property
    def known(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict:
        return {**asdict(self), "known": self.known}


@dataclass
class RetrainingDecision:
    target: str
    evaluated_at: str
    criteria: list[Criterion]

    @property
    def retrain(self) -> bool:
        return any(c.met for c in self.criteria)

    def to_dict(self) -> dict:
        return {"target": self.target, "evaluated_at": self.evaluated_at,
                "retrain": self.retrain, "criteria": [c.to_dict() for c in self.criteria]}


def related_keys(store: Store, target: Target) -> list[str]:
    """The keys the target's drift checks may be stored under."""
    keys = [target.key]
    if target.kind == "model":
        keys += [f"variant:{r['name']}" for r in store.rows(
            "SELECT name FROM variants WHERE model_id = ? OR endpoint_model = ?",
            [target.name, target.name])]
    elif target.kind == "variant":
        keys += [f"model:{r['model_id']}" for r in store.rows(
            "SELECT model_id FROM variants WHERE name = ? AND model_id IS NOT NULL",
            [target.name])]
    return keys


def _checks(store: Store, kind: str, keys: list[str], now: datetime) -> list[dict]:
    marks = ", ".join("?" for _ in keys)
    return store.rows(
        f"SELECT id, statistic, p_value, threshold, drifted, created_at FROM drift_checks "
        f"WHERE kind = ? AND target IN ({marks}) AND created_at <= ? "
        "ORDER BY created_at, id", [kind, *keys, iso(now)])


def concept_criterion(store: Store, keys: list[str], now: datetime,
                      threshold: float = CONCEPT_DROP_POINTS) -> Criterion:
    checks = _checks(store, "concept", keys, now)
    if not checks:
        return Criterion("concept drift", None, threshold, ">", False, "points",
                         "unknown: no concept check (workbench drift concept)")
    last = checks[-1]
    p = "" if last["p_value"] is None else f", p = {last['p_value']:.3g}"
    return Criterion("concept drift", float(last["statistic"]), threshold, ">",
                     bool(last["drifted"]) and last["statistic"] > threshold, "points",
                     f"latest concept check {last['id']} at {last['created_at']}{p}")


def _rate_criterion(name: str, value: float | None, threshold: float, comparison: str,
                    n: int, what: str) -> Criterion:
    if value is None:
        return Criterion(name, None, threshold, comparison, False, "%",
                         f"unknown: no {what} in the monitored window")
    met = value < threshold if comparison == "<" else value > threshold
    return Criterion(name, value, threshold, comparison, met, "%",
                     f"current window: {n} {what}")


def data_criterion(store: Store, keys: list[str], now: datetime,
                   threshold_days: float = DATA_DRIFT_DAYS) -> Criterion:
    checks = _checks(store, "data", keys, now)
    if not checks:
        return Criterion("data drift sustained", None, threshold_days, ">", False, "days",
                         "unknown: no data check (workbench drift data)")
    streak = []
    for check in reversed(checks):
        if not check["drifted"]:
            break
        streak.append(check)
    if not streak:
        return Criterion("data drift sustained", 0.0, threshold_days, ">", False, "days",
                         f"latest data check {checks[-1]['id']} found no drift")
    first, last = streak[-1], streak[0]
    days = (datetime.fromisoformat(last["created_at"])
            - datetime.fromisoformat(first["created_at"])).total_seconds() / 86400
    return Criterion("data drift sustained", days, threshold_days, ">", days > threshold_days,
                     "days", f"{len(streak)} consecutive drifted data check(s) from "
                     f"{first['created_at']} to {last['created_at']}")


def training_finished_at(store: Store, target: Target) -> tuple[str | None, str]:
    """When the fine-tune job behind the target's model finished, and which job (or why not)."""
    models, adapters = [], []
    if target.kind == "model":
        models.append(target.name)
    elif target.kind == "variant":
        for row in store.rows("SELECT model_id, lora_path FROM variants WHERE name = ?",
                              [target.name]):
            models.append(row["model_id"])
            adapters += [row["lora_path"]] if row["lora_path"] else []
    for model_id in filter(None, models):
        found = store.rows("SELECT path, lineage FROM models WHERE id = ?", [model_id])
        if not found:
            continue
        lineage = json.loads(found[0]["lineage"]) if found[0]["lineage"] else {}
        jobs = store.rows(
            "SELECT id, ended_at FROM finetune_jobs WHERE status = 'completed' AND (id = ? OR "
            "gguf_path = ? OR merged_path = ?) ORDER BY ended_at DESC LIMIT 1",
            [(lineage or {}).get("job"), found[0]["path"], found[0]["path"]])
        if jobs and jobs[0]["ended_at"]:
            return jobs[0]["ended_at"], f"fine-tune job {jobs[0]['id']} finished"
    for adapter in adapters:
        jobs = store.rows("SELECT id, ended_at FROM finetune_jobs WHERE status = 'completed' "
                          "AND adapter_gguf_path = ? ORDER BY ended_at DESC LIMIT 1", [adapter])
        if jobs and jobs[0]["ended_at"]:
            return jobs[0]["ended_at"], f"fine-tune job {jobs[0]['id']} (adapter) finished"
    return None, "unknown: not a fine-tuned model (no finished fine-tune job)"


def age_criterion(store: Store, target: Target, now: datetime,
                  threshold_days: float = TRAINING_AGE_DAYS) -> Criterion:
    finished, detail = training_finished_at(store, target)
    if finished is None:
        return Criterion("time since training", None, threshold_days, ">", False, "days", detail)
    days = (now - datetime.fromisoformat(finished)).total_seconds() / 86400
    return Criterion("time since training", days, threshold_days, ">", days > threshold_days,
                     "days", f"{detail} at {finished}")


def retraining_decision(store: Store, ref: str, *, now: datetime | None = None,
                        window: int = DEFAULT_WINDOW) -> RetrainingDecision:
    """Evaluate every criterion of the seed's retraining table for a target at ``now``."""
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    target = resolve_target(store, ref)
    keys = related_keys(store, target)
    window_now = monitor(store, target, window=window).current
    criteria = [
        concept_criterion(store, keys, now),
        _rate_criterion("thumbs-up rate", window_now["thumbs_up_rate"], THUMBS_UP_MIN, "<",
                        window_now["feedback_n"], "request(s) with feedback"),
        _rate_criterion("safety failures", window_now["safety_failure_rate"], SAFETY_MAX, ">",
                        window_now["requests"], "request(s)"),
        data_criterion(store, keys, now),
        age_criterion(store, target, now),
    ]
    return RetrainingDecision(target.key, iso(now), criteria)
