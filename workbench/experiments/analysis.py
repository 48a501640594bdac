"""From the store to the numbers: the whole statistics report of an experiment.

``experiment_statistics`` is everything the Results screen and ``workbench report --json`` show;
the per-item data it works on comes from ``workbench.experiments.outcomes``.
"""

from __future__ import annotations

import time

import numpy as np

from . import inference
from .decision import DEFAULTS, Evidence, agreement_gate, evaluate, evidence_from_arrays, \
    validate_criteria
from .outcomes import (Ratings, Runs, _by_item, _vote_outcome, item_filter, item_outcomes,
                       load_ratings, load_runs, paired_arrays, preference_for, unpaired_arrays)
from ..stats import (benjamini_hochberg, bradley_terry, krippendorff_alpha, likert_mean, mcnemar_n,
                     p_value_label, percentiles, position_bias, wilson_interval)
from ..stats._base import plain
from ..store import Store

__all__ = ["experiment_statistics", "item_outcomes", "load_ratings", "load_runs", "paired_arrays",
           "planned_items", "preference_agreement", "preference_for", "unpaired_arrays"]

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


def planned_items(store: Store, exp_id: int, items=None) -> int:
    """Items the replay plans to cover: the dataset's items, capped by the item limit (the first
    ones in file order); with ``items``, how many of those planned items are among them."""
    exp = store.get_experiment(exp_id)
    n = store.db.execute("SELECT count(*) FROM items WHERE dataset_id = ?",
                         [exp.dataset_id]).fetchone()[0]
    n = min(n, exp.item_limit) if exp.item_limit else n
    if items is None:
        return n
    where, only = item_filter(items, "id")
    return store.db.execute(f"SELECT count(*) FROM (SELECT id FROM items WHERE dataset_id = ? "
                            f"ORDER BY id LIMIT ?) WHERE 1{where}",
                            [exp.dataset_id, n, *only]).fetchone()[0]


def _arm_table(store: Store, exp, runs: Runs, ratings: Ratings, price: float | None,
               rng, items=None) -> list[dict]:
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
        expert_safety = ratings.item_means("safety", arm)
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
            "expert_safety": likert_mean(list(expert_safety.values()), n_resamples=1000,
                                         rng=rng).to_dict(),
            "target": variant.target,
            "engines": _engines_used(store, exp.id, arm, items),
        })
    return out


def _engines_used(store: Store, exp_id: int, arm: str, items=None) -> list[dict]:
    """Which engine answered an arm's runs and where their token counts came from."""
    where, only = item_filter(items)
    return store.rows("SELECT engine, usage_source, count(*) AS runs FROM runs "
                      f"WHERE experiment_id = ? AND arm = ?{where} GROUP BY engine, usage_source "
                      "ORDER BY runs DESC", [exp_id, arm, *only])


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
    i, j, y, items = [], [], [], []
    for v in ratings.votes:
        if v["choice"] == "skip" or v["left"] not in idx or v["right"] not in idx:
            continue
        i.append(idx[v["left"]])
        j.append(idx[v["right"]])
        y.append({"1": 1.0, "2": 0.0}.get(v["choice"], 0.5))
        items.append(v["item"])
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
                        items.append(item)
    if not y:
        return None
    res = bradley_terry(i, j, y, arms, anchor="A" if "A" in arms else arms[0], clusters=items,
                        n_resamples=500, rng=rng).to_dict()
    res["source"] = source
    return res


def _exploratory(ev: Evidence, criteria: dict) -> list[dict]:
    """Secondary p-values (not criteria), Benjamini-Hochberg adjusted together.

    Each p-value is labelled (fixed-horizon or always-valid, as the verdict's mode). Ratings and
    votes whose agreement gate did not pass (or could not be computed) are listed with the reason
    but are not in the BH family and are never a discovery; in always-valid mode neither is a
    p-value that has no always-valid form.
    """
    seq, alpha = ev.sequential, criteria["alpha"]
    lower = (criteria.get("agreement") or DEFAULTS["agreement"])["min_alpha_lower"]
    primary = criteria["primary_metric"]
    found: list[tuple[str, inference.Shown, str | None]] = []
    if ev.latency is not None:
        found.append(("latency ratio (t on logs)",
                      inference.latency_ratio(ev.latency, sequential=seq, n_planned=ev.n_planned,
                                              alpha=alpha), None))
        found.append(("latency (Wilcoxon on log ratios)",
                      inference.Shown(None, None, ev.latency.wilcoxon_p_value,
                                      inference.NO_FORM if seq else inference.FIXED,
                                      "Wilcoxon signed-rank on log ratios"), None))
    if ev.expert is not None and hasattr(ev.expert, "diff") and primary != "expert_rating":
        found.append(("expert accuracy rating (" + ("betting sequence" if seq else "Wilcoxon")
                      + ")", inference.expert(ev.expert, sequential=seq),
                      agreement_gate(ev.agreement, lower)))
    if ev.preference is not None and primary != "win_rate":
        shown = inference.win_rate(ev.preference, sequential=seq)
        found.append((f"win rate ({shown.method})", shown,
                      agreement_gate(ev.preference_agreement, lower)))
    if ev.error_rate is not None:
        shown = inference.binary(ev.error_rate, sequential=seq, n_planned=ev.n_planned,
                                 alpha=alpha)
        found.append((f"error rate ({ev.error_rate.test if not seq else shown.method})", shown,
                      None))
    found = [(m, s, b) for m, s, b in found if s.p_value is not None and np.isfinite(s.p_value)]
    family = [k for k, (_, s, b) in enumerate(found) if b is None and s.label != inference.NO_FORM]
    adjusted, reject = benjamini_hochberg([found[k][1].p_value for k in family], alpha)
    bh = {k: (float(a), bool(r)) for k, a, r in zip(family, adjusted, reject)}
    rows = []
    for k, (metric, shown, blocked) in enumerate(found):
        p_bh, discovery = bh.get(k, (None, False))
        rows.append({"metric": metric, "p_value": shown.p_value, "p_label": shown.label,
                     "p_bh": p_bh, "discovery": discovery, "in_family": k in bh,
                     "note": blocked or ("no always-valid form: left out of the always-valid "
                                         "family" if k not in bh else None)})
    return rows


def _position_bias(votes: list[dict], sequential: bool) -> dict | None:
    """P(left chosen | decisive) = 1/2, with the p-value shown in the report's mode."""
    if not votes:
        return None
    out = position_bias(sum(v["choice"] == "1" for v in votes), len(votes)).to_dict()
    out["p_shown"], out["p_label"] = inference.position_bias(out, sequential=sequential)
    return out


def _shown(ev: Evidence, alpha: float) -> dict:
    """The interval and p-value shown for each comparison in the report's mode (``inference``)."""
    seq, n_planned, out = ev.sequential, ev.n_planned, {}
    for key in ("accuracy", "safety", "error_rate"):
        stat = getattr(ev, key)
        if stat is not None and np.isfinite(stat.diff):
            out[key] = inference.binary(stat, sequential=seq, n_planned=n_planned,
                                        alpha=alpha).to_dict()
    if ev.latency is not None and np.isfinite(ev.latency.ratio):
        out["latency_ratio"] = inference.latency_ratio(ev.latency, sequential=seq,
                                                       n_planned=n_planned, alpha=alpha).to_dict()
    if ev.expert is not None and hasattr(ev.expert, "diff") and np.isfinite(ev.expert.diff):
        out["expert"] = inference.expert(ev.expert, sequential=seq).to_dict()
    if ev.preference is not None and ev.preference.n_items:
        out["win_rate"] = inference.win_rate(ev.preference, sequential=seq).to_dict()
    return out


def experiment_statistics(store: Store, exp_id: int, *, sequential: bool = False,
                          price_per_1k_tokens: float | None = None, n_resamples: int = 2000,
                          seed: int = 0, items=None) -> dict:
    """The whole statistics report of an experiment as plain data (dicts, lists, numbers).

    Keys: experiment, criteria, arms (per-arm table), comparisons (per candidate arm vs A:
    accuracy, safety, error_rate, latency, expert, preference, ``shown``: the interval and labelled
    p-value of each in the report's mode, exploratory p-values with BH),
    agreement, position_bias, bradley_terry (3+ arms), sequential (which kind of p-value is
    shown), verdicts (per candidate) and verdict (B's), notes, elapsed_ms. ``sequential=True``
    switches the verdict to always-valid p-values; ``price_per_1k_tokens`` fills the cost column;
    ``seed`` makes the bootstrap intervals reproducible. ``items`` (item ids) restricts every
    number to those items' runs and ratings (``breakdown``: one group); the planned n is then the
    group's share of the planned items (and of a pre-registered ``planned_items``).
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    exp = store.get_experiment(exp_id)
    criteria = validate_criteria(exp.criteria, primary_metric=exp.primary_metric)
    runs = load_runs(store, exp_id, items)
    ratings = load_ratings(store, exp_id, items)
    paired = exp.mode == "shadow"
    n_planned = criteria["planned_items"] or planned_items(store, exp_id)
    if items is not None:  # the group's share of the planned n (the verdict reads the criteria)
        group, total = planned_items(store, exp_id, items), max(planned_items(store, exp_id), 1)
        n_planned = criteria["planned_items"] = max(1, -(-n_planned * group // total))
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
            "shown": _shown(ev, criteria["alpha"]),
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
        "arms": _arm_table(store, exp, runs, ratings, price_per_1k_tokens, rng, items),
        "comparisons": comparisons,
        "agreement": {m: (a.to_dict() if a is not None else None) for m, a in agreement.items()},
        "position_bias": _position_bias(votes, sequential),
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
    extra["exploratory"] = _exploratory(ev, criteria)
    if ev.accuracy is not None and paired and ev.accuracy.n and criteria.get("accuracy"):
        disc = (ev.accuracy.b_only + ev.accuracy.a_only) / ev.accuracy.n
        gain = criteria["accuracy"]["min_gain_pt"] / 100
        if 0 < gain <= disc:
            extra["planning"] = {"accuracy_items_needed": mcnemar_n(disc, gain).to_dict(),
                                 "observed_discordant_rate": disc, "target_gain": gain}
    return ev, extra
