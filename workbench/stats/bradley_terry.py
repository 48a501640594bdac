"""Three or more variants: Bradley-Terry ratings from pairwise battles.

P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)): ratings are on the base-10 Elo scale of FastChat,
R = 400 * theta10 + 1000 with theta10 the base-10 log-strength, anchored so the production model
is exactly 1000. Ties count half a win for each side. MLE with ``scipy.optimize.minimize``
(L-BFGS-B, analytic gradient, a negligible ridge 1e-6 so a variant that wins every battle still
gets a finite rating — flagged). Interval: bootstrap over **items** (the battles of one item,
e.g. several raters' votes or every pair of arms on it, are one cluster and are resampled together;
without item ids every battle is its own cluster), 2.5/97.5 percentiles; the resampled fits solve
the same penalised likelihood with batched Newton steps (vectorised over resamples; checked
against ``minimize`` in the tests).
A variant is identified only when its battles connect it to the anchor; one that is not (no
battles, or battles only inside a group cut off from the anchor) has no rating, interval or rank
("not identified"), and a resample in which a variant is cut off leaves that resample out of its
interval.
Rank = 1 + number of identified variants whose lower bound is above this one's upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ._base import Result, make_rng
from .bootstrap import percentile_interval, resample_counts

SCALE = 400.0
ANCHOR_RATING = 1000.0
RIDGE = 1e-6
LN10 = math.log(10)


def win_matrix(i, j, outcome, k: int, counts=None) -> np.ndarray:
    """(k, k) matrix of wins of row over column; a tie adds 1/2 to both."""
    i, j = np.asarray(i, dtype=int), np.asarray(j, dtype=int)
    y = np.asarray(outcome, dtype=float)
    w = np.ones_like(y) if counts is None else np.asarray(counts, dtype=float)
    wins = np.zeros((k, k))
    np.add.at(wins, (i, j), w * y)
    np.add.at(wins, (j, i), w * (1 - y))
    return wins


def _fit(wins: np.ndarray, anchor: int, start: np.ndarray | None = None) -> np.ndarray:
    """Natural-log strengths theta (anchor fixed at 0) maximising the BT likelihood."""
    k = wins.shape[0]
    free = np.array([m for m in range(k) if m != anchor])
    total = wins + wins.T

    def nll(x):
        theta = np.zeros(k)
        theta[free] = x
        diff = theta[:, None] - theta[None, :]
        # -sum wins_ij * log sigmoid(theta_i - theta_j)
        loss = np.sum(wins * np.logaddexp(0.0, -diff)) + RIDGE * np.sum(x * x)
        p = 1 / (1 + np.exp(-diff))
        grad_full = -(wins * (1 - p)).sum(axis=1) + (wins.T * (1 - p.T)).sum(axis=1)
        return loss, grad_full[free] + 2 * RIDGE * x

    x0 = np.zeros(k - 1) if start is None else start[free]
    if not np.any(total):
        return np.zeros(k)
    res = minimize(nll, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-9, "maxiter": 500})
    theta = np.zeros(k)
    theta[free] = res.x
    return theta


def _newton_batch(wins: np.ndarray, anchor: int, start: np.ndarray, iters: int = 60) -> np.ndarray:
    """The same MLE for a stack of win matrices (R, k, k) at once: damped Newton steps."""
    r, k, _ = wins.shape
    free = np.array([m for m in range(k) if m != anchor])
    total = wins + np.swapaxes(wins, 1, 2)
    theta = np.tile(start, (r, 1))
    for _ in range(iters):
        diff = theta[:, :, None] - theta[:, None, :]
        p = 1 / (1 + np.exp(-diff))
        grad = (total * p - wins).sum(axis=2) + 2 * RIDGE * theta
        curv = total * p * (1 - p)
        hess = -curv + np.eye(k) * (curv.sum(axis=2)[:, :, None] + 2 * RIDGE)
        g, h = grad[:, free], hess[:, free][:, :, free]
        step = np.linalg.solve(h, g[..., None])[..., 0]
        step = np.clip(step, -2.0, 2.0)
        theta[:, free] -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta


def to_ratings(theta: np.ndarray, anchor: int) -> np.ndarray:
    """Natural-log strengths -> Elo-scale ratings with the anchor at exactly 1000."""
    return ANCHOR_RATING + SCALE * (theta - theta[anchor]) / LN10


def connected_to(total: np.ndarray, anchor: int) -> np.ndarray:
    """(..., k) bool: which variants the battle graph ``total`` (..., k, k) links to the anchor."""
    k = total.shape[-1]
    linked = total > 0
    reach = np.zeros(total.shape[:-1], dtype=bool)
    reach[..., anchor] = True
    for _ in range(k - 1):
        grown = reach | np.any(linked & reach[..., :, None], axis=-2)
        if np.array_equal(grown, reach):
            break
        reach = grown
    return reach


@dataclass
class BTRow(Result):
    name: str
    rating: float | None  # None: not identified
    ci: tuple[float, float] | None
    rank: int | None
    battles: int
    wins: float
    identified: bool = True


@dataclass
class BTResult(Result):
    rows: list[BTRow]
    anchor: str
    n_battles: int
    n_resamples: int
    n_clusters: int = 0
    ci_method: str = "bootstrap over items, percentile"
    scale: str = "Elo base 10: P(i beats j) = 1/(1 + 10^((R_j - R_i)/400)); anchor = 1000"
    notes: list[str] = field(default_factory=list)


def bradley_terry(i, j, outcome, names: list[str], *, anchor: str, clusters=None,
                  n_resamples: int = 500, confidence: float = 0.95, rng=None) -> BTResult:
    """Ratings, bootstrap intervals and ranks from battles (i vs j, outcome 1 = i won, 0.5 tie).

    ``clusters``: one label per battle (its item); the bootstrap resamples whole clusters.
    """
    k = len(names)
    if anchor not in names:
        raise ValueError(f"anchor {anchor!r} is not one of the variants")
    a = names.index(anchor)
    i, j = np.asarray(i, dtype=int), np.asarray(j, dtype=int)
    y = np.asarray(outcome, dtype=float)
    if np.any(i == j):
        raise ValueError("a battle needs two different variants")
    n = int(y.size)
    wins = win_matrix(i, j, y, k)
    theta = _fit(wins, a)
    ratings = to_ratings(theta, a)
    notes = []
    total = wins + wins.T
    battles = total.sum(axis=1)
    identified = connected_to(total, a)
    for m in range(k):
        if battles[m] == 0:
            notes.append(f"{names[m]} has no battles: its rating is not identified")
        elif not identified[m]:
            notes.append(f"{names[m]} has no battles linking it to {anchor}: its rating is not "
                         "identified")
        elif wins[m].sum() in (0, battles[m]):
            notes.append(f"{names[m]} won or lost every battle: its rating is bounded only by "
                         "the ridge and is not meaningful")
    boot = np.full((n_resamples, k), np.nan)
    labels = np.arange(n) if clusters is None else np.asarray(clusters).reshape(-1)
    if labels.size != n:
        raise ValueError("clusters needs one label per battle")
    n_clusters = 0
    if n:
        _, cluster = np.unique(labels, return_inverse=True)
        n_clusters = int(cluster.max() + 1)
        per_cluster = np.zeros((n_clusters, k, k))  # each item's own win matrix
        np.add.at(per_cluster, (cluster, i, j), y)
        np.add.at(per_cluster, (cluster, j, i), 1 - y)
        flat, gen = per_cluster.reshape(n_clusters, k * k), make_rng(rng)
        step = max(1, 4_000_000 // n_clusters)  # bounded memory at 50k items
        stack = np.concatenate([
            resample_counts(n_clusters, min(step, n_resamples - start), gen) @ flat
            for start in range(0, n_resamples, step)]).reshape(n_resamples, k, k)
        fitted = _newton_batch(stack, a, theta)
        boot = ANCHOR_RATING + SCALE * (fitted - fitted[:, [a]]) / LN10
        boot[~connected_to(stack + np.swapaxes(stack, 1, 2), a)] = np.nan
    intervals = [percentile_interval(boot[:, m], confidence) if identified[m] else None
                 for m in range(k)]
    rows = []
    for m in range(k):
        if not identified[m]:
            rows.append(BTRow(name=names[m], rating=None, ci=None, rank=None,
                              battles=int(battles[m]), wins=float(wins[m].sum()),
                              identified=False))
            continue
        above = sum(1 for o in range(k) if o != m and identified[o]
                    and intervals[o][0] > intervals[m][1])
        rows.append(BTRow(name=names[m], rating=float(ratings[m]), ci=intervals[m], rank=1 + above,
                          battles=int(battles[m]), wins=float(wins[m].sum())))
    rows.sort(key=lambda r: (not r.identified, r.rank or 0, -(r.rating or 0.0)))
    return BTResult(rows=rows, anchor=anchor, n_battles=n, n_resamples=n_resamples,
                    n_clusters=n_clusters,
                    ci_method=("bootstrap over items, percentile" if clusters is not None
                               else "bootstrap over battles, percentile"), notes=notes)
