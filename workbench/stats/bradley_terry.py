"""Three or more variants: Bradley-Terry ratings from pairwise battles.

P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)): ratings are on the base-10 Elo scale of FastChat,
R = 400 * theta10 + 1000 with theta10 the base-10 log-strength, anchored so the production model
is exactly 1000. Ties count half a win for each side. MLE with ``scipy.optimize.minimize``
(L-BFGS-B, analytic gradient, a negligible ridge 1e-6 so a variant that wins every battle still
gets a finite rating — flagged). Interval: multinomial bootstrap of battles, 2.5/97.5 percentiles;
the resampled fits solve the same penalised likelihood with batched Newton steps (vectorised over
resamples; checked against ``minimize`` in the tests).
Rank = 1 + number of variants whose lower bound is above this one's upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ._base import Result, make_rng
from .bootstrap import percentile_interval

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


@dataclass
class BTRow(Result):
    name: str
    rating: float
    ci: tuple[float, float]
    rank: int
    battles: int
    wins: float


@dataclass
class BTResult(Result):
    rows: list[BTRow]
    anchor: str
    n_battles: int
    n_resamples: int
    scale: str = "Elo base 10: P(i beats j) = 1/(1 + 10^((R_j - R_i)/400)); anchor = 1000"
    notes: list[str] = field(default_factory=list)


def bradley_terry(i, j, outcome, names: list[str], *, anchor: str, n_resamples: int = 500,
                  confidence: float = 0.95, rng=None) -> BTResult:
    """Ratings, bootstrap intervals and ranks from battles (i vs j, outcome 1 = i won, 0.5 tie)."""
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
    battles = (wins + wins.T).sum(axis=1)
    for m in range(k):
        if battles[m] == 0:
            notes.append(f"{names[m]} has no battles: its rating is not identified")
        elif wins[m].sum() in (0, battles[m]):
            notes.append(f"{names[m]} won or lost every battle: its rating is bounded only by "
                         "the ridge and is not meaningful")
    boot = np.full((n_resamples, k), np.nan)
    if n:
        # multinomial over distinct (i, j, outcome) cells is the same as resampling battles
        cells, counts = np.unique(np.stack([i, j, y]), axis=1, return_counts=True)
        ci_, cj, cy = cells[0].astype(int), cells[1].astype(int), cells[2]
        draws = make_rng(rng).multinomial(n, counts / n, size=n_resamples)
        stack = np.zeros((n_resamples, k, k))
        np.add.at(stack, (slice(None), ci_, cj), draws * cy)
        np.add.at(stack, (slice(None), cj, ci_), draws * (1 - cy))
        fitted = _newton_batch(stack, a, theta)
        boot = ANCHOR_RATING + SCALE * (fitted - fitted[:, [a]]) / LN10
    intervals = [percentile_interval(boot[:, m], confidence) for m in range(k)]
    rows = []
    for m in range(k):
        above = sum(1 for o in range(k) if o != m and intervals[o][0] > intervals[m][1])
        rows.append(BTRow(name=names[m], rating=float(ratings[m]), ci=intervals[m], rank=1 + above,
                          battles=int(battles[m]), wins=float(wins[m].sum())))
    rows.sort(key=lambda r: (r.rank, -r.rating))
    return BTResult(rows=rows, anchor=anchor, n_battles=n, n_resamples=n_resamples, notes=notes)
