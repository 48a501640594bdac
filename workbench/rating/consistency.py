"""Per-rater consistency of blind votes: does each rater agree with the others?

FastChat screens arena voters for anomalies before fitting ratings; here each rater is compared
with the rest of the panel, leave-one-out:

- ``agreement``: of the items where the *other* raters have a majority outcome (A better, B
  better, or no preference: a tie or "both bad"), the share where this rater voted the same;
- ``baseline``: the same share for the other raters, each compared with the majority of the
  raters left after removing both of them (so an outlier cannot pull down its own yardstick),
  smoothed as (hits + 1) / (compared + 2) so that a perfectly agreeing panel is not a certainty;
- ``p_value``: exact one-sided binomial test that the rater agrees less often than the baseline;
  ``outlier`` when p < alpha on at least ``min_items`` compared items (needs three raters);
- ``left_share`` / ``side_biased``: how often a preference went to response 1, whatever the arm
  (sides are counterbalanced, so a rater who always presses 1 shows here), exact two-sided test;
- ``median_seconds``: time per vote (very fast raters deserve a look).

Skips are not votes and are left out.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass

from ..store import Store

NO_PREFERENCE = "none"


@dataclass
class RaterConsistency:
    rater: str
    votes: int  # votes other than skips
    compared: int  # items where the other raters have a majority
    agreement: float | None
    baseline: float | None
    p_value: float | None
    outlier: bool
    left_share: float | None
    left_p: float | None
    side_biased: bool
    median_seconds: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def vote_outcome(vote: dict) -> str | None:
    """The arm a vote preferred, NO_PREFERENCE for a tie or both bad, None for a skip."""
    choice = vote["choice"]
    if choice in ("tie", "both_bad"):
        return NO_PREFERENCE
    if choice == "1":
        return vote["left"]
    if choice == "2":
        return vote["right"]
    return None


def _majority(outcomes: list[str]) -> str | None:
    """The most common outcome, or None when there is none or the top is shared."""
    top = Counter(outcomes).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def _hits(table: dict[str, dict[int, str]], rater: str, panel: list[str]) -> tuple[int, int]:
    """(agreements, compared) of ``rater`` with the majority of ``panel`` (other raters)."""
    hits = compared = 0
    for item, outcome in table[rater].items():
        majority = _majority([table[q][item] for q in panel if item in table[q]])
        if majority is not None:
            compared += 1
            hits += outcome == majority
    return hits, compared


def rater_consistency(votes: list[dict], *, alpha: float = 0.05,
                      min_items: int = 5) -> list[RaterConsistency]:
    """Consistency of every rater in ``votes`` (dicts: rater, item, left, right, choice and
    optionally seconds), by rater name."""
    from scipy.stats import binomtest

    table: dict[str, dict[int, str]] = {}
    sides: dict[str, list[str]] = {}
    seconds: dict[str, list[float]] = {}
    for vote in votes:
        outcome = vote_outcome(vote)
        if outcome is None:
            continue
        table.setdefault(vote["rater"], {})[vote["item"]] = outcome
        if vote["choice"] in ("1", "2"):
            sides.setdefault(vote["rater"], []).append(vote["choice"])
        if vote.get("seconds") is not None:
            seconds.setdefault(vote["rater"], []).append(float(vote["seconds"]))
    raters = sorted(table)
    out = []
    for rater in raters:
        others = [q for q in raters if q != rater]
        hits, compared = _hits(table, rater, others)
        agreement = hits / compared if compared else None
        baseline = p_value = None
        if len(others) >= 2:
            pooled = [_hits(table, q, [o for o in others if o != q]) for q in others]
            base_hits, base_n = sum(h for h, _ in pooled), sum(n for _, n in pooled)
            if base_n:
                baseline = (base_hits + 1) / (base_n + 2)
                if compared:
                    p_value = float(binomtest(hits, compared, baseline, alternative="less").pvalue)
        chosen = sides.get(rater, [])
        left_share = chosen.count("1") / len(chosen) if chosen else None
        left_p = float(binomtest(chosen.count("1"), len(chosen), 0.5).pvalue) if chosen else None
        times = seconds.get(rater)
        out.append(RaterConsistency(
            rater=rater, votes=len(table[rater]), compared=compared, agreement=agreement,
            baseline=baseline, p_value=p_value,
            outlier=p_value is not None and p_value < alpha and compared >= min_items,
            left_share=left_share, left_p=left_p,
            side_biased=left_p is not None and left_p < alpha and len(chosen) >= min_items,
            median_seconds=statistics.median(times) if times else None))
    return out


def load_votes(store: Store, exp_id: int) -> list[dict]:
    """Every blind vote of an experiment: rater, item, left, right, choice, seconds."""
    return store.rows(
        """SELECT s.rater, r.item_id AS item, r.left_arm AS left, r.right_arm AS right, r.choice,
                  r.seconds
           FROM ratings r JOIN rating_sessions s ON s.id = r.session_id
           WHERE s.experiment_id = ? ORDER BY r.id""", [exp_id])


def consistency_for(store: Store, exp_id: int, **options) -> list[RaterConsistency]:
    """``rater_consistency`` of an experiment's stored votes."""
    return rater_consistency(load_votes(store, exp_id), **options)


def consistency_lines(rows: list[RaterConsistency]) -> list[str]:
    """One plain line per rater (for reports and the Results screen): agreement with the
    others, the outlier test and side bias; empty without raters."""
    def pct(value):
        return "-" if value is None else f"{value:.0%}"

    lines = []
    for r in rows:
        line = (f"{r.rater}: agrees with the others' majority on {pct(r.agreement)} of "
                f"{r.compared} item(s) (the others among themselves {pct(r.baseline)})")
        if r.p_value is not None:
            line += f", outlier test p = {r.p_value:.3f} (fixed-horizon)"
        if r.outlier:
            line += " - OUTLIER"
        if r.side_biased:
            line += f"; prefers response 1 in {pct(r.left_share)} of votes (side bias)"
        lines.append(line)
    return lines
