"""Fine-tune throughput: the workbench's PEFT job path vs a bare transformers + peft loop.

Usage: python bench/finetune_throughput.py [--steps 12] [--rank 8] [--seq-len 256] [--batch 4]

Both train the same LoRA on the same examples (the bundled DevOps incidents, reference answers),
same batches, same settings, on the bundled SmolLM2 dequantized to float32. Throughput is the
tokens of steps 2..N divided by the wall time between the end of step 1 and the end of step N:
for the workbench that is read from the job's own metric rows (so it includes its store writes),
for the bare loop from timestamps taken after each step. Target: ratio >= 0.95.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def workbench_run(ws, train_file: Path, settings) -> tuple[float, list[int]]:
    from workbench.finetune import jobs
    from workbench.models.registry import BUNDLED_ID

    job_id = jobs.create_job(ws.store, ws.workspace, base=BUNDLED_ID, train_file=train_file,
                             settings=settings, name="bench")
    if jobs.launch(ws.store, job_id).wait() != 0:
        raise SystemExit("\n".join(jobs.log_tail(jobs.get_job(ws.store, job_id))))
    rows = jobs.metrics(ws.store, job_id)
    stamps = [datetime.fromisoformat(r["created_at"]).timestamp() for r in rows]
    return stamps[-1] - stamps[0], [r["step"] for r in rows]


def bare_run(train_file: Path, settings, tokens_per_step: list[int]) -> float:
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.export.hf_loader import load_base_model, load_tokenizer
    from workbench.finetune.data_loading import batch_order, collate, encode_all, read_chat_jsonl
    from workbench.models.registry import bundled_model_path

    torch.manual_seed(settings.seed)
    base = str(bundled_model_path())
    tokenizer = load_tokenizer(base)
    model = get_peft_model(load_base_model(base), LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=settings.target_modules, task_type="CAUSAL_LM"))
    data = encode_all(tokenizer, read_chat_jsonl(train_file), settings.seq_len)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=settings.learning_rate)
    model.train()
    batches = batch_order(len(data), settings.batch_size, settings.seed, 0)
    stamps = []
    for step in range(settings.max_steps):
        batch = collate([data[i] for i in batches[step % len(batches)]], tokenizer.eos_token_id)
        tokens_per_step.append(int(batch["attention_mask"].sum()))
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
    return stamps[-1] - stamps[0]


def main() -> None:
    from workbench.datasets import import_dataset
    from workbench.finetune.dataset_builder import build_examples, export_split
    from workbench.finetune.settings import LoraSettings
    from workbench.workspace import open_workspace

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    settings = LoraSettings(rank=args.rank, alpha=2 * args.rank, max_steps=args.steps,
                            seq_len=args.seq_len, batch_size=args.batch, eval_every=10**6,
                            save_every=10**6, learning_rate=2e-4, dropout=0.05)
    with tempfile.TemporaryDirectory() as tmp:
        ws = open_workspace(Path(tmp) / "ws", seed=False)
        report = import_dataset(ws.store, REPO / "datasets" / "devops_incidents.jsonl")
        result = build_examples(ws.store, report.dataset_id, val_fraction=0.0, seed=0)
        train_file = export_split(result, Path(tmp) / "data")["train"]
        bare_tokens: list[int] = []
        bare_seconds = bare_run(train_file, settings, bare_tokens)
        wb_seconds, steps = workbench_run(ws, train_file, settings)
        ws.close()
    # both paths see the same batches (one epoch order, same seed), so the same tokens per step
    tokens = sum(bare_tokens[1:])
    bare_tps, wb_tps = tokens / bare_seconds, tokens / wb_seconds
    print(f"{args.steps} steps, rank {args.rank}, seq_len {args.seq_len}, batch {args.batch}; "
          f"tokens in steps 2..{args.steps}: {tokens}")
    print(f"bare transformers + peft loop: {bare_tps:.0f} tokens/s ({bare_seconds:.1f} s)")
    print(f"workbench job (subprocess):    {wb_tps:.0f} tokens/s ({wb_seconds:.1f} s)")
    print(f"ratio workbench/bare: {wb_tps / bare_tps:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
