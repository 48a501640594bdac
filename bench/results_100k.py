"""Time the experiment report (``build_report``) on an experiment with 100k runs (50k items x 2 arms) + ratings.

Usage: .venv/bin/python bench/results_100k.py [--items 50000] [--repeat 5] [--sequential]
Builds a temporary workspace database with the real Store (items, variants, experiment) and
direct SQL inserts for the runs and ratings, then prints the median wall time of several calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from workbench.experiments.report import build_report
from workbench.store import ModelRecord, Store, utcnow


OUTPUT = ("Severity: SEV-2. Likely cause: the 2.4 deploy raised 5xx on api-gateway in all regions; "
          "roll back the deploy, watch the error rate, then open an incident review.") * 2


def build(path: Path, n_items: int, n_raters: int = 3, n_rated: int = 300, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    store = Store(path)
    store.upsert_model(ModelRecord(id="m", path="/x.gguf"))
    va = store.create_variant("prod", "m")
    vb = store.create_variant("cand", "m")
    sev = rng.integers(0, 4, n_items)
    items = [{"key": f"inc-{i}", "input": f"incident {i}", "line_no": i + 1,
              "reference": {"severity": f"SEV-{s}"}, "user_id": f"u{i % 500}"}
             for i, s in enumerate(sev)]
    ds = store.save_dataset("bench", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("bench", ds, {"A": va.id, "B": vb.id}, mode="shadow")
    item_ids = [r[0] for r in store.db.execute(
        "SELECT id FROM items WHERE dataset_id = ? ORDER BY id", [ds]).fetchall()]
    now = utcnow()
    rows = []
    base = rng.lognormal(6.5, 0.5, n_items)
    ok_a = rng.random(n_items) < 0.70
    ok_b = np.where(rng.random(n_items) < 0.06, ~ok_a, ok_a) | (rng.random(n_items) < 0.15)
    quality_a = np.clip(3.9 + rng.normal(0, 0.9, n_items), 1, 5)
    quality_b = np.clip(quality_a + 0.5 * ok_b + rng.normal(0, 0.4, n_items), 1, 5)
    for arm, variant, lat, ok in (("A", va.id, base, ok_a),
                                  ("B", vb.id, base * rng.lognormal(-0.05, 0.15, n_items), ok_b)):
        err = rng.random(n_items) < 0.01
        unsafe = rng.random(n_items) < 0.002
        for k, item in enumerate(item_ids):
            scores = json.dumps({"secret_kinds": [], "unsafe": ["rm_rf_root"] if unsafe[k] else []})
            rows.append((exp.id, item, variant, arm, OUTPUT, float(lat[k]), float(lat[k]) * 0.2,
                         120, 80, 40.0, None if err[k] else int(ok[k]),
                         "boom" if err[k] else None, 0, scores, now))
    with store.db.atomic():
        store.db.conn.executemany(
            "INSERT INTO runs (experiment_id, item_id, variant_id, arm, output, latency_ms, ttft_ms,"
            " prompt_tokens, completion_tokens, decode_tps, severity_ok, error, secrets, scores,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for r in range(n_raters):
            sid = store.db.execute(
                "INSERT INTO rating_sessions (experiment_id, rater, seed, created_at) "
                "VALUES (?, ?, ?, ?)", [exp.id, f"rater{r}", r, now]).lastrowid
            for pos, item in enumerate(item_ids[:n_rated]):
                left_b = (pos + r) % 2 == 0
                acc_b = int(np.clip(round(quality_b[pos] + rng.normal(0, 0.3)), 1, 5))
                acc_a = int(np.clip(round(quality_a[pos] + rng.normal(0, 0.3)), 1, 5))
                choice = "tie" if acc_a == acc_b else ("1" if (acc_b > acc_a) == left_b else "2")
                a1, a2 = (acc_b, acc_a) if left_b else (acc_a, acc_b)
                store.db.execute(
                    "INSERT INTO ratings (session_id, item_id, position, left_arm, right_arm, "
                    "choice, accuracy_1, safety_1, accuracy_2, safety_2, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 5, ?, 5, ?)",
                    [sid, item, pos, "B" if left_b else "A", "A" if left_b else "B", choice,
                     a1, a2, now])
    store.close()
    return exp.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sequential", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        t0 = time.perf_counter()
        exp_id = build(path, args.items)
        print(f"built {2 * args.items} runs in {time.perf_counter() - t0:.1f} s")
        store = Store(path)
        times, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            stats = build_report(store, exp_id, sequential=args.sequential,
                                 price_per_1k_tokens=0.002)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        store.close()
        v = stats["verdict"]
        print(f"runs: {stats['experiment']['runs']}, verdict: {v['decision']} ({v['reason']})")
        print("times (s): " + ", ".join(f"{t:.3f}" for t in times))
        print(f"build_report (statistics + replay progress, what the report shows) median: {statistics.median(times) * 1000:.0f} ms wall, "
              f"{statistics.median(cpu) * 1000:.0f} ms CPU (load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
