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


def comparison_lines(report: dict) -> list[str]:
    """One line per paired comparison of each candidate against A."""
    lines = []
    for arm, c in report["comparisons"].items():
        head = f"{arm} vs A ({c['design']})"
        if c.get("accuracy"):
            x = c["accuracy"]
            lines.append(f"{head} accuracy: {x['diff'] * 100:+.1f} pt {fmt_interval(x['ci'], 100)} "
                         f"p={fmt(x['p_value'], '.3g')} ({x['test']})")
        if c.get("latency"):
            x = c["latency"]
            lines.append(f"{head} latency: ratio {fmt(x.get('ratio'), '.3f')} "
                         f"{fmt_interval(x.get('ratio_ci'), 1, '.3f')}; p95 "
                         f"{fmt(x.get('p95_diff_ms'), '+.0f')} ms {fmt_interval(x.get('p95_diff_ci'), 1, '.0f')}")
        if c.get("error_rate"):
            x = c["error_rate"]
            lines.append(f"{head} error rate: {x['diff'] * 100:+.1f} pt {fmt_interval(x['ci'], 100)} "
                         f"p={fmt(x.get('p_value'), '.3g')}")
        if c.get("preference"):
            x = c["preference"]
            lines.append(f"{head} blind votes: B {x['wins_b']} / tie {x['ties']} / A {x['wins_a']} "
                         f"({x['skips']} skipped), W={fmt(x['win_rate'], '.3f')} "
                         f"{fmt_interval(x['win_rate_ci'], 1, '.3f')}, tie rate {fmt(x['tie_rate'], '.0%')}, "
                         f"p={fmt(x['p_value'], '.3g')} ({x['p_value_test']})")
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
                     f"({fmt(bias['left_share'], '.0%')}), p={fmt(bias['p_value'], '.3g')}")
    return lines


def ranking_rows(report: dict) -> list[list[str]] | None:
    """The Bradley-Terry ranking of 3+ arms (header first), or None with fewer arms."""
    bt = report.get("bradley_terry")
    if not bt:
        return None
    names = {a["arm"]: a["variant"] for a in report["arms"]}
    rows = [["rank", "arm", "variant", "rating", "95% interval", "battles", "wins"]]
    for r in bt["rows"]:
        rows.append([str(r["rank"]), r["name"], names.get(r["name"], "-"), f"{r['rating']:.0f}",
                     fmt_interval(r["ci"], 1, ".0f"), str(r["battles"]), f"{r['wins']:g}"])
    return rows


def ranking_caption(report: dict) -> str:
    bt = report["bradley_terry"]
    return (f"Ranking of {len(bt['rows'])} arms (Bradley-Terry from {bt['source']}, "
            f"{bt['n_battles']} battles; {bt['anchor']} = 1000)")


def verdict_rows(report: dict) -> list[list[str]]:
    rows = [["criterion", "value", "interval", "threshold", "p", "status"]]
    verdict = report.get("verdict") or {}
    for c in verdict.get("criteria", []):
        interval = c.get("interval")
        scale = 100 if c["key"] in ("accuracy", "safety", "error_rate", "primary") else 1
        spec = {"expert_rating": ".2f", "latency_p95": ".0f"}.get(c["key"], ".1f")
        p = "-" if c.get("p_value") is None else f"{c['p_value']:.3g} ({c.get('p_label')})"
        rows.append([c["name"], c.get("value_text") or "-", fmt_interval(interval, scale, spec),
                     c["threshold"], p, c["status"]])
    return rows


def _header(report: dict) -> str:
    e = report["experiment"]
    return (f"Experiment {e['id']} {e['name']!r}: {e['mode']}, {e['status']}, "
            f"runs {e.get('runs_stored', e['runs'])}/{e.get('runs_planned', '?')}, "
            f"items {e['items_done']}/{e['items_planned']}")


def render_text(report: dict, *, summary_only: bool = False) -> str:
    """The report for a terminal."""
    lines = [_header(report), ""] + aligned(arm_rows(report))
    if summary_only:
        return "\n".join(lines)
    lines += [""] + engine_lines(report) + [""] + comparison_lines(report)
    ranking = ranking_rows(report)
    if ranking:
        lines += ["", ranking_caption(report)] + aligned(ranking)
        lines += [f"note: {n}" for n in report["bradley_terry"].get("notes", [])]
    verdict = report.get("verdict")
    if verdict:
        seq = report["sequential"]
        lines += ["", f"Verdict: {verdict['decision'].upper()} - {verdict['reason']}",
                  f"(p-values: {seq.get('label')}; {seq.get('n')} of {seq.get('n_planned')} planned items)"]
        lines += aligned(verdict_rows(report))
    lines += [f"note: {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
    return out


def render_markdown(report: dict) -> str:
    """The report as Markdown (for a pull request or an incident review)."""
    lines = [f"# {_header(report)}", "", "## Variants", ""] + _md_table(arm_rows(report))
    lines += ["", "## Engines", ""] + [f"- {line}" for line in engine_lines(report)]
    lines += ["", "## Comparisons", ""] + [f"- {line}" for line in comparison_lines(report)]
    ranking = ranking_rows(report)
    if ranking:
        lines += ["", "## Ranking", "", ranking_caption(report), ""] + _md_table(ranking)
    verdict = report.get("verdict")
    if verdict:
        lines += ["", f"## Verdict: **{verdict['decision']}**", "", verdict["reason"], ""]
        lines += _md_table(verdict_rows(report))
    if report.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"
