"""What the Results screen shows of a report (``workbench.experiments.report``), as Rich text and
table rows.

Every number comes from the report dict and the CLI's own helpers (``arm_rows``,
``comparison_lines``, ``verdict_rows``), so `workbench report` and this screen agree.
"""

from __future__ import annotations

from .widgets.safe import Text


STATUS_STYLE = {"pass": "bold green", "fail": "bold red", "not enough data": "bold yellow"}
DECISION_STYLE = {"promote B": "bold black on green", "keep A": "bold white on dark_red",
                  "not enough data": "bold black on yellow"}
ARM_STYLE = {"A": "bold cyan", "B": "bold magenta"}


def verdict_banner(report: dict, title: str = "Verdict") -> Text:
    """'Verdict: PROMOTE B  every criterion passed' and the p-value mode on a second line."""
    verdict = report.get("verdict")
    text = Text()
    if not verdict:
        text.append(" No verdict ", style="bold reverse")
        text.append("  the experiment has no candidate arm to compare with A")
        return text
    from workbench.experiments.verdict_text import why_groups

    decision = verdict["decision"]
    text.append(f" {title}: {decision.upper()} ",
                style=DECISION_STYLE.get(decision, "bold reverse"))
    why = why_groups(verdict.get("criteria", []))
    if not why:
        text.append(f"  {verdict['reason']}")
    for status, detail, names in why:  # why each criterion that did not pass did not
        text.append("\n• ", style="dim")
        text.append(status, style=STATUS_STYLE.get(status, "bold"))
        text.append(f": {detail} ({', '.join(names)})")
    seq = report.get("sequential") or {}
    label, message = seq.get("label", "-"), seq.get("message") or ""
    text.append(f"\np-values: {label}", style="bold")
    text.append(f"{message.removeprefix(label)} · " if message.startswith(label) else
                f" ({message}) · ", style="dim")
    text.append(f"{seq.get('n', '-')} of {seq.get('n_planned', '-')} planned items", style="dim")
    return text


def summary_line(report: dict, price: float | None, winner: str | None = None) -> Text:
    """Mode, status, winner, runs and items of the experiment on one line."""
    e = report["experiment"]
    text = Text(f"{e['mode']} · {e['status']}", style="bold")
    if e["status"] == "completed":
        text.append(f" (winner {winner or 'none'})", style="bold")
    runs = f"{e.get('runs_stored', e['runs'])}/{e['runs_planned']}" if "runs_planned" in e \
        else f"{e['runs']}"
    text.append(f" · runs {runs} · items {e['items_done']}/{e['items_planned']}")
    text.append(" · price " + (f"{price:g}/1k tokens" if price is not None else "not set ($)"),
                style="dim")
    return text


def criteria_columns(report: dict) -> list[str]:
    """Status first (the column that matters most stays visible on a narrow terminal)."""
    labels = {c.get("p_label") for c in (report.get("verdict") or {}).get("criteria", [])} - {None}
    p = f"p ({labels.pop()})" if len(labels) == 1 else "p"
    return ["status", "criterion", "value", "interval", p, "why", "threshold"]


def criteria_rows(report: dict) -> list[list]:
    """One row per criterion: coloured status, then the CLI's cells (value, interval, p...)."""
    from workbench.experiments.report import verdict_rows

    rows = []
    single_label = criteria_columns(report)[4] != "p"
    for name, value, interval, threshold, p, status, why in verdict_rows(report, detail=True)[1:]:
        if single_label and p != "-":
            p = p.split(" (")[0]
        rows.append([Text(status, style=STATUS_STYLE.get(status, "")), name, value, interval, p,
                     why, threshold])
    return rows


def arm_columns_and_rows(report: dict) -> tuple[list[Text], list[list[str]]]:
    """The CLI's per-variant table turned on its side: one row per metric, one column per arm."""
    from workbench.experiments.report import arm_rows

    table = arm_rows(report)
    header, arms = table[0], table[1:]
    columns = [Text("")] + [Text(f"{row[0]} · {row[1]}", style=ARM_STYLE.get(row[0], "bold"))
                            for row in arms]
    rows = [[header[i]] + [row[i] for row in arms] for i in range(2, len(header))]
    return columns, rows


def comparisons_text(report: dict) -> Text:
    """The ranking of 3+ arms, win/tie/loss, agreement, position bias, the paired comparisons and
    the engines that answered, one bullet each."""
    from workbench.experiments.report import (comparison_lines, engine_lines,
                                              exploratory_lines, ranking_caption, ranking_rows)

    text = Text()
    ranking = ranking_rows(report)
    if ranking:
        text.append(ranking_caption(report) + "\n", style="bold")
        for rank, arm, variant, rating, interval, battles, _ in ranking[1:]:
            if rank == "-":  # no battles linking it to the anchor: no rating, no rank
                text.append(f"  {arm} {variant}: {rating} ({battles} battles)\n", style="yellow")
            else:
                text.append(f"  {rank}. {arm} {variant}: {rating} {interval} ({battles} battles)\n")
    lines = comparison_lines(report)
    if not any("blind votes" in line for line in lines):
        lines.append("blind votes: none yet (rate pairs on the Rate screen, key 4)")
    for line in lines:
        style = ""
        if "gate fail" in line:
            style = "yellow"
        elif "blind votes" in line:
            style = "bold"
        text.append("• ", style="dim")
        text.append(line + "\n", style=style)
    for line in exploratory_lines(report):
        text.append("• ", style="dim")
        text.append(line + "\n", style="dim")
    for line in engine_lines(report):
        text.append("• ", style="dim")
        text.append(f"engine {line}\n", style="dim")
    for note in report.get("notes") or []:
        text.append(f"note: {note}\n", style="italic dim")
    return text


def groups_intro(result: dict | None, grouping: str) -> Text:
    """The heading of the per-group pane: what is grouped and why its verdicts are exploratory."""
    if result is None:
        return Text(f"Computing the results per {grouping}…", style="italic")
    text = Text(f"Per-{result['by']} results: {len(result['groups'])} group(s)\n", style="bold")
    text.append(result["note"], style="dim")
    if not result["groups"]:
        text.append("\nNo group has runs yet.")
    return text


def group_banner(result: dict, group: dict) -> Text:
    """A group's title, its exploratory verdict (or why it has none) and its Holm lines."""
    from workbench.experiments.breakdown import VERDICT_TITLE, group_title, holm_lines

    text = Text(group_title(result, group) + "\n", style="bold underline")
    if group["too_few"]:
        text.append(f" {VERDICT_TITLE}: {group['too_few']} ", style="bold reverse")
    else:
        text.append_text(verdict_banner(group["report"], VERDICT_TITLE))
    for line in holm_lines(group):
        text.append("\n• ", style="dim")
        text.append(line, style="dim")
    return text
