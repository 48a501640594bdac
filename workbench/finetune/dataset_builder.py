"""Training data from real incidents: graded answers, filtered, balanced, split, exported.

Each item can contribute one training example: the best answer known for it. Candidates are the
item's reference (written by an expert, graded "excellent") and every replayed answer, graded from
expert ratings when it has any, else from the automatic scores:

- excellent: mean expert accuracy >= 4.5 and safety >= 4.5 (or the reference itself)
- good: accuracy >= 3.5 and safety >= 3.5; without ratings, severity correct and nothing flagged
- fair: accuracy >= 2.5; without ratings, nothing known either way
- poor: anything else (wrong severity, a secret or unsafe advice in the answer, low ratings)

Secrets in an incident, its system text or an answer are flagged, and removed whole (a PEM block
from BEGIN to END, a whole JWT or key) from every field written; exports are owner-only (0600).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..config import make_private_dir
from ..experiments.scoring import find_secrets, find_unsafe
from ..experiments.secret_scan import redact_secrets
from ..private_files import open_private
from ..store import Item, Store

LEVELS = ("poor", "fair", "good", "excellent")
FORMATS = ("openai", "anthropic")


@dataclass
class Example:
    item_key: str
    category: str | None
    system: str | None
    prompt: str
    answer: str
    quality: str
    source: str
    secrets: list[str] = field(default_factory=list)


@dataclass
class BuildResult:
    train: list[Example]
    validation: list[Example]
    skipped: dict[str, int]
    flagged_secrets: int

    def summary(self) -> str:
        by_level = defaultdict(int)
        for ex in self.train + self.validation:
            by_level[ex.quality] += 1
        levels = ", ".join(f"{level} {by_level[level]}" for level in reversed(LEVELS) if by_level[level])
        skipped = ", ".join(f"{k} {v}" for k, v in self.skipped.items() if v) or "none"
        return (f"{len(self.train)} train / {len(self.validation)} validation examples ({levels}); "
                f"skipped: {skipped}; {self.flagged_secrets} with secrets redacted")


def redact(text: str | None) -> str | None:
    """Replace every whole secret in ``text`` with a labelled placeholder (None stays None)."""
    return None if text is None else redact_secrets(text)


def redact_example(example: Example) -> Example:
    """Record the secret kinds in every field ``to_record`` writes and redact them in place."""
    fields = (example.system, example.prompt, example.answer)
    example.secrets = sorted({kind for text in fields for kind in find_secrets(text or "")})
    if example.secrets:
        example.system = redact(example.system)
        example.prompt, example.answer = redact(example.prompt), redact(example.answer)
    return example


def reference_answer(reference: dict | None) -> str | None:
    """An answer written from an item's reference (severity, root cause, first step, answer)."""
    if not reference:
        return None
    parts = []
    if reference.get("severity"):
        parts.append(f"Severity: {reference['severity']}.")
    if reference.get("root_cause"):
        parts.append(f"Root cause: {reference['root_cause']}")
    if reference.get("answer"):
        parts.append(("First step: " if reference.get("root_cause") else "") + reference["answer"])
    return " ".join(parts) or None


def grade(*, accuracy: float | None, safety: float | None, severity_ok: int | None,
          flagged: bool) -> str:
    """Quality level of one answer (see the module docstring for the rules)."""
    if flagged:
        return "poor"
    if accuracy is not None:
        safety = 5.0 if safety is None else safety
        if accuracy >= 4.5 and safety >= 4.5:
            return "excellent"
        if accuracy >= 3.5 and safety >= 3.5:
            return "good"
        return "fair" if accuracy >= 2.5 else "poor"
    if severity_ok == 1:
        return "good"
    return "poor" if severity_ok == 0 else "fair"


def _rated_scores(store: Store, dataset_id: int) -> dict[tuple[int, int], tuple[float, float | None]]:
    """Mean expert (accuracy, safety) per (item, variant), sides mapped back to arms."""
    rows = store.rows(
        """SELECT r.item_id, e.id AS exp, r.left_arm, r.right_arm, r.accuracy_1, r.safety_1,
                  r.accuracy_2, r.safety_2
           FROM ratings r JOIN rating_sessions s ON s.id = r.session_id
           JOIN experiments e ON e.id = s.experiment_id WHERE e.dataset_id = ?""", [dataset_id])
    arms = {(r["experiment_id"], r["arm"]): r["variant_id"] for r in store.rows(
        "SELECT experiment_id, arm, variant_id FROM experiment_arms")}
    sums: dict[tuple[int, int], list] = defaultdict(lambda: [[], []])
    for r in rows:
        for side, arm in (("1", r["left_arm"]), ("2", r["right_arm"])):
            key = (r["item_id"], arms[(r["exp"], arm)])
            if r[f"accuracy_{side}"] is not None:
                sums[key][0].append(r[f"accuracy_{side}"])
            if r[f"safety_{side}"] is not None:
                sums[key][1].append(r[f"safety_{side}"])
    return {k: (sum(a) / len(a), (sum(s) / len(s)) if s else None)
            for k, (a, s) in sums.items() if a}


def candidates(store: Store, dataset_id: int, items: list[Item]) -> dict[int, list[Example]]:
    """Every graded answer per item: its reference and its replayed outputs."""
    rated = _rated_scores(store, dataset_id)
    found: dict[int, list[Example]] = defaultdict(list)
    by_id = {i.id: i for i in items}
    for item in items:
        answer = reference_answer(item.reference)
        if answer:
            found[item.id].append(Example(item.key, item.category, item.system, item.prompt_text,
                                          answer, "excellent", "reference"))
    runs = store.rows(
        """SELECT r.item_id, r.variant_id, r.output, r.severity_ok FROM runs r
           JOIN experiments e ON e.id = r.experiment_id
           WHERE e.dataset_id = ? AND r.error IS NULL AND r.output != ''""", [dataset_id])
    for run in runs:
        item = by_id.get(run["item_id"])
        if item is None:
            continue
        accuracy, safety = rated.get((run["item_id"], run["variant_id"]), (None, None))
        flagged = bool(find_secrets(run["output"]) or find_unsafe(run["output"]))
        level = grade(accuracy=accuracy, safety=safety, severity_ok=run["severity_ok"],
                      flagged=flagged)
        source = "rated answer" if accuracy is not None else "scored answer"
        found[item.id].append(Example(item.key, item.category, item.system, item.prompt_text,
                                      run["output"], level, source))
    return found


def build_examples(store: Store, dataset: int | str, *, min_quality: str = "good",
                   categories: list[str] | None = None, balance: bool = False,
                   val_fraction: float = 0.1, seed: int = 0,
                   include_references: bool = True) -> BuildResult:
    """Choose the best answer per item, filter, balance categories, and split train/validation."""
    if min_quality not in LEVELS:
        raise ValueError(f"min_quality must be one of {', '.join(LEVELS)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1)")
    dataset_row = store.get_dataset(dataset)
    items = store.items(dataset_row["id"])
    skipped = {"category": 0, "below quality": 0, "no answer": 0}
    if categories:
        wanted = set(categories)
        skipped["category"] = sum(i.category not in wanted for i in items)
        items = [i for i in items if i.category in wanted]
    pool = candidates(store, dataset_row["id"], items)
    chosen: list[Example] = []
    threshold = LEVELS.index(min_quality)
    for item in items:
        options = [e for e in pool.get(item.id, [])
                   if include_references or e.source != "reference"]
        if not options:
            skipped["no answer"] += 1
            continue
        best = max(options, key=lambda e: (LEVELS.index(e.quality), e.source != "reference"))
        if LEVELS.index(best.quality) < threshold:
            skipped["below quality"] += 1
            continue
        chosen.append(best)
    flagged = 0
    for example in chosen:
        flagged += bool(redact_example(example).secrets)
    rng = random.Random(seed)
    if balance and chosen:
        groups: dict[str | None, list[Example]] = defaultdict(list)
        for example in chosen:
            groups[example.category].append(example)
        size = min(len(g) for g in groups.values())
        skipped["balancing"] = len(chosen) - size * len(groups)
        chosen = [e for key in sorted(groups, key=str) for e in rng.sample(groups[key], size)]
    rng.shuffle(chosen)
    n_val = int(round(len(chosen) * val_fraction))
    if val_fraction and len(chosen) > 1:
        n_val = max(1, n_val)
    return BuildResult(chosen[n_val:], chosen[:n_val], skipped, flagged)


def to_record(example: Example, fmt: str) -> dict:
    """One example as an OpenAI chat record or an Anthropic messages record; every text field
    written is redacted again here, so no secret reaches training data whatever built it."""
    system, prompt, answer = redact(example.system), redact(example.prompt), redact(example.answer)
    if fmt == "openai":
        messages = ([{"role": "system", "content": system}] if system else [])
        messages += [{"role": "user", "content": prompt},
                     {"role": "assistant", "content": answer}]
        return {"messages": messages}
    if fmt == "anthropic":
        record = {"messages": [{"role": "user", "content": prompt},
                               {"role": "assistant", "content": answer}]}
        if system:
            record["system"] = system
        return record
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def write_jsonl(examples: list[Example], path: str | Path, fmt: str = "openai") -> Path:
    """Write examples as JSONL in ``fmt``, readable by the owner only (0600); return the path."""
    path = Path(path)
    make_private_dir(path.parent)
    with open_private(path) as handle:
        for example in examples:
            handle.write(json.dumps(to_record(example, fmt), ensure_ascii=False) + "\n")
    return path


def export_split(result: BuildResult, out_dir: str | Path, fmt: str = "openai") -> dict[str, Path]:
    """Write train.jsonl and validation.jsonl under ``out_dir``."""
    out_dir = Path(out_dir)
    return {"train": write_jsonl(result.train, out_dir / "train.jsonl", fmt),
            "validation": write_jsonl(result.validation, out_dir / "validation.jsonl", fmt)}
