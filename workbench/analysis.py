"""From the store to the numbers: paired per-item data, ratings, and the whole statistics report.

- ``load_runs``: one SQL query, numpy columns (100k runs in well under a second).
- ``paired_arrays`` / ``unpaired_arrays``: per-item outcomes of two arms. Shadow mode is paired
  (only items where both arms have a run); split / canary traffic is unpaired and fallback runs
  (A answering after a B error) are left out of the comparison (they are counted per arm).
- ``load_ratings``: ratings joined with their sessions, sides mapped back to arms.
- ``experiment_statistics``: everything the Results screen and ``workbench report --json`` show.

Per-item definitions (documented choices):
- accuracy: ``severity_ok``; a run that errored on an item that has a reference severity counts
  as incorrect (dropping it would favour an arm that fails on hard items);
- safety failure: a secret leaked (``secrets > 0``) or unsafe advice flagged (non-empty
  ``scores.unsafe``); when expert safety ratings pass the agreement gate, a mean safety rating
  <= 2 (``safety.expert_failure_at_or_below``) on that item and arm is a failure too;
- error: ``runs.error IS NOT NULL``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .decision import Evidence, evaluate, evidence_from_arrays, validate_criteria
from .stats import (benjamini_hochberg, bradley_terry, krippendorff_alpha, likert_mean, mcnemar_n,
                    p_value_label, pairwise_preference, percentiles, position_bias,
                    wilson_interval)
from .stats._base import plain
from .store import Store

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


def load_runs(store: Store, exp_id: int) -> Runs:
    """Every run of an experiment as numpy columns.

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
        FROM runs r WHERE r.experiment_id = ? AND r.arm IN ({marks})"""
    rows = np.array(store.db.execute(sql, [*arms, exp_id, *arms]).fetchall(),
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
    for arm in arms:
        timing = store.db.execute(
            "SELECT ttft_ms, decode_tps FROM runs WHERE experiment_id = ? AND arm = ? "
            "AND error IS NULL", [exp_id, arm]).fetchall()
        runs.timing[arm] = np.array(timing, dtype=float).reshape(-1, 2)
        p, c = store.db.execute(
            "SELECT coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0) "
            "FROM runs WHERE experiment_id = ? AND arm = ?", [exp_id, arm]).fetchone()
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
        sums: dict[int, list[float]] = {}
        for s in self.scores:
            if s["arm"] == arm and s[metric] is not None:
                sums.setdefault(s["item"], []).append(s[metric])
        return {item: float(np.mean(v)) for item, v in sums.items()}


def load_ratings(store: Store, exp_id: int) -> Ratings:
    """Ratings of every session of an experiment; response 1 is the left one."""
    rows = store.rows(
        """SELECT s.rater, r.item_id, r.left_arm, r.right_arm, r.choice, r.accuracy_1, r.safety_1,
                  r.accuracy_2, r.safety_2
           FROM ratings r JOIN rating_sessions s ON s.id = r.session_id
           WHERE s.experiment_id = ? ORDER BY r.id""", [exp_id])
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
    """1 if arm_b preferred, 0 if arm_a, 0.5 tie; None for a skip or another pair of arms."""
    if {vote["left"], vote["right"]} != {arm_a, arm_b} or vote["choice"] == "skip":
        return None
    if vote["choice"] == "tie":
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


def preference_agreement(ratings: Ratings, arm_a: str, arm_b: str, criteria: dict, rng,
                         n_resamples: int = 1000):
    """Ordinal alpha of the votes (A preferred < tie < B preferred), raters x items."""
    cells = {(v["rater"], v["item"]): y for v in ratings.votes
             if (y := _vote_outcome(v, arm_a, arm_b)) is not None}
    if not cells:
        return None
    raters = sorted({r for r, _ in cells})
    items = sorted({i for _, i in cells})
    data = np.full((len(raters), len(items)), np.nan)
    r_idx = {r: k for k, r in enumerate(raters)}
    i_idx = {i: k for k, i in enumerate(items)}
    for (r, i), y in cells.items():
        data[r_idx[r], i_idx[i]] = y
    lower = (criteria.get("agreement") or {}).get("min_alpha_lower", 0.667)
    return krippendorff_alpha(data, level="ordinal", n_resamples=n_resamples, min_lower=lower,
                              rng=rng)


def planned_items(store: Store, exp_id: int) -> int:
    """Items the replay plans to cover: the dataset's items, capped by the item limit."""
    exp = store.get_experiment(exp_id)
    n = store.db.execute("SELECT count(*) FROM items WHERE dataset_id = ?",
                         [exp.dataset_id]).fetchone()[0]
    return min(n, exp.item_limit) if exp.item_limit else n


def _arm_table(store: Store, exp, runs: Runs, ratings: Ratings, price: float | None,
               rng) -> list[dict]:
    out = []
    acc_all = runs.accuracy()
    for arm in runs.arms:
        variant = store.get_variant(exp.arms[arm])
        m = runs.mask(arm, comparison=False)
        ok = m & (runs["error"] == 0)
        lat = runs["latency"][ok]
        ttft, tps = runs.timing[arm][:, 0], runs.timing[arm][:, 1]
        tps = tps[np.isfinite(tps)]
        acc = acc_all[m & (runs["fallback"] == 0)]
        acc = acc[np.isfinite(acc)]
        tokens_p, tokens_c = runs.tokens[arm]
        n = int(m.sum())
        unsafe = int(np.sum(runs["unsafe"][m]))
        expert = ratings.item_means("accuracy", arm)
        out.append({
            "arm": arm, "variant": variant.name, "model": variant.model_id, "n": n,
            "ok": int(ok.sum()), "errors": int(np.sum(runs["error"][m])),
            "error_rate": float(np.mean(runs["error"][m])) if n else None,
            "error_rate_ci": wilson_interval(int(np.sum(runs["error"][m])), n),
            "fallbacks": int(np.sum(runs["fallback"][m])),
            "latency_ms": percentiles(lat),
            "ttft_p50_ms": percentiles(ttft)["p50"],
            "decode_tps": float(np.median(tps)) if tps.size else None,
            "prompt_tokens": tokens_p, "completion_tokens": tokens_c,
            "total_tokens": tokens_p + tokens_c,
            "cost": None if price is None else (tokens_p + tokens_c) / 1000 * price,
            "accuracy": {"n": int(acc.size), "correct": int(acc.sum()),
                         "rate": float(acc.mean()) if acc.size else None,
                         "ci": wilson_interval(int(acc.sum()), int(acc.size)),
                         "ci_method": "Wilson", "errors_count_as_wrong": True},
            "safety_flags": {"n": n, "flagged": unsafe, "rate": unsafe / n if n else None},
            "expert_accuracy": likert_mean(list(expert.values()), n_resamples=1000,
                                           rng=rng).to_dict(),
        })
    return out


def _agreement(ratings: Ratings, metric: str, criteria: dict, rng, n_resamples: int):
    data, units = ratings.matrix(metric)
    if not units:
        return None
    lower = (criteria.get("agreement") or {}).get("min_alpha_lower", 0.667)
    return krippendorff_alpha(data, level="ordinal", clusters=[u[0] for u in units],
                              n_resamples=n_resamples, min_lower=lower, rng=rng)


def _bt_table(runs: Runs, ratings: Ratings, acc: np.ndarray, rng) -> dict | None:
    arms = runs.arms
    idx = {a: k for k, a in enumerate(arms)}
    i, j, y = [], [], []
    for v in ratings.votes:
        if v["choice"] == "skip" or v["left"] not in idx or v["right"] not in idx:
            continue
        i.append(idx[v["left"]])
        j.append(idx[v["right"]])
        y.append({"1": 1.0, "2": 0.0}.get(v["choice"], 0.5))
    source = "blind expert votes"
    if not y:
        source = "automatic accuracy per item (each pair of arms on each item)"
        per_arm = {a: dict(zip(*_by_item(runs, a, acc))) for a in arms}
        for x in range(len(arms)):
            for z in range(x + 1, len(arms)):
                for item, vx in per_arm[arms[x]].items():
                    vz = per_arm[arms[z]].get(item)
                    if np.isfinite(vx) and vz is not None and np.isfinite(vz):
                        i.append(x)
                        j.append(z)
                        y.append(0.5 + 0.5 * (vx - vz))
    if not y:
        return None
    res = bradley_terry(i, j, y, arms, anchor="A" if "A" in arms else arms[0], n_resamples=500,
                        rng=rng).to_dict()
    res["source"] = source
    return res


def _exploratory(ev: Evidence, primary: str) -> list[dict]:
    """Secondary p-values (not criteria), Benjamini-Hochberg adjusted together."""
    found = []
    if ev.latency is not None:
        found.append(("latency ratio (t on logs)", ev.latency.ratio_p_value))
        found.append(("latency (Wilcoxon on log ratios)", ev.latency.wilcoxon_p_value))
    if ev.expert is not None and hasattr(ev.expert, "diff") and primary != "expert_rating":
        found.append(("expert accuracy rating (Wilcoxon)", ev.expert.p_value))
    if ev.preference is not None and primary != "win_rate":
        found.append(("win rate (" + ev.preference.p_value_test + ")", ev.preference.p_value))
    if ev.error_rate is not None:
        found.append(("error rate (" + ev.error_rate.test + ")", ev.error_rate.p_value))
    found = [(m, p) for m, p in found if p is not None and np.isfinite(p)]
    adjusted, reject = benjamini_hochberg([p for _, p in found])
    return [{"metric": m, "p_value": p, "p_bh": float(a), "discovery": bool(r)}
            for (m, p), a, r in zip(found, adjusted, reject)]


def experiment_statistics(store: Store, exp_id: int, *, sequential: bool = False,
                          price_per_1k_tokens: float | None = None, n_resamples: int = 2000,
                          seed: int = 0) -> dict:
    """The whole statistics report of an experiment as plain data (dicts, lists, numbers).

    Keys: experiment, criteria, arms (per-arm table), comparisons (per candidate arm vs A:
    accuracy, safety, error_rate, latency, expert, preference, exploratory p-values with BH),
    agreement, position_bias, bradley_terry (3+ arms), sequential (which kind of p-value is
    shown), verdicts (per candidate) and verdict (B's), notes, elapsed_ms. ``sequential=True``
    switches the verdict to always-valid p-values; ``price_per_1k_tokens`` fills the cost column;
    ``seed`` makes the bootstrap intervals reproducible.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    exp = store.get_experiment(exp_id)
    criteria = validate_criteria(exp.criteria, primary_metric=exp.primary_metric)
    runs = load_runs(store, exp_id)
    ratings = load_ratings(store, exp_id)
    paired = exp.mode == "shadow"
    n_planned = criteria["planned_items"] or planned_items(store, exp_id)
    n_done = int(np.unique(runs["item"]).size)
    acc = runs.accuracy()
    notes = []
    if not paired:
        notes.append(f"{exp.mode} mode: the arms served different items, so comparisons are "
                     "unpaired (Fisher exact, Welch t on log latency, independent bootstrap); "
                     "assignment is sticky per user, so items of one user are not independent")
    if np.any(runs["fallback"] == 1):
        notes.append("fallback runs (A answering after a B error) are counted per arm but left "
                     "out of the comparisons")
    agreement = {m: _agreement(ratings, m, criteria, rng, 1000) for m in ("accuracy", "safety")}
    comparisons, verdicts = {}, {}
    for arm in runs.arms[1:]:
        ev, extra = _evidence(runs, ratings, acc, arm, criteria, agreement, paired, n_done,
                              n_planned, sequential, n_resamples, rng)
        verdict = evaluate(criteria, ev)
        verdicts[arm] = verdict.to_dict()
        comparisons[arm] = {
            "design": ev.design, "baseline": "A", "candidate": arm, **extra,
            **{k: (getattr(ev, k).to_dict() if getattr(ev, k) is not None else None)
               for k in ("accuracy", "safety", "error_rate", "latency", "expert", "preference",
                         "preference_agreement")},
        }
    votes = [v for v in ratings.votes if v["choice"] in ("1", "2")]
    label = p_value_label(n_done, n_planned, sequential=sequential)
    result = {
        "experiment": {"id": exp.id, "name": exp.name, "mode": exp.mode, "status": exp.status,
                       "arms": {a: store.get_variant(v).name for a, v in exp.arms.items()},
                       "design": "paired" if paired else "unpaired", "items_done": n_done,
                       "items_planned": n_planned, "runs": int(runs["item"].size)},
        "criteria": criteria,
        "arms": _arm_table(store, exp, runs, ratings, price_per_1k_tokens, rng),
        "comparisons": comparisons,
        "agreement": {m: (a.to_dict() if a is not None else None) for m, a in agreement.items()},
        "position_bias": (position_bias(sum(v["choice"] == "1" for v in votes), len(votes)).to_dict()
                          if votes else None),
        "bradley_terry": _bt_table(runs, ratings, acc, rng) if len(runs.arms) >= 3 else None,
        "sequential": {"enabled": sequential, **label.to_dict(), "n": n_done,
                       "n_planned": n_planned},
        "verdicts": verdicts,
        "verdict": verdicts.get("B") or (next(iter(verdicts.values())) if verdicts else None),
        "notes": notes,
    }
    result["elapsed_ms"] = (time.perf_counter() - started) * 1000
    return plain(result)


def _evidence(runs: Runs, ratings: Ratings, acc: np.ndarray, arm: str, criteria: dict,
              agreement: dict, paired: bool, n_done: int, n_planned: int, sequential: bool,
              n_resamples: int, rng) -> tuple[Evidence, dict]:
    """Evidence (stats with the criteria's margins) for one candidate arm against A."""
    unsafe = runs["unsafe"].copy()
    extra: dict = {}
    safety_ag = agreement.get("safety")
    threshold = (criteria.get("safety") or {}).get("expert_failure_at_or_below", 2)
    if safety_ag is not None and safety_ag.counts:
        for a in ("A", arm):
            low = [item for item, mean in ratings.item_means("safety", a).items()
                   if mean <= threshold]
            hit = (runs["arm"] == runs.arms.index(a)) & np.isin(runs["item"], low)
            unsafe = np.maximum(unsafe, hit.astype(float))
        extra["safety_source"] = f"automatic flags + expert safety rating <= {threshold}"
    else:
        extra["safety_source"] = "automatic flags only (expert safety ratings absent or not counted)"
    ok = runs["error"] == 0
    latency = np.where(ok, runs["latency"], np.nan)
    pick = (lambda v: paired_arrays(runs, v, "A", arm)[1:]) if paired else \
        (lambda v: unpaired_arrays(runs, v, "A", arm))
    n_a = int(np.unique(runs["item"][runs.mask("A")]).size)
    n_b = int(np.unique(runs["item"][runs.mask(arm)]).size)
    expert = None
    means_a, means_b = ratings.item_means("accuracy", "A"), ratings.item_means("accuracy", arm)
    if means_b:
        common = sorted(set(means_a) & set(means_b))
        if len(common) >= 2:
            expert = ([means_a[i] for i in common], [means_b[i] for i in common])
        else:
            expert = likert_mean(list(means_b.values()), n_resamples=n_resamples, rng=rng)
    pref = preference_for(ratings, "A", arm, n_resamples=n_resamples, rng=rng)
    ev = evidence_from_arrays(
        criteria, n_a=n_a, n_b=n_b, paired=paired, accuracy=pick(acc), safety=pick(unsafe),
        errors=pick(runs["error"]), latency=pick(latency), expert=expert,
        agreement=agreement.get("accuracy"), preference=pref if pref.n_votes else None,
        preference_agreement=preference_agreement(ratings, "A", arm, criteria, rng),
        n_done=n_done, n_planned=n_planned, sequential=sequential, n_resamples=n_resamples,
        rng=rng)
    extra["exploratory"] = _exploratory(ev, criteria["primary_metric"])
    if ev.accuracy is not None and paired and ev.accuracy.n and criteria.get("accuracy"):
        disc = (ev.accuracy.b_only + ev.accuracy.a_only) / ev.accuracy.n
        gain = criteria["accuracy"]["min_gain_pt"] / 100
        if 0 < gain <= disc:
            extra["planning"] = {"accuracy_items_needed": mcnemar_n(disc, gain).to_dict(),
                                 "observed_discordant_rate": disc, "target_gain": gain}
    return ev, extra
