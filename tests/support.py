"""Helpers shared by the core tests (import as ``from support import ...``)."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, records: list, *, raw_lines: list[str] | None = None) -> Path:
    """Write records (dicts or raw strings) one per line."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    if raw_lines:
        lines += raw_lines
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def incident(i: int, severity: str = "SEV-1", user: str | None = None, **extra) -> dict:
    """A small, realistic incident item."""
    return {
        "id": f"inc-{i:03d}",
        "input": f"Alert {i}: api-gateway 5xx rate at 35% for 10 minutes; all regions; "
                 f"deploy 2.{i} rolled out 5 minutes earlier.",
        "reference": {"severity": severity, "root_cause": "bad deploy"},
        "user_id": user or f"u-{i % 4}",
        "category": "deploy",
        **extra,
    }


def experiment_with_runs(store, n_items: int = 10, *, name: str = "exp", outputs=None):
    """A shadow experiment whose A and B runs are already stored (no model needed)."""
    from workbench.store import ModelRecord

    if not store.rows("SELECT 1 FROM models WHERE id = 'fake'"):
        store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    a = store.create_variant(f"{name}-prod", "fake")
    b = store.create_variant(f"{name}-cand", "fake")
    items = [{"key": f"inc-{i:03d}", "input": f"Incident {i}: queue backlog growing.",
              "reference": {"severity": "SEV-2"}} for i in range(n_items)]
    ds = store.save_dataset(f"{name}-ds", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment(name, ds, {"A": a.id, "B": b.id})
    for item in store.items(ds):
        for arm, variant in (("A", a), ("B", b)):
            text = outputs(item, arm) if outputs else f"{'alpha' if arm == 'A' else 'omega'} answer {item.key}"
            store.record_run({"experiment_id": exp.id, "item_id": item.id, "variant_id": variant.id,
                              "arm": arm, "output": text, "latency_ms": 100.0})
    return exp


def max_overlap(intervals) -> int:
    """The most (start, end) intervals that were open at one moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best
