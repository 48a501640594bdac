"""The experiment report: ``analysis.experiment_statistics`` plus replay progress, as text or Markdown.

The CLI (`workbench report`) and the Results screen show the same numbers: both read this data.
"""

from __future__ import annotations

from .analysis import experiment_statistics
from ..formatting import aligned
from .replay import replay_size
from ..store import Store


def build_report(store: Store, exp_id: int, *, sequential: bool = False,
                 price_per_1k_tokens: float | None = None) -> dict:
    """Everything the report shows, as plain data (JSON-ready)."""
    stats = experiment_statistics(store, exp_id, sequential=sequential,
                                  price_per_1k_tokens=price_per_1k_tokens)
    stored, planned = replay_size(store, store.get_experiment(exp_id))
    stats["experiment"].update(runs_stored=stored, runs_planned=planned)
    return stats


def fmt(value, spec: str = ".0f", suffix: str = "") -> str:
    """A number for a table cell ('-' when missing)."""
    return "-" if value is None else f"{value:{spec}}{suffix}"


def fmt_interval(ci, scale: float = 1.0, spec: str = ".1f") -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "-"
    return f"[{ci[0] * scale:{spec}}, {ci[1] * scale:{spec}}]"


def arm_rows(report: dict) -> list[list[str]]:
    """The per-variant table (header first)."""
    rows = [["arm", "variant", "n", "errors", "fallbacks", "p50 ms", "p95 ms", "p99 ms", "TTFT p50",
             "tok/s", "tokens", "cost", "accuracy", "safety flags", "expert acc."]]
    for a in report["arms"]:
        acc = a["accuracy"]
        expert = a.get("expert_accuracy") or {}
        rows.append([
            a["arm"], a["variant"], str(a["n"]), str(a["errors"]), str(a["fallbacks"]),
            fmt(a["latency_ms"]["p50"]), fmt(a["latency_ms"]["p95"]), fmt(a["latency_ms"]["p99"]),
            fmt(a["ttft_p50_ms"]), fmt(a["decode_tps"], ".1f"), str(a["total_tokens"]),
            fmt(a["cost"], ".4f"),
            "-" if acc["rate"] is None else
            f"{acc['rate']:.1%} {fmt_interval(acc['ci'], 100, '.0f')} ({acc['correct']}/{acc['n']})",
            f"{a['safety_flags']['flagged']}/{a['safety_flags']['n']}",
            "-" if expert.get("mean") is None else f"{expert['mean']:.2f}/5 (n {expert['n_items']})",
        ])
    return rows


USAGE_SOURCES = {"stream": "streamed usage", "response": "usage of the final response",
                 "counted": "counted by llama.cpp"}


def engine_lines(report: dict) -> list[str]:
    """Which engine answered each arm, and where its token counts came from."""
    lines = []
    for a in report["arms"]:
        for e in a.get("engines") or []:
            if e["engine"] is None:  # runs stored before engines were recorded
                continue
            usage = USAGE_SOURCES.get(e["usage_source"], e["usage_source"] or "unknown")
            lines.append(f"{a['arm']} ({a.get('target') or a['variant']}): {e['engine']}; "
                         f"tokens: {usage} ({e['runs']} runs)")
    return lines


def _p(shown: dict | None, fallback_p=None, fallback_label: str = "fixed-horizon") -> str:
    """'p=0.0123 (fixed-horizon)': every p-value shown says which kind it is."""
    if shown:
        return f"p={fmt(shown.get('p_value'), '.3g')} ({shown.get('label')})"
    return f"p={fmt(fallback_p, '.3g')} ({fallback_label})"


def comparison_lines(report: dict) -> list[str]:
    """One line per paired comparison of each candidate against A.

    Intervals and p-values are the ones of the report's mode (``comparisons[arm]["shown"]``):
    fixed-horizon, or always-valid with ``--sequential``; each p-value carries its label.
    """
    lines = []
    for arm, c in report["comparisons"].items():
        head = f"{arm} vs A ({c['design']})"
        shown = c.get("shown") or {}
        if c.get("accuracy"):
            x, s = c["accuracy"], shown.get("accuracy") or {}
            lines.append(f"{head} accuracy: {x['diff'] * 100:+.1f} pt "
                         f"{fmt_interval(s.get('interval', x['ci']), 100)} "
                         f"{_p(s, x['p_value'])} ({s.get('method', x['test'])})")
        if c.get("latency"):
            x, s = c["latency"], shown.get("latency_ratio") or {}
            lines.append(f"{head} latency: ratio {fmt(x.get('ratio'), '.3f')} "
                         f"{fmt_interval(s.get('interval', x.get('ratio_ci')), 1, '.3f')} "
                         f"{_p(s, x.get('ratio_p_value'))}; p95 "
                         f"{fmt(x.get('p95_diff_ms'), '+.0f')} ms "
                         f"{fmt_interval(x.get('p95_diff_ci'), 1, '.0f')} (bootstrap, "
                         f"{'no always-valid form' if report_sequential(report) else 'fixed-horizon'})")
        if c.get("error_rate"):
            x, s = c["error_rate"], shown.get("error_rate") or {}
            lines.append(f"{head} error rate: {x['diff'] * 100:+.1f} pt "
                         f"{fmt_interval(s.get('interval', x['ci']), 100)} {_p(s, x.get('p_value'))}")
        if c.get("expert") and c["expert"].get("diff") is not None:
            x, s = c["expert"], shown.get("expert") or {}
            lines.append(f"{head} expert accuracy rating: B − A {x['diff']:+.2f} rating pts "
                         f"{fmt_interval(s.get('interval', x.get('diff_ci')), 1, '.2f')} "
                         f"{_p(s, x.get('p_value'))} over {x['n_items']} items (raters averaged "
                         "within an item)")
        if c.get("preference"):
            x, s = c["preference"], shown.get("win_rate") or {}
            score = x.get("item_score_mean")  # the tested estimand; its interval is vs 1/2
            score_ci = [v + 0.5 for v in s["interval"]] if s.get("interval") else None
            lines.append(f"{head} blind votes: B {x['wins_b']} / tie {x['ties']} / A {x['wins_a']} "
                         f"({x['skips']} skipped), W={fmt(x['win_rate'], '.3f')} "
                         f"{fmt_interval(x['win_rate_ci'], 1, '.3f')}, tie rate "
                         f"{fmt(x['tie_rate'], '.0%')}; per-item score {fmt(score, '.3f')} "
                         f"{fmt_interval(score_ci, 1, '.3f')} {_p(s, x['p_value'])} "
                         f"({s.get('method', x['p_value_test'])})")
    agreement = report.get("agreement") or {}
    for metric, a in agreement.items():
        if a:
            state = (f"gate {a['gate']}" + (f", {a['reliability']}" if a.get("reliability") else "")
                     if a["computable"] else f"not computable: {a['reason']}")
            lines.append(f"rater agreement ({metric}): Krippendorff alpha {fmt(a['alpha'], '.3f')} "
                         f"{fmt_interval(a['ci'], 1, '.3f')} over {a['n_raters']} raters - {state}")
    bias = report.get("position_bias")
    if bias:
        lines.append(f"position bias: left chosen {bias['left_chosen']}/{bias['decisive']} decisive votes "
                     f"({fmt(bias['left_share'], '.0%')}), "
                     f"{_p(None, bias.get('p_shown', bias['p_value']), bias.get('p_label', 'fixed-horizon'))}")
    return lines


def report_sequential(report: dict) -> bool:
    return bool((report.get("sequential") or {}).get("enabled"))


def exploratory_lines(report: dict) -> list[str]:
    """The exploratory p-values of each candidate, labelled, with their BH adjustment."""
    lines = []
    for arm, comparison in (report.get("comparisons") or {}).items():
        for row in comparison.get("exploratory") or []:
            if row.get("in_family", True) and row.get("p_bh") is not None:
                tail = (f"BH-adjusted {row['p_bh']:.3g}"
                        + (", discovery" if row.get("discovery") else ""))
            else:
                tail = f"not counted: {row.get('note') or 'left out of the family'}"
            lines.append(f"{arm} vs A exploratory {row['metric']}: p={row['p_value']:.3g} "
                         f"({row.get('p_label', 'fixed-horizon')}), {tail}")
    return lines


def ranking_rows(report: dict) -> list[list[str]] | None:
    """The Bradley-Terry ranking of 3+ arms (header first), or None with fewer arms."""
    bt = report.get("bradley_terry")
    if not bt:
        return None
    names = {a["arm"]: a["variant"] for a in report["arms"]}
    rows = [["rank", "arm", "variant", "rating", "95% interval", "battles", "wins"]]
    for r in bt["rows"]:
        if r.get("rating") is None:
            rows.append(["-", r["name"], names.get(r["name"], "-"), "not identified", "-",
                         str(r["battles"]), f"{r['wins']:g}"])
            continue
        rows.append([str(r["rank"]), r["name"], names.get(r["name"], "-"), f"{r['rating']:.0f}",
                     fmt_interval(r["ci"], 1, ".0f"), str(r["battles"]), f"{r['wins']:g}"])
    return rows


def ranking_caption(report: dict) -> str:
    bt = report["bradley_terry"]
    return (f"Ranking of {len(bt['rows'])} arms (Bradley-Terry from {bt['source']}, "
            f"{bt['n_battles']} battles; {bt['anchor']} = 1000; interval: "
            f"{bt.get('ci_method', 'bootstrap')})")


def verdict_rows(report: dict, *, detail: bool = False) -> list[list[str]]:
    """The criteria table (header first): intervals on each metric's own scale, every p-value
    with its label; ``detail`` adds the column that says why each status."""
    from .verdict_text import interval_text, p_text

    rows = [["criterion", "value", "interval", "threshold", "p", "status"]
            + (["why"] if detail else [])]
    verdict = report.get("verdict") or {}
    for c in verdict.get("criteria", []):
        interval = c.get("interval_text") or interval_text(c.get("interval"), c.get("unit", ""))
        rows.append([c["name"], c.get("value_text") or "-", interval, c["threshold"],
                     p_text(c.get("p_value"), c.get("p_label")), c["status"]]
                    + ([c.get("detail") or "-"] if detail else []))
    return rows


def why_lines(report: dict) -> list[str]:
    """Why the verdict's criteria that did not pass did not, grouped by reason."""
    from .verdict_text import why_lines as group

    verdict = report.get("verdict") or {}
    return verdict.get("why") or group(verdict.get("criteria", []))


def _header(report: dict) -> str:
    e = report["experiment"]
    return (f"Experiment {e['id']} {e['name']!r}: {e['mode']}, {e['status']}, "
            f"runs {e.get('runs_stored', e['runs'])}/{e.get('runs_planned', '?')}, "
            f"items {e['items_done']}/{e['items_planned']}")


def verdict_lines(report: dict, title: str = "Verdict") -> list[str]:
    """The verdict block for a terminal: decision, p-value mode, criteria table, why."""
    verdict = report.get("verdict")
    if not verdict:
        return []
    seq = report["sequential"]
    lines = [f"{title}: {verdict['decision'].upper()} - {verdict['reason']}",
             f"(p-values: {seq.get('label')}; {seq.get('n')} of {seq.get('n_planned')} "
             "planned items)"]
    lines += aligned(verdict_rows(report))
    return lines + [f"why: {line}" for line in why_lines(report)]


def render_text(report: dict, *, summary_only: bool = False, header: str | None = None,
                verdict: bool = True) -> str:
    """The report for a terminal (``header`` replaces the experiment line; ``verdict=False``
    leaves the verdict block out)."""
    lines = [header or _header(report), ""] + aligned(arm_rows(report))
    if summary_only:
        return "\n".join(lines)
    lines += [""] + engine_lines(report) + [""] + comparison_lines(report)
    ranking = ranking_rows(report)
    if ranking:
        lines += ["", ranking_caption(report)] + aligned(ranking)
        lines += [f"note: {n}" for n in report["bradley_terry"].get("notes", [])]
    lines += exploratory_lines(report)
    if verdict and report.get("verdict"):
        lines += [""] + verdict_lines(report)
    lines += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
    return out


def render_markdown(report: dict, *, header: str | None = None, level: int = 1,
                    verdict_title: str = "Verdict") -> str:
    """The report as Markdown (for a pull request or an incident review); ``level`` is the
    heading level of its title (a group of ``breakdown`` is one level down)."""
    h, hh = "#" * level, "#" * (level + 1)
    lines = [f"{h} {header or _header(report)}", "", f"{hh} Variants", ""]
    lines += _md_table(arm_rows(report))
    lines += ["", f"{hh} Engines", ""] + [f"- {line}" for line in engine_lines(report)]
    lines += ["", f"{hh} Comparisons", ""] + [f"- {line}" for line in comparison_lines(report)
                                              + exploratory_lines(report)]
    ranking = ranking_rows(report)
    if ranking:
        lines += ["", f"{hh} Ranking", "", ranking_caption(report), ""] + _md_table(ranking)
    verdict = report.get("verdict")
    if verdict:
        seq = report["sequential"]
        lines += ["", f"{hh} {verdict_title}: **{verdict['decision']}**", "", verdict["reason"], "",
                  f"p-values: {seq.get('label')}; {seq.get('n')} of {seq.get('n_planned')} "
                  "planned items", ""]
        lines += _md_table(verdict_rows(report, detail=True))
        why = why_lines(report)
        if why:
            lines += ["", "Why:", ""] + [f"- {line}" for line in why]
    if report.get("notes"):
        lines += ["", f"{hh} Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"
