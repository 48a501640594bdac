"""Per-group results: the whole report and verdict on the items of each feature or category.

``breakdown`` runs ``analysis.experiment_statistics`` on each group's items: every table and
every criterion come from the same functions as the whole-experiment report, restricted to the
group's runs and ratings (not a copy of them). The per-group verdicts are exploratory beside the
overall one: the primary criterion's p-values are Holm-adjusted across the groups (one family
per candidate arm), and a group with fewer than ``min_items`` items gets "too few items (n=…)"
instead of a verdict. Groups with no runs are left out; items without a category form the group
"(none)"; items without a feature are "incident" (the dataset default).
"""

from __future__ import annotations

from ..datasets import FEATURES
from ..stats import holm
from ..stats._base import plain
from ..store import Store
from .analysis import experiment_statistics
from .report import render_markdown, render_text, verdict_lines

GROUPINGS = ("feature", "category")
DEFAULT_FEATURE = "incident"
NO_CATEGORY = "(none)"
MIN_GROUP_ITEMS = 10
VERDICT_TITLE = "Verdict (exploratory)"


def group_of(row: dict, by: str) -> str:
    """The group an item row (with ``feature`` and ``category``) belongs to."""
    if by == "feature":
        return row.get("feature") or DEFAULT_FEATURE
    category = (row.get("category") or "").strip()
    return category or NO_CATEGORY


def item_groups(store: Store, exp_id: int, by: str = "feature") -> dict[str, list[int]]:
    """Item ids with at least one run in the experiment, per group, groups in display order:
    features as the dataset schema lists them, categories alphabetically, "(none)" last."""
    if by not in GROUPINGS:
        raise ValueError(f"group by one of {', '.join(GROUPINGS)}, not {by!r}")
    rows = store.rows("SELECT id, feature, category FROM items WHERE id IN "
                      "(SELECT item_id FROM runs WHERE experiment_id = ?) ORDER BY id", [exp_id])
    groups: dict[str, list[int]] = {}
    for row in rows:
        groups.setdefault(group_of(row, by), []).append(int(row["id"]))

    def order(name: str):
        if by == "feature":
            return (FEATURES.index(name) if name in FEATURES else len(FEATURES), name)
        return (name == NO_CATEGORY, name.casefold(), name)

    return {name: groups[name] for name in sorted(groups, key=order)}


def breakdown(store: Store, exp_id: int, by: str = "feature", *, sequential: bool = False,
              price_per_1k_tokens: float | None = None, min_items: int = MIN_GROUP_ITEMS,
              n_resamples: int = 2000, seed: int = 0) -> dict:
    """The report of each group of items (plain data, JSON-ready).

    Keys: by, min_items, note, groups (each: group, items, runs, too_few (None or the reason
    there is no verdict), primary_holm (per candidate arm: the primary criterion's p-value, its
    Holm adjustment across the groups with a verdict and whether it is significant after it),
    report (``experiment_statistics`` of the group's items)).
    """
    groups = []
    for name, ids in item_groups(store, exp_id, by).items():
        report = experiment_statistics(store, exp_id, sequential=sequential,
                                       price_per_1k_tokens=price_per_1k_tokens,
                                       n_resamples=n_resamples, seed=seed, items=ids)
        n = report["experiment"]["items_done"]
        too_few = f"too few items (n={n})" if n < min_items else None
        if too_few:
            report["verdicts"], report["verdict"] = {}, None
        groups.append({"group": name, "items": n, "runs": report["experiment"]["runs"],
                       "too_few": too_few, "primary_holm": {}, "report": report})
    with_verdict = sum(1 for g in groups if not g["too_few"])
    _holm_across(groups)
    note = (f"exploratory: the per-{by} verdicts sit beside the overall verdict, which is the one "
            f"to act on; each group's primary p-value is also Holm-adjusted across the "
            f"{with_verdict} group(s) with a verdict; groups under {min_items} items get no "
            "verdict")
    return plain({"by": by, "min_items": min_items, "note": note, "groups": groups})


def _primary(verdict: dict | None) -> dict | None:
    return next((c for c in (verdict or {}).get("criteria", []) if c["key"] == "primary"), None)


def _holm_across(groups: list[dict]) -> None:
    """Holm over the groups' primary p-values, one family per candidate arm (in place)."""
    arms = sorted({arm for g in groups for arm in g["report"]["verdicts"]})
    for arm in arms:
        rows = [(g, _primary(g["report"]["verdicts"].get(arm))) for g in groups
                if arm in g["report"]["verdicts"]]
        family = [(g, c) for g, c in rows if c is not None and c.get("p_value") is not None]
        alpha = family[0][0]["report"]["criteria"]["alpha"] if family else 0.05
        adjusted, _ = holm([c["p_value"] for _, c in family], alpha)
        for (g, c), p_holm in zip(family, adjusted):
            g["primary_holm"][arm] = {
                "metric": g["report"]["criteria"]["primary_metric"], "p_value": c["p_value"],
                "p_label": c.get("p_label"), "p_holm": float(p_holm), "family": len(family),
                "alpha": alpha, "estimate": c.get("value"),
                "significant": bool(p_holm < alpha),
                "b_better": bool(p_holm < alpha and (c.get("value") or 0) > 0)}
        for g, c in rows:
            g["primary_holm"].setdefault(arm, None)


def group_title(result: dict, group: dict) -> str:
    """'feature audit: 12 items, 24 runs'."""
    return f"{result['by']} {group['group']}: {group['items']} items, {group['runs']} runs"


def holm_lines(group: dict) -> list[str]:
    """The primary p-value of each candidate arm with its Holm adjustment across the groups."""
    lines = []
    for arm, h in group["primary_holm"].items():
        if h is None:
            lines.append(f"{arm} vs A primary: no p-value in this group (not in the Holm family)")
            continue
        state = ("significant, B better" if h["b_better"] else
                 "significant, B worse" if h["significant"] else "not significant")
        lines.append(f"{arm} vs A primary ({h['metric']}): p={h['p_value']:.3g} "
                     f"({h['p_label']}); Holm across {h['family']} group(s): "
                     f"{h['p_holm']:.3g}, {state} at alpha {h['alpha']:g}")
        verdict = group["report"]["verdicts"].get(arm) or {}
        if verdict.get("decision") == "promote B" and not h["b_better"]:
            lines.append(f"{arm}: this group's 'promote B' does not survive Holm across the groups")
    return lines


def render_breakdown_text(result: dict) -> str:
    """Every group's report for a terminal: tables, comparisons, exploratory verdict, Holm."""
    lines = [f"Per-{result['by']} results: {len(result['groups'])} group(s)",
             f"note: {result['note']}"]
    if not result["groups"]:
        lines.append("no group has runs yet")
    for g in result["groups"]:
        report = g["report"]
        lines += ["", render_text(report, header=f"== {group_title(result, g)} ==",
                                  verdict=False), ""]
        lines += ([f"{VERDICT_TITLE}: {g['too_few']}"] if g["too_few"]
                  else verdict_lines(report, VERDICT_TITLE))
        lines += holm_lines(g)
    return "\n".join(lines)


def render_breakdown_markdown(result: dict) -> str:
    """Every group's report as Markdown, one level below the overall report's headings."""
    lines = [f"# Per-{result['by']} results", "", f"_{result['note']}_", ""]
    for g in result["groups"]:
        lines.append(render_markdown(g["report"], header=group_title(result, g), level=2,
                                     verdict_title=VERDICT_TITLE))
        if g["too_few"]:
            lines += [f"**{VERDICT_TITLE}: {g['too_few']}**", ""]
        lines += [f"- {line}" for line in holm_lines(g)] + [""]
    return "\n".join(lines)
