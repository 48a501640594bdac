"""A staged canary in words: the lines and the health-check table the CLI and the UI show."""

from __future__ import annotations

from .canary import CanaryPlan

SPARK = " ▁▂▃▄▅▆▇█"
CHECK_COLUMNS = ("after", "stage", "B runs", "B errors", "B p95", "B unsafe", "health")


def _pct(value) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _criterion(c: dict, unit: str) -> str:
    if c["value"] is None:
        return "-"
    shown = f"{c['value']:.0f} ms" if unit == "ms" else _pct(c["value"])
    return f"{shown}{' !' if c['breached'] else ''}"


def state(plan: CanaryPlan) -> str:
    """'rolled back', 'reached 100%', 'at 25%' (with '(replay not finished)' when it is not)."""
    if plan.rolled_back:
        return "rolled back"
    if plan.finished and plan.stage_pct == 100:
        return "reached 100%"
    return f"at {plan.stage_pct:g}%" + ("" if plan.finished else " (replay not finished)")


def sparkline(share: list[tuple[int, float]], width: int = 60) -> str:
    """B's share per block as one line of block characters (at most ``width`` of them)."""
    values = [s for _, s in share]
    if len(values) > width:  # average neighbouring blocks
        step = len(values) / width
        chunks = [values[int(i * step):int((i + 1) * step)] for i in range(width)]
        values = [sum(c) / len(c) for c in chunks if c]
    return "".join(SPARK[round(v * (len(SPARK) - 1))] for v in values)


def rollback_line(plan: CanaryPlan) -> str | None:
    """Why and when the canary rolled back, or None."""
    if not plan.rollback:
        return None
    e = plan.rollback.evidence
    why = "; ".join(f"{e['criteria'][k]['rule']} ({_criterion(e['criteria'][k], 'ms' if k.endswith('_ms') else '%').rstrip(' !')})"
                    for k in e["breached"])
    return (f"ROLLBACK after request {plan.rollback.request_no} at {e['stage_pct']:g}%: {why}; "
            f"B {e['n_b']} runs, A {e['n_a']}; B got no traffic after it")


def summary_lines(plan: CanaryPlan) -> list[str]:
    """Schedule, limits, where the rollout stands and the rollback with its evidence."""
    s = plan.schedule
    lines = [
        f"schedule: {' → '.join(f'{p:g}%' for p in s.stages)} · "
        f"{s.stage_size(plan.n_requests)} requests a stage · check every {s.check_every} once B "
        f"has {s.min_b}",
        f"limits: B error rate > {s.max_error_ratio:g}× A's · p95 > {s.max_p95_ms:g} ms · "
        f"safety failures > {s.max_safety_rate:.0%}",
        f"served {plan.served}/{plan.n_requests} requests · highest stage "
        f"{plan.highest_stage_pct:g}% · {state(plan)} · {len(plan.checks)} health check(s)",
    ]
    if (line := rollback_line(plan)) is not None:
        lines.append(line)
    return lines


def check_rows(plan: CanaryPlan) -> list[tuple]:
    """One row per health check (``CHECK_COLUMNS``); '!' marks a breached criterion."""
    rows = []
    for e in plan.events:
        if e.kind != "check":
            continue
        c = e.evidence["criteria"]
        rows.append((e.request_no, f"{e.stage_pct:g}%", e.evidence["n_b"],
                     f"{_criterion(c['error_rate'], '%')} (A {_pct(c['error_rate']['a_value'])})",
                     _criterion(c["p95_latency_ms"], "ms"),
                     _criterion(c["safety_failure_rate"], "%"),
                     "ok" if e.healthy else "ROLLBACK"))
    return rows
