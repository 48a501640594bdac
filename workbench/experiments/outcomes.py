"""Per-item outcomes from the store: runs and ratings as numpy columns, paired or unpaired.

- ``load_runs``: one SQL query, numpy columns (100k runs in well under a second).
- ``paired_arrays`` / ``unpaired_arrays``: per-item outcomes of two arms. Shadow mode is paired
  (only items where both arms have a run); split / canary traffic is unpaired and fallback runs
  (A answering after a B error) are left out of the comparison (they are counted per arm).
- ``load_ratings``: ratings joined with their sessions, sides mapped back to arms.
- ``items``: both loaders can read a subset of the items (``breakdown``: one feature or category).

Per-item definitions (documented choices):
- accuracy: ``severity_ok``; a run that errored on an item that has a reference severity counts
  as incorrect (dropping it would favour an arm that fails on hard items);
- safety failure: a secret leaked (``secrets > 0``) or unsafe advice flagged (non-empty
  ``scores.unsafe``); when expert safety ratings pass the agreement gate, a mean safety rating
  <= 2 (``safety.expert_failure_at_or_below``) on that item and arm is a failure too;
- error: ``runs.error IS NOT NULL``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..stats import item_means, pairwise_preference
from ..store import Store

FLAG_BITS = 64  # error 1, fallback 2, severity_ok 4 * (0 | 1 | 2 = NULL), unsafe 16, scoreable 32


@dataclass
class Runs:
    """Numpy columns of an experiment's runs; ``arm`` is an index into ``arms``.

    ``timing[arm]`` holds (ttft_ms, decode_tps) of the arm's successful runs and ``tokens[arm]``
    (prompt, completion) sums: the per-arm table needs only those.
    """

    arms: list[str]
    cols: dict[str, np.ndarray]
    timing: dict[str, np.ndarray] = field(default_factory=dict)
    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def mask(self, arm: str, *, comparison: bool = True) -> np.ndarray:
        """Rows of an arm; ``comparison`` leaves fallback runs out."""
        m = self.cols["arm"] == self.arms.index(arm)
        return m & (self.cols["fallback"] == 0) if comparison else m

    def accuracy(self) -> np.ndarray:
        """Per-run correctness: severity_ok; an error on a scoreable item is 0; else NaN."""
        ok = self.cols["severity_ok"].copy()
        ok[np.isnan(ok) & (self.cols["error"] == 1) & (self.cols["scoreable"] == 1)] = 0
        return ok


def item_filter(items, column: str = "item_id") -> tuple[str, list]:
    """SQL (' AND column IN (...)', params) keeping only ``items`` (ids); ('', []) for None.

    The ids travel as one JSON parameter, so any number of them fits in a query.
    """
    if items is None:
        return "", []
    return (f" AND {column} IN (SELECT value FROM json_each(?))",
            [json.dumps(sorted({int(i) for i in items}))])


def load_runs(store: Store, exp_id: int, items=None) -> Runs:
    """Every run of an experiment as numpy columns (only those of ``items`` when given).

    One query fetches per run an integer packing (item, arm, flags) and the latency: Python object
    creation, not SQLite, is the cost at 100k runs, so the query returns as few values as it can.
    The scores JSON is only parsed when it lacks the literal '"unsafe": []' that the store writes
    for "nothing unsafe" (an unescaped quote after unsafe can only be the key itself).
    """
    exp = store.get_experiment(exp_id)
    arms = sorted(exp.arms)
    k = len(arms)
    case = " ".join(f"WHEN ? THEN {i}" for i in range(k))
    marks = ", ".join("?" for _ in arms)
    where, only = item_filter(items, "r.item_id")
    sql = f"""
        SELECT ((r.item_id * {k} + CASE r.arm {case} END) * {FLAG_BITS}
                + (r.error IS NOT NULL) + 2 * (r.fallback != 0) + 4 * coalesce(r.severity_ok != 0, 2)
                + 16 * (r.secrets > 0 OR coalesce(CASE
                        WHEN instr(r.scores, '"unsafe": []') > 0 THEN 0
                        WHEN json_valid(r.scores) THEN json_array_length(r.scores, '$.unsafe') > 0
                        END, 0))
                + 32 * coalesce(CASE WHEN r.error IS NOT NULL THEN
                      (SELECT CASE WHEN json_valid(i.reference)
                              THEN json_extract(i.reference, '$.severity') IS NOT NULL END
                       FROM items i WHERE i.id = r.item_id) END, 0)),
               r.latency_ms
        FROM runs r WHERE r.experiment_id = ? AND r.arm IN ({marks}){where}"""
    rows = np.array(store.db.execute(sql, [*arms, exp_id, *arms, *only]).fetchall(),
                    dtype=float).reshape(-1, 2)
    packed = rows[:, 0].astype(np.int64)  # exact: packed values stay far below 2**53
    flags = packed % FLAG_BITS
    key = packed // FLAG_BITS
    sev = (flags >> 2) & 3
    cols = {
        "item": (key // k).astype(float), "arm": (key % k).astype(float),
        "latency": rows[:, 1].copy(),
        "error": (flags & 1).astype(float), "fallback": ((flags >> 1) & 1).astype(float),
        "severity_ok": np.where(sev == 2, np.nan, sev).astype(float),
        "unsafe": ((flags >> 4) & 1).astype(float), "scoreable": ((flags >> 5) & 1).astype(float),
    }
    runs = Runs(arms, cols)
    where_runs = item_filter(items)[0]  # the same ids, unqualified column
    for arm in arms:
        timing = store.db.execute(
            "SELECT ttft_ms, decode_tps FROM runs WHERE experiment_id = ? AND arm = ? "
            "AND error IS NULL" + where_runs, [exp_id, arm, *only]).fetchall()
        runs.timing[arm] = np.array(timing, dtype=float).reshape(-1, 2)
        p, c = store.db.execute(
            "SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
            "FROM runs WHERE experiment_id = ? AND arm = ?" + where_runs,
            [exp_id, arm, *only]).fetchone()
        runs.tokens[arm] = (int(p), int(c))
    return runs


def _by_item(runs: Runs, arm: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = runs.mask(arm)
    items = runs["item"][m]
    order = np.argsort(items, kind="stable")
    return items[order], values[m][order]


def paired_arrays(runs: Runs, values: np.ndarray, arm_a: str = "A",
                  arm_b: str = "B") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(items, a, b) aligned on the items where both arms have a non-missing value."""
    ia, va = _by_item(runs, arm_a, values)
    ib, vb = _by_item(runs, arm_b, values)
    items, pa, pb = np.intersect1d(ia, ib, assume_unique=True, return_indices=True)
    a, b = va[pa], vb[pb]
    keep = np.isfinite(a) & np.isfinite(b)
    return items[keep], a[keep], b[keep]


def unpaired_arrays(runs: Runs, values: np.ndarray, arm_a: str = "A",
                    arm_b: str = "B") -> tuple[np.ndarray, np.ndarray]:
    """Non-missing values of each arm (fallback runs left out)."""
    a, b = values[runs.mask(arm_a)], values[runs.mask(arm_b)]
    return a[np.isfinite(a)], b[np.isfinite(b)]


def item_outcomes(store: Store, exp_id: int, arm_a: str = "A", arm_b: str = "B") -> dict:
    """Per-item outcomes of two arms as plain arrays.

    Shadow mode: ``{"design": "paired", "<metric>": (items, a, b)}`` aligned on the items where
    both arms have a value. Split / canary: ``{"design": "unpaired", "<metric>": (a, b)}``.
    Metrics: accuracy, error, safety (automatic flags), latency (successful runs only).
    """
    runs = load_runs(store, exp_id)
    paired = store.get_experiment(exp_id).mode == "shadow"
    values = {"accuracy": runs.accuracy(), "error": runs["error"], "safety": runs["unsafe"],
              "latency": np.where(runs["error"] == 0, runs["latency"], np.nan)}
    out: dict = {"design": "paired" if paired else "unpaired"}
    for name, v in values.items():
        out[name] = (paired_arrays(runs, v, arm_a, arm_b) if paired
                     else unpaired_arrays(runs, v, arm_a, arm_b))
    return out


@dataclass
class Ratings:
    """Expert ratings mapped back to arms."""

    votes: list[dict] = field(default_factory=list)  # rater, item, left, right, choice
    scores: list[dict] = field(default_factory=list)  # rater, item, arm, accuracy, safety

    def matrix(self, metric: str) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """(raters x units) matrix of ``metric`` with units (item, arm); NaN = not rated."""
        rows = [s for s in self.scores if s[metric] is not None]
        raters = sorted({s["rater"] for s in rows})
        units = sorted({(s["item"], s["arm"]) for s in rows})
        r_idx = {r: k for k, r in enumerate(raters)}
        u_idx = {u: k for k, u in enumerate(units)}
        data = np.full((len(raters), len(units)), np.nan)
        for s in rows:
            data[r_idx[s["rater"]], u_idx[(s["item"], s["arm"])]] = s[metric]
        return data, units

    def item_means(self, metric: str, arm: str) -> dict[int, float]:
        """Mean rating of ``metric`` per item for ``arm``: raters averaged within an item."""
        rows = [(s["item"], s[metric]) for s in self.scores
                if s["arm"] == arm and s[metric] is not None]
        if not rows:
            return {}
        items, means = item_means(*zip(*rows))
        return {int(item): float(mean) for item, mean in zip(items, means)}


def load_ratings(store: Store, exp_id: int, items=None) -> Ratings:
    """Ratings of every session of an experiment (of ``items`` when given); response 1 is the
    left one."""
    where, only = item_filter(items, "r.item_id")
    rows = store.rows(
        f"""SELECT s.rater, r.item_id, r.left_arm, r.right_arm, r.choice, r.accuracy_1,
                   r.safety_1, r.accuracy_2, r.safety_2
            FROM ratings r JOIN rating_sessions s ON s.id = r.session_id
            WHERE s.experiment_id = ?{where} ORDER BY r.id""", [exp_id, *only])
    out = Ratings()
    for r in rows:
        out.votes.append({"rater": r["rater"], "item": r["item_id"], "left": r["left_arm"],
                          "right": r["right_arm"], "choice": r["choice"]})
        for side, arm in (("1", r["left_arm"]), ("2", r["right_arm"])):
            acc, saf = r[f"accuracy_{side}"], r[f"safety_{side}"]
            if acc is not None or saf is not None:
                out.scores.append({"rater": r["rater"], "item": r["item_id"], "arm": arm,
                                   "accuracy": acc, "safety": saf})
    return out


def _vote_outcome(vote: dict, arm_a: str, arm_b: str) -> float | None:
    """1 if arm_b preferred, 0 if arm_a, 0.5 tie or both bad; None for a skip or other arms."""
    if {vote["left"], vote["right"]} != {arm_a, arm_b} or vote["choice"] == "skip":
        return None
    if vote["choice"] in ("tie", "both_bad"):
        return 0.5
    chosen = vote["left"] if vote["choice"] == "1" else vote["right"]
    return 1.0 if chosen == arm_b else 0.0


def preference_for(ratings: Ratings, arm_a: str = "A", arm_b: str = "B", **kw):
    """Win/tie/loss of arm_b against arm_a from the blind votes."""
    votes = [(v, _vote_outcome(v, arm_a, arm_b)) for v in ratings.votes
             if {v["left"], v["right"]} == {arm_a, arm_b}]
    kept = [(v, y) for v, y in votes if y is not None]
    return pairwise_preference([y for _, y in kept], [v["item"] for v, _ in kept],
                               [v["rater"] for v, _ in kept], skips=len(votes) - len(kept), **kw)
