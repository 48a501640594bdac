"""Per-variant summary of an experiment's runs: counts, latency percentiles, automatic scores."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .replay import replay_size
from .store import Store


@dataclass
class ArmSummary:
    arm: str
    variant: str
    model: str
    n: int
    ok: int
    errors: int
    fallbacks: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    ttft_p50_ms: float | None
    decode_tps: float | None
    prompt_tokens: int
    completion_tokens: int
    severity_scored: int
    severity_correct: int
    json_checked: int
    json_valid: int
    secrets_flagged: int

    @property
    def severity_accuracy(self) -> float | None:
        return self.severity_correct / self.severity_scored if self.severity_scored else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.n if self.n else None

    def to_dict(self) -> dict:
        return {**asdict(self), "severity_accuracy": self.severity_accuracy,
                "error_rate": self.error_rate}


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if values.size else None


def arm_summaries(store: Store, exp_id: int) -> list[ArmSummary]:
    """One summary per arm, computed in SQL plus numpy (fast for 100k runs)."""
    exp = store.get_experiment(exp_id)
    out = []
    for arm, variant_id in sorted(exp.arms.items()):
        variant = store.get_variant(variant_id)
        agg = store.rows(
            """SELECT count(*) n, sum(error IS NULL) ok, sum(error IS NOT NULL) errors,
                      sum(fallback) fallbacks, coalesce(sum(prompt_tokens), 0) pt,
                      coalesce(sum(completion_tokens), 0) ct,
                      sum(severity_ok IS NOT NULL) sev_n, coalesce(sum(severity_ok), 0) sev_ok,
                      sum(json_valid IS NOT NULL) json_n, coalesce(sum(json_valid), 0) json_ok,
                      sum(secrets > 0) secrets,
                      sum(CASE WHEN error IS NULL THEN completion_tokens END) decode_tokens
               FROM runs WHERE experiment_id = ? AND arm = ?""", [exp_id, arm])[0]
        timing = np.array(store.db.execute(
            "SELECT latency_ms, ttft_ms, decode_tps FROM runs "
            "WHERE experiment_id = ? AND arm = ? AND error IS NULL", [exp_id, arm]).fetchall(),
            dtype=float).reshape(-1, 3)
        latency, ttft, tps = timing[:, 0], timing[:, 1], timing[:, 2]
        tps = tps[~np.isnan(tps)]
        out.append(ArmSummary(
            arm=arm, variant=variant.name, model=variant.model_id, n=agg["n"] or 0,
            ok=agg["ok"] or 0, errors=agg["errors"] or 0, fallbacks=agg["fallbacks"] or 0,
            latency_p50_ms=_pct(latency, 50), latency_p95_ms=_pct(latency, 95),
            latency_p99_ms=_pct(latency, 99), ttft_p50_ms=_pct(ttft[~np.isnan(ttft)], 50),
            decode_tps=float(np.median(tps)) if tps.size else None,
            prompt_tokens=agg["pt"], completion_tokens=agg["ct"],
            severity_scored=agg["sev_n"] or 0, severity_correct=agg["sev_ok"],
            json_checked=agg["json_n"] or 0, json_valid=agg["json_ok"],
            secrets_flagged=agg["secrets"] or 0))
    return out


def experiment_report(store: Store, exp_id: int) -> dict:
    """Everything ``workbench report`` prints, as plain data."""
    exp = store.get_experiment(exp_id)
    stored, planned = replay_size(store, exp)
    dataset = store.get_dataset(exp.dataset_id)
    return {
        "experiment": {"id": exp.id, "name": exp.name, "mode": exp.mode, "status": exp.status,
                       "dataset": dataset["name"], "weight_b": exp.weight_b,
                       "canary_users": exp.canary_users, "winner": exp.winner,
                       "runs_stored": stored, "runs_planned": planned},
        "arms": [s.to_dict() for s in arm_summaries(store, exp_id)],
    }


def _fmt(value, spec: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_report(report: dict) -> str:
    """The report as an aligned plain-text table."""
    e = report["experiment"]
    lines = [f"Experiment {e['id']} {e['name']!r}: {e['mode']} on {e['dataset']}, status {e['status']}, "
             f"runs {e['runs_stored']}/{e['runs_planned']}"]
    header = ("arm", "variant", "n", "errors", "fallback", "p50 ms", "p95 ms", "p99 ms",
              "TTFT p50", "tok/s", "severity acc", "secrets")
    rows = [header]
    for a in report["arms"]:
        acc = a["severity_accuracy"]
        rows.append((a["arm"], a["variant"], str(a["n"]), str(a["errors"]), str(a["fallbacks"]),
                     _fmt(a["latency_p50_ms"]), _fmt(a["latency_p95_ms"]), _fmt(a["latency_p99_ms"]),
                     _fmt(a["ttft_p50_ms"]), _fmt(a["decode_tps"], ".1f"),
                     "-" if acc is None else f"{acc:.1%} ({a['severity_correct']}/{a['severity_scored']})",
                     str(a["secrets_flagged"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return "\n".join(lines)
