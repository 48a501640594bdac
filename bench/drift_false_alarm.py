"""False-alarm and detection rates of the data-drift check on the shipped datasets.

Usage: python bench/drift_false_alarm.py [--repeats 50] [--per-side 20] [--permutations 499]
                                         [--max-tokens 64] [--seed 0]

Embeds every devops incident, every emergency-response question and the background texts once
(bundled SmolLM2-135M, mean pooling, the first ``--max-tokens`` tokens of each input), then:

- false alarms: ``--repeats`` random split halves of each dataset (``--per-side`` inputs on each
  side, disjoint) judged as reference vs recent; an alarm is a *drifted* verdict (distance > 0.25
  and permutation p < 0.05); the share with p < 0.05 alone is printed too;
- detection: ``--repeats`` random draws of ``--per-side`` devops incidents (reference) vs as many
  emergency questions (recent), and the other way round.

Both for the vectors centred on the background mean (what ``workbench drift data`` does) and raw.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.engines.embeddings import EmbeddingSpec, embed_texts  # noqa: E402
from workbench.models.registry import bundled_model_path  # noqa: E402
from workbench.monitoring.data_drift import BACKGROUND_TEXTS, judge_data_drift  # noqa: E402


def inputs(name: str) -> list[str]:
    lines = (REPO / "datasets" / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["input"] for line in lines if line.strip()]


def rates(pairs, background, permutations: int) -> dict:
    drifted = significant = 0
    distances = []
    for k, (ref, new) in enumerate(pairs):
        result = judge_data_drift(ref, new, background=background, n_permutations=permutations,
                                  seed=k)
        drifted += result.drifted
        significant += result.p_value < result.alpha
        distances.append(result.distance)
    n = len(pairs)
    return {"n": n, "drifted": drifted / n, "p_below_alpha": significant / n,
            "distance_median": float(np.median(distances)), "distance_max": float(max(distances)),
            "distance_min": float(min(distances))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--per-side", type=int, default=20)
    parser.add_argument("--permutations", type=int, default=499)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    devops, emergency = inputs("devops_incidents.jsonl"), inputs("emergency_response.jsonl")
    started = time.perf_counter()
    vectors = embed_texts(EmbeddingSpec(str(bundled_model_path()), max_tokens=args.max_tokens),
                          devops + emergency + list(BACKGROUND_TEXTS))
    print(f"embedded {len(vectors)} inputs in {time.perf_counter() - started:.0f} s")
    dev = vectors[:len(devops)]
    er = vectors[len(devops):len(devops) + len(emergency)]
    background = vectors[len(devops) + len(emergency):]
    rng = np.random.default_rng(args.seed)
    m = args.per_side

    def halves(x):
        order = rng.permutation(len(x))
        return x[order[:m]], x[order[m:2 * m]]

    def draw(x, y):
        return x[rng.permutation(len(x))[:m]], y[rng.permutation(len(y))[:m]]

    cases = {"false alarms: devops split halves": [halves(dev) for _ in range(args.repeats)],
             "false alarms: emergency split halves": [halves(er) for _ in range(args.repeats)],
             "detection: devops -> emergency": [draw(dev, er) for _ in range(args.repeats)],
             "detection: emergency -> devops": [draw(er, dev) for _ in range(args.repeats)]}
    print(f"{args.repeats} repeats, {m} vs {m} inputs, {args.permutations} permutations, "
          "threshold 0.25, alpha 0.05")
    for centre, bg in (("centred on the background mean", background), ("raw", None)):
        print(f"\n{centre}:")
        for name, pairs in cases.items():
            r = rates(pairs, bg, args.permutations)
            print(f"  {name:38s} drifted {r['drifted']:6.1%}  p<0.05 {r['p_below_alpha']:6.1%}  "
                  f"distance median {r['distance_median']:.4f} "
                  f"(min {r['distance_min']:.4f}, max {r['distance_max']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
