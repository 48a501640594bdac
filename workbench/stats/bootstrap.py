"""Vectorised bootstrap helpers that stay fast at 50k items.

- ``resample_counts``: how many times each cluster (item) is drawn in each resample.
- ``quantile_bootstrap``: resampled quantiles of one array, or of two paired arrays resampled
  together, drawn from the exact multinomial bootstrap distribution but touching only the order
  statistics near the quantile (a window of +-6 binomial SDs; the chance that a resample's quantile
  falls outside it is below 1e-8), so 50k items x 2000 resamples costs
  milliseconds instead of seconds.
- ``bca_mean_interval``: BCa interval of a mean with the jackknife in closed form (used above a size
  where ``scipy.stats.bootstrap(method="BCa")`` would build an n x n jackknife).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from ._base import NAN, Interval, as_float_array

WINDOW_SDS = 6.0


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) draw counts of an ordinary bootstrap over n clusters."""
    idx = rng.integers(0, n, size=(n_resamples, n))
    rows = np.repeat(np.arange(n_resamples), n)
    return np.bincount(rows * n + idx.reshape(-1), minlength=n_resamples * n).reshape(n_resamples, n)


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> Interval:
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if not samples.size:
        return (NAN, NAN)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return (float(lo), float(hi))


def _window_counts(ranks: list[np.ndarray], lo: int, hi: int, n: int, n_resamples: int,
                   rng: np.random.Generator):
    """Multinomial bootstrap counts of the items whose rank (in any array) falls in [lo, hi),
    plus the number of draws of the remaining items below the window, per array."""
    in_win = np.zeros(n, dtype=bool)
    for r in ranks:
        in_win |= (r >= lo) & (r < hi)
    win = np.flatnonzero(in_win)
    rest = ~in_win
    # Remaining items grouped by (below / above the window) in each array.
    below = [(r < lo) & rest for r in ranks]
    codes = np.zeros(n, dtype=np.int64)
    for k, mask in enumerate(below):
        codes |= mask.astype(np.int64) << k
    n_groups = 1 << len(ranks)
    sizes = np.bincount(codes[rest], minlength=n_groups).astype(float)
    probs = np.append(sizes, win.size) / n
    totals = rng.multinomial(n, probs / probs.sum(), size=n_resamples)
    m = win.size
    draws = totals[:, -1]
    flat = rng.integers(0, m, size=int(draws.sum())) if m else np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(n_resamples), draws)
    counts = np.bincount(rows * m + flat, minlength=n_resamples * m).reshape(n_resamples, m)
    group_ids = np.arange(n_groups)
    low_draws = []
    for k, r in enumerate(ranks):
        low_groups = totals[:, :n_groups][:, (group_ids >> k) & 1 == 1].sum(axis=1)
        low_in_win = counts[:, r[win] < lo].sum(axis=1)
        low_draws.append(low_groups + low_in_win)
    col = np.full(n, -1, dtype=np.int64)
    col[win] = np.arange(m)
    return counts, col, low_draws


def quantile_bootstrap(a, b=None, *, q: float = 0.95, n_resamples: int = 2000,
                       rng: np.random.Generator, return_counts: bool = False):
    """Bootstrap distribution of the q-quantile (numpy's linear interpolation) of ``a``, and of
    ``b`` resampled jointly with ``a`` (paired) when given. Returns one array per input."""
    arrays = [as_float_array(a)] + ([as_float_array(b)] if b is not None else [])
    n = arrays[0].size
    if any(x.size != n for x in arrays):
        raise ValueError("paired arrays must have the same length")
    if n == 0:
        return tuple(np.full(n_resamples, NAN) for _ in arrays)
    h = (n - 1) * q
    j = int(math.floor(h))
    frac = h - j
    width = int(WINDOW_SDS * math.sqrt(n * q * (1 - q))) + 3
    lo, hi = max(0, j - width), min(n, j + 2 + width)
    orders = [np.argsort(x, kind="stable") for x in arrays]
    ranks = []
    for order in orders:
        r = np.empty(n, dtype=np.int64)
        r[order] = np.arange(n)
        ranks.append(r)
    counts, col, low_draws = _window_counts(ranks, lo, hi, n, n_resamples, rng)
    out = []
    for x, order, low in zip(arrays, orders, low_draws):
        sorted_x = x[order]
        cum = low[:, None] + np.cumsum(counts[:, col[order[lo:hi]]], axis=1)
        last = hi - lo - 1
        i0 = np.minimum((cum <= j).sum(axis=1), last)
        i1 = np.minimum((cum <= min(j + 1, n - 1)).sum(axis=1), last)
        v0, v1 = sorted_x[lo + i0], sorted_x[lo + i1]
        out.append(v0 + frac * (v1 - v0))
    if return_counts:
        return tuple(out), (counts, col, low_draws)
    return tuple(out)


def bca_mean_interval(x, *, n_resamples: int = 2000, confidence: float = 0.95,
                      rng: np.random.Generator) -> Interval:
    """BCa bootstrap interval of mean(x), jackknife in closed form (any n, vectorised)."""
    x = as_float_array(x)
    n = x.size
    if n < 2:
        return (NAN, NAN)
    mean = float(x.mean())
    if np.ptp(x) == 0:
        return (mean, mean)
    max_cells = 20_000_000
    boot = np.empty(n_resamples)
    step = max(1, max_cells // n)
    for start in range(0, n_resamples, step):
        stop = min(n_resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        boot[start:stop] = x[idx].mean(axis=1)
    below = np.mean(boot < mean) + 0.5 * np.mean(boot == mean)
    z0 = norm.ppf(min(max(below, 1e-12), 1 - 1e-12))
    jack = (x.sum() - x) / (n - 1)
    dev = jack.mean() - jack
    denom = 6.0 * (np.sum(dev ** 2)) ** 1.5
    acc = float(np.sum(dev ** 3) / denom) if denom > 0 else 0.0
    zs = norm.ppf([(1 - confidence) / 2, (1 + confidence) / 2])
    adj = norm.cdf(z0 + (z0 + zs) / (1 - acc * (z0 + zs)))
    lo, hi = np.percentile(boot, adj * 100)
    return (float(lo), float(hi))
