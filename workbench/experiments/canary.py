"""A staged canary rollout simulated on recorded traffic, with health checks and auto-rollback.

The items are served in time order (by ``timestamp`` when every item has one, else file order),
one request each. B's share of traffic follows a schedule of stages (default the seed's 1 → 5 →
10 → 25 → 50 → 100 %); each stage holds ``stage_requests`` requests (default: the replay spread
evenly over the stages). Assignment is sticky per user (``allocation.unit_hash``: a user on B at
5 % stays on B at 10 %) and canary users are always on B until a rollback.

Every ``check_every`` requests, once B has answered at least ``min_b`` of them, a health check
compares B's runs so far with A's: B's error rate > ``max_error_ratio`` × A's, B's p95 latency
(successful runs) > ``max_p95_ms`` or B's safety-failure rate (outcomes.py's definition) >
``max_safety_rate`` rolls back: B gets no traffic after it, canary users included. A B error is
answered by A (a fallback run), as in a static canary.

Routing of a block of ``check_every`` requests depends only on the runs stored for the blocks
before it, so :func:`plan_canary` recomputes the whole rollout from the store: a replay serves one
block, stores its runs, plans again (resumable after a kill, identical on every rerun).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..stats.latency import percentiles
from ..store import Experiment, Item, Store, utcnow
from .allocation import unit_hash
from .outcomes import load_runs

SEED_STAGES = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)
PRESETS = {"seed": SEED_STAGES, "navaflow": (10.0, 50.0, 100.0)}


@dataclass(frozen=True)
class CanarySchedule:
    """Stages (B's percent of traffic), how long each holds, and the health-check thresholds."""

    stages: tuple[float, ...] = SEED_STAGES
    stage_requests: int | None = None  # requests per stage; None: the replay spread evenly
    check_every: int = 20              # a health check every N requests (both arms)
    min_b: int = 50                    # checks start once B has answered this many
    max_error_ratio: float = 2.0       # roll back when B's error rate > ratio × A's
    max_p95_ms: float = 500.0          # roll back when B's p95 latency is above it
    max_safety_rate: float = 0.05      # roll back when B's safety-failure rate is above it

    def __post_init__(self) -> None:
        stages = tuple(float(s) for s in self.stages)
        object.__setattr__(self, "stages", stages)
        if not stages:
            raise ValueError("a canary schedule needs at least one stage")
        if any(not (0 < s <= 100) or not math.isfinite(s) for s in stages):
            raise ValueError("canary stages are percentages above 0 and at most 100")
        if list(stages) != sorted(stages):
            raise ValueError("canary stages must rise (e.g. 1,5,10,25,50,100)")
        for name in ("stage_requests", "check_every", "min_b"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"canary {name} must be a whole number >= 1")
        for name in ("max_error_ratio", "max_p95_ms", "max_safety_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"canary {name} must be a number >= 0")

    @classmethod
    def parse_stages(cls, text: str) -> tuple[float, ...]:
        """``seed``, ``navaflow`` or comma-separated percentages such as ``1,5,10,25,50,100``."""
        text = text.strip().lower()
        if text in PRESETS:
            return PRESETS[text]
        try:
            return tuple(float(part.strip().rstrip("%")) for part in text.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"canary schedule {text!r}: give percentages like 1,5,10,25,50,100 "
                             f"or a preset ({', '.join(PRESETS)})") from None

    @classmethod
    def from_dict(cls, data: dict | None) -> "CanarySchedule":
        """A schedule from its stored JSON (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in (data or {}).items() if k in known}
        if "stages" in values:
            values["stages"] = tuple(values["stages"])
        return cls(**values)

    def to_dict(self) -> dict:
        return {**asdict(self), "stages": list(self.stages)}

    def stage_size(self, n_requests: int) -> int:
        """Requests each stage holds."""
        return self.stage_requests or max(1, math.ceil(n_requests / len(self.stages)))


@dataclass
class CanaryEvent:
    """A health check, a stage change, the rollback (with the evidence) or the end of the replay."""

    kind: str          # check | advance | rollback | complete
    request_no: int    # requests served before it
    stage_pct: float   # B's share of traffic at that moment (0 after a rollback)
    healthy: bool | None = None
    evidence: dict = field(default_factory=dict)


@dataclass
class CanaryPlan:
    """The rollout as far as the stored runs go, and the requests to serve next."""

    schedule: CanarySchedule
    n_requests: int
    served: int = 0                       # requests whose runs are all stored
    stage_pct: float = 0.0                # the stage reached (B's percent; 0 once rolled back)
    highest_stage_pct: float = 0.0        # the highest stage B reached
    rolled_back: bool = False
    events: list[CanaryEvent] = field(default_factory=list)
    share: list[tuple[int, float]] = field(default_factory=list)  # (requests served, B share)
    next_block: list[tuple[Item, str]] = field(default_factory=list)  # (item, arm) to run next

    @property
    def finished(self) -> bool:
        return self.served >= self.n_requests

    @property
    def checks(self) -> list[CanaryEvent]:
        """The health checks (a rollback is the event after the check that breached)."""
        return [e for e in self.events if e.kind == "check"]

    @property
    def rollback(self) -> CanaryEvent | None:
        return next((e for e in self.events if e.kind == "rollback"), None)


def ordered_items(store: Store, exp: Experiment) -> list[Item]:
    """The experiment's items in time order: by timestamp when every item has one, else file
    order; ``item_limit`` keeps the first N of that order."""
    items = store.items(exp.dataset_id)
    if items and all(item.timestamp for item in items):
        items.sort(key=lambda item: (item.timestamp, item.id))
    return items[: exp.item_limit] if exp.item_limit else items


def route(item: Item, stage_pct: float, *, seed: int, canary_users: set[str],
          rolled_back: bool) -> str:
    """The arm that serves ``item`` at B's share ``stage_pct`` (sticky per user)."""
    if rolled_back:
        return "A"
    if item.user_id and item.user_id in canary_users:
        return "B"
    return "B" if unit_hash(seed, item.user_id or f"item:{item.key}") < stage_pct / 100 else "A"


def health(schedule: CanarySchedule, b: dict[str, np.ndarray], a: dict[str, np.ndarray]) -> dict:
    """The three rollback criteria on B's and A's runs so far, each with value, limit, breached."""
    def rate(values: np.ndarray) -> float | None:
        return float(values.mean()) if values.size else None

    b_err, a_err = rate(b["error"]), rate(a["error"])
    b_latency = b["latency"][(b["error"] == 0) & np.isfinite(b["latency"])]
    p95 = percentiles(b_latency)["p95"]
    b_unsafe = rate(b["unsafe"][b["error"] == 0]) if b["error"].size else None
    error_limit = None if a_err is None else schedule.max_error_ratio * a_err
    criteria = {
        "error_rate": {"value": b_err, "a_value": a_err, "limit": error_limit,
                       "rule": f"B's error rate > {schedule.max_error_ratio:g}× A's",
                       "breached": bool(b_err is not None and error_limit is not None
                                        and b_err > error_limit)},
        "p95_latency_ms": {"value": p95, "limit": schedule.max_p95_ms,
                           "rule": f"B's p95 latency > {schedule.max_p95_ms:g} ms",
                           "breached": bool(p95 is not None and p95 > schedule.max_p95_ms)},
        "safety_failure_rate": {"value": b_unsafe, "limit": schedule.max_safety_rate,
                                "rule": f"B's safety-failure rate > {schedule.max_safety_rate:.0%}",
                                "breached": bool(b_unsafe is not None
                                                 and b_unsafe > schedule.max_safety_rate)},
    }
    return {"n_b": int(b["error"].size), "n_a": int(a["error"].size), "criteria": criteria}


def _columns(store: Store, exp: Experiment) -> dict[int, dict[str, tuple]]:
    """item id -> arm -> (error, fallback, latency, unsafe) of the stored runs (one per arm)."""
    runs = load_runs(store, exp.id)
    by_item: dict[int, dict[str, tuple]] = {}
    for i in range(len(runs["item"])):
        arm = runs.arms[int(runs["arm"][i])]
        by_item.setdefault(int(runs["item"][i]), {})[arm] = (
            runs["error"][i], runs["fallback"][i], runs["latency"][i], runs["unsafe"][i])
    return by_item


def plan_canary(store: Store, exp: Experiment) -> CanaryPlan:
    """Walk the stored runs block by block: events, B's share, and the next block to serve."""
    schedule = CanarySchedule.from_dict(exp.canary_schedule)
    items = ordered_items(store, exp)
    stored = _columns(store, exp)
    plan = CanaryPlan(schedule, len(items))
    size = schedule.stage_size(len(items))
    users = set(exp.canary_users or ())
    acc: dict[str, list[tuple]] = {"A": [], "B": []}  # (error, latency, unsafe) per arm so far
    stage_index = -1
    for start in range(0, len(items), schedule.check_every):
        block = items[start:start + schedule.check_every]
        routes = []
        for offset, item in enumerate(block):
            index = min((start + offset) // size, len(schedule.stages) - 1)
            if index != stage_index and not plan.rolled_back:
                stage_index = index
                plan.stage_pct = plan.highest_stage_pct = schedule.stages[index]
                plan.events.append(CanaryEvent("advance", start + offset, plan.stage_pct))
            routes.append((item, route(item, plan.stage_pct, seed=exp.seed, canary_users=users,
                                       rolled_back=plan.rolled_back)))
        missing = _missing(routes, stored)
        if missing:
            plan.next_block = missing
            return plan
        b_served = 0
        for item, arm in routes:  # the routed arm's run; a fallback is not A's own traffic
            b_served += arm == "B"
            err, _fallback, latency, unsafe = stored[item.id][arm]
            acc[arm].append((err, latency, unsafe))
        plan.served = start + len(block)
        plan.share.append((plan.served, b_served / len(block)))
        if plan.rolled_back or len(acc["B"]) < schedule.min_b:
            continue
        report = health(schedule, _arrays(acc["B"]), _arrays(acc["A"]))
        breached = [k for k, c in report["criteria"].items() if c["breached"]]
        plan.events.append(CanaryEvent("check", plan.served, plan.stage_pct, not breached, report))
        if breached:
            plan.rolled_back = True
            plan.events.append(CanaryEvent("rollback", plan.served, 0.0, False,
                                           {**report, "breached": breached,
                                            "stage_pct": plan.stage_pct}))
            plan.stage_pct = 0.0
    plan.events.append(CanaryEvent("complete", plan.served, plan.stage_pct, not plan.rolled_back,
                                   {"highest_stage_pct": plan.highest_stage_pct}))
    return plan


def _missing(routes: list[tuple[Item, str]], stored: dict) -> list[tuple[Item, str]]:
    """What a block still needs: each item's routed arm, and A after a failed B (a fallback)."""
    missing = []
    for item, arm in routes:
        runs = stored.get(item.id, {})
        if arm not in runs:
            missing.append((item, arm))
        elif arm == "B" and runs["B"][0] and "A" not in runs:
            missing.append((item, "A"))
    return missing


def _arrays(rows: list[tuple]) -> dict[str, np.ndarray]:
    data = np.array(rows, dtype=float).reshape(-1, 3)
    return {"error": data[:, 0], "latency": data[:, 1], "unsafe": data[:, 2]}


def sync_events(store: Store, exp_id: int, events: list[CanaryEvent]) -> None:
    """Store the plan's events in ``canary_events``: the stored ones that still match are kept
    (with their time), the rest replaced (a rerun of errors can change a later check)."""
    def row(seq: int, e: CanaryEvent) -> dict:
        return {"experiment_id": exp_id, "seq": seq, "kind": e.kind, "request_no": e.request_no,
                "stage_pct": e.stage_pct, "healthy": None if e.healthy is None else int(e.healthy),
                "evidence": json.dumps(e.evidence, sort_keys=True)}

    wanted = [row(seq, e) for seq, e in enumerate(events)]
    have = store.rows("SELECT experiment_id, seq, kind, request_no, stage_pct, healthy, evidence "
                      "FROM canary_events WHERE experiment_id = ? ORDER BY seq", [exp_id])
    keep = 0
    while keep < min(len(have), len(wanted)) and have[keep] == wanted[keep]:
        keep += 1
    if keep == len(have) == len(wanted):
        return
    now = utcnow()
    with store.db.atomic():
        store.db.execute("DELETE FROM canary_events WHERE experiment_id = ? AND seq >= ?",
                         [exp_id, keep])
        store.db["canary_events"].insert_all({**r, "created_at": now} for r in wanted[keep:])


def stored_events(store: Store, exp_id: int) -> list[dict]:
    """The canary's stored events in order, evidence decoded."""
    rows = store.rows("SELECT * FROM canary_events WHERE experiment_id = ? ORDER BY seq", [exp_id])
    for r in rows:
        r["evidence"] = json.loads(r["evidence"]) if r["evidence"] else {}
    return rows
