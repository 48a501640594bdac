"""Power and sample size (two-sided alpha, default 0.05; power 0.80).

- paired mean differences: n = (z_{1-a/2} + z_{1-b})^2 sigma_d^2 / delta^2, and the MDE at a given n;
- preferences: EXACT power of the two-sided sign test (``binomtest``), which is a saw-tooth in n,
  with the normal approximation alongside (the approximation is what the rough guide quotes:
  60% -> 194 decisive votes, 55% -> 783);
- paired pass rates (McNemar): exact power of the exact McNemar test from the discordant rate psi
  and the difference delta, with Connor's (1987) approximation alongside (5 points, 20% discordant
  -> 626 items by Connor; the exact test needs about 5% more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.stats import binom, norm

from ._base import Result


def _z(alpha: float, power: float) -> tuple[float, float]:
    return float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))


def paired_n(sd_diff: float, delta: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Items needed to detect a mean paired difference ``delta`` given the SD of differences."""
    if delta == 0 or sd_diff < 0:
        raise ValueError("delta must be non-zero and sd_diff non-negative")
    za, zb = _z(alpha, power)
    return max(2, math.ceil((za + zb) ** 2 * sd_diff ** 2 / delta ** 2))


def paired_mde(sd_diff: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Minimum detectable mean paired difference with n items."""
    if n <= 0:
        raise ValueError("n must be positive")
    za, zb = _z(alpha, power)
    return (za + zb) * sd_diff / math.sqrt(n)


def sign_test_critical(n, alpha: float = 0.05) -> np.ndarray:
    """Largest k such that the two-sided sign test rejects (p < alpha) when min(w, l) <= k; -1: never."""
    n = np.asarray(n)
    # start from the normal approximation, then step until cdf(k) < alpha/2 <= cdf(k + 1)
    k = np.floor(n / 2 - norm.ppf(1 - alpha / 2) * np.sqrt(n) / 2).astype(int)
    k = np.clip(k, -1, n)
    for _ in range(64):
        down = (k >= 0) & (binom.cdf(k, n, 0.5) >= alpha / 2)
        up = ~down & (binom.cdf(k + 1, n, 0.5) < alpha / 2)
        if not (down.any() or up.any()):
            break
        k = k - down + up
    return k


def sign_test_power(n, p_true: float, *, alpha: float = 0.05):
    """Exact power of the two-sided sign test with n decisive votes when P(B preferred) = p_true."""
    n_arr = np.asarray(n)
    c = sign_test_critical(n_arr, alpha)
    power = binom.cdf(c, n_arr, p_true) + binom.sf(n_arr - c - 1, n_arr, p_true)
    power = np.where(c >= 0, power, 0.0)
    return float(power) if np.ndim(power) == 0 else power


@dataclass
class SampleSize(Result):
    n: int  # smallest n whose exact power reaches the target
    n_safe: int | None  # from here on the exact power never dips below the target (saw-tooth)
    n_normal: int  # normal approximation (what the rough guide in STATISTICS.md quotes)
    power_at_n: float
    method: str
    unit: str


def sign_test_n(p_true: float, *, alpha: float = 0.05, power: float = 0.8) -> SampleSize:
    """Decisive votes needed for the sign test to detect a true preference p_true (exact).

    ``n`` is the first n whose exact power reaches the target; ``n_safe`` the n from which it never
    falls below the target again (the exact power is a saw-tooth in n).
    """
    if not 0 < p_true < 1 or p_true == 0.5:
        raise ValueError("p_true must be in (0, 1) and not 0.5")
    za, zb = _z(alpha, power)
    n_normal = math.ceil(((za * 0.5 + zb * math.sqrt(p_true * (1 - p_true))) / (p_true - 0.5)) ** 2)
    n_max = 2 * n_normal + 200
    ns = np.arange(1, n_max + 1)
    pw = sign_test_power(ns, p_true, alpha=alpha)
    above = pw >= power
    if not above.any():
        raise ValueError("power not reached within the scanned range")
    n_first = int(ns[np.argmax(above)])
    below = np.flatnonzero(~above)
    n_safe = int(ns[below[-1] + 1]) if below.size and below[-1] + 1 < ns.size else n_first
    return SampleSize(n=n_first, n_safe=n_safe, n_normal=n_normal,
                      power_at_n=float(pw[n_first - 1]), method="exact binomial (sign test)",
                      unit="decisive votes")


def mcnemar_power_exact(n: int, discordant_rate: float, delta: float, *,
                        alpha: float = 0.05) -> float:
    """Exact power of the exact McNemar test with n items, discordant rate psi, difference delta."""
    if not 0 < discordant_rate <= 1 or abs(delta) > discordant_rate:
        raise ValueError("need 0 < discordant_rate <= 1 and |delta| <= discordant_rate")
    p_b = (discordant_rate + delta) / (2 * discordant_rate)
    m = np.arange(n + 1)
    conditional = _conditional_power(n, p_b, alpha)
    return float(np.sum(binom.pmf(m, n, discordant_rate) * conditional[: n + 1]))


@lru_cache(maxsize=32)
def _conditional_power_table(n_max: int, p_b: float, alpha: float) -> np.ndarray:
    m = np.arange(n_max + 1)
    return sign_test_power(np.maximum(m, 1), p_b, alpha=alpha) * (m > 0)


def _conditional_power(n: int, p_b: float, alpha: float) -> np.ndarray:
    """Sign-test power for 0..n discordant pairs (cached in blocks of 4096)."""
    size = 4096 * (n // 4096 + 1)
    return _conditional_power_table(size, round(p_b, 12), alpha)


def mcnemar_n(discordant_rate: float, delta: float, *, alpha: float = 0.05,
              power: float = 0.8) -> SampleSize:
    """Items needed for the exact McNemar test to detect a paired pass-rate difference delta.

    ``n`` is the first n whose exact power reaches the target (searched from Connor's normal
    approximation ``n_normal``, which is what the rough guide quotes).
    """
    if not 0 < discordant_rate <= 1 or not 0 < abs(delta) <= discordant_rate:
        raise ValueError("need 0 < |delta| <= discordant_rate <= 1")
    za, zb = _z(alpha, power)
    psi = discordant_rate
    n_normal = math.ceil((za * math.sqrt(psi) + zb * math.sqrt(psi - delta ** 2)) ** 2 / delta ** 2)
    lo, hi = max(2, n_normal // 2), 3 * n_normal + 50
    step = max(1, n_normal // 40)
    n_first = n_normal
    for n in range(lo, hi, step):
        if mcnemar_power_exact(n, psi, delta, alpha=alpha) >= power:
            for k in range(max(lo, n - step + 1), n + 1):
                if mcnemar_power_exact(k, psi, delta, alpha=alpha) >= power:
                    n_first = k
                    break
            break
    return SampleSize(n=n_first, n_safe=None, n_normal=n_normal,
                      power_at_n=mcnemar_power_exact(n_first, psi, delta, alpha=alpha),
                      method="exact McNemar power (binomial mixture); Connor (1987) approximation",
                      unit="items")
