"""The fine-tune job process: ``python -m workbench.finetune.trainer --db DB --job ID [--resume]``.

Loads the base (a GGUF dequantized through transformers, or a local HF folder), adds a LoRA with
peft (or Unsloth on a CUDA GPU when it is installed), trains with a plain PyTorch loop, and writes
loss, validation loss, learning rate and tokens/s to the store as it goes. SIGTERM (cancel) saves a
checkpoint and ends the job as 'cancelled'; ``--resume`` continues from the last checkpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import signal
import sys
import time
import traceback
from pathlib import Path

from ..store import Store, utcnow
from .data_loading import batch_order, collate, encode_all, read_chat_jsonl
from .settings import LoraSettings

_stop = {"requested": False}


def _request_stop(signum, frame) -> None:
    _stop["requested"] = True


def choose_engine(requested: str) -> str:
    """'unsloth' when asked or when auto and a CUDA GPU plus the unsloth package are present."""
    if requested != "auto":
        return requested
    import torch

    return "unsloth" if torch.cuda.is_available() and importlib.util.find_spec("unsloth") else "peft"


def build_model(base_path: str, settings: LoraSettings, engine: str, work_dir: Path):
    """(peft model, tokenizer) for the chosen engine."""
    from ..export.hf_loader import is_gguf, load_base_model, load_tokenizer

    tokenizer = load_tokenizer(base_path)
    if engine == "unsloth":
        from unsloth import FastLanguageModel  # noqa: F401 - only on CUDA machines

        source = base_path
        if is_gguf(base_path):  # Unsloth loads HF folders: dequantize the GGUF once
            source = str(work_dir / "base_hf")
            if not (Path(source) / "config.json").is_file():
                load_base_model(base_path).save_pretrained(source)
                tokenizer.save_pretrained(source)
        model, tokenizer = FastLanguageModel.from_pretrained(
            source, max_seq_length=settings.seq_len, dtype=None, load_in_4bit=False)
        model = FastLanguageModel.get_peft_model(
            model, r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
            target_modules=settings.target_modules, random_state=settings.seed,
            use_gradient_checkpointing="unsloth")
        return model, tokenizer
    from peft import LoraConfig, get_peft_model

    model = load_base_model(base_path, dtype="float32")
    config = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=settings.target_modules, task_type="CAUSAL_LM")
    return get_peft_model(model, config), tokenizer


def _schedule(settings: LoraSettings, total_steps: int):
    def factor(step: int) -> float:
        if settings.warmup_steps and step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        span = max(1, total_steps - settings.warmup_steps)
        return max(0.0, 1.0 - (step - settings.warmup_steps) / span)
    return factor


def _save_checkpoint(model, optimizer, scheduler, step: int, work_dir: Path) -> Path:
    import torch

    final = work_dir / "checkpoint"
    tmp = work_dir / "checkpoint.tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(tmp))
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    if final.exists():
        old = work_dir / "checkpoint.old"
        final.rename(old)
        tmp.rename(final)
        import shutil

        shutil.rmtree(old)
    else:
        tmp.rename(final)
    return final


def _evaluate(model, examples: list[dict], pad_id: int, batch_size: int) -> float | None:
    import torch

    if not examples:
        return None
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start:start + batch_size], pad_id)
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    model.train()
    return total / count if count else None


def train(store: Store, job_id: int, resume: bool = False) -> str:
    """Run (or resume) one job to its end; return its final status."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    job = store.rows("SELECT * FROM finetune_jobs WHERE id = ?", [job_id])[0]
    settings = LoraSettings.from_dict(json.loads(job["config"]))
    work_dir = Path(job["output_dir"])
    engine = choose_engine(settings.engine)
    store.db["finetune_jobs"].update(job_id, {"status": "running", "engine": engine,
                                              "started_at": job["started_at"] or utcnow(),
                                              "error": None})
    store.db.conn.commit()
    torch.manual_seed(settings.seed)
    train_chats = read_chat_jsonl(job["train_file"])  # bad data fails before the model loads
    val_chats = read_chat_jsonl(job["val_file"]) if job["val_file"] else []
    model, tokenizer = build_model(job["base_path"], settings, engine, work_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set = encode_all(tokenizer, train_chats, settings.seq_len)
    val_set = encode_all(tokenizer, val_chats, settings.seq_len)
    if not train_set:
        raise ValueError("no usable training examples (every answer was truncated or missing)")
    total_steps = settings.total_steps(len(train_set))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(settings, total_steps))
    step = 0
    checkpoint = work_dir / "checkpoint"
    resuming = resume and (checkpoint / "trainer_state.pt").is_file()
    if not resuming:  # a fresh start: forget the metrics of any earlier attempt
        store.db.execute("DELETE FROM training_metrics WHERE job_id = ?", [job_id])
        store.db.conn.commit()
    if resuming:
        set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
        state = torch.load(checkpoint / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        torch.set_rng_state(state["rng"])
        store.db.execute("DELETE FROM training_metrics WHERE job_id = ? AND step > ?", [job_id, step])
        store.db.conn.commit()
    model.train()
    micro_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    micro = step * settings.grad_accum
    window_tokens, window_seconds = 0, 0.0  # training compute only: evaluation is excluded
    while step < total_steps:
        if _stop["requested"]:
            _save_checkpoint(model, optimizer, scheduler, step, work_dir)
            return "cancelled"
        started = time.perf_counter()
        epoch, index = divmod(micro, micro_per_epoch)
        batch = collate([train_set[i] for i in batch_order(len(train_set), settings.batch_size,
                                                            settings.seed, epoch)[index]], pad_id)
        loss = model(**batch).loss / settings.grad_accum
        loss.backward()
        window_tokens += int(batch["attention_mask"].sum())
        micro += 1
        if micro % settings.grad_accum:
            window_seconds += time.perf_counter() - started
            continue
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        window_seconds += time.perf_counter() - started
        step += 1
        metrics = {"job_id": job_id, "step": step, "epoch": micro / micro_per_epoch,
                   "learning_rate": scheduler.get_last_lr()[0], "created_at": utcnow()}
        if step % settings.log_every == 0 or step == total_steps:
            metrics.update(loss=loss.item() * settings.grad_accum,
                           tokens_per_s=window_tokens / window_seconds if window_seconds else None)
            window_tokens, window_seconds = 0, 0.0
        if val_set and (step % settings.eval_every == 0 or step == total_steps):
            metrics["eval_loss"] = _evaluate(model, val_set, pad_id, settings.batch_size)
        if "loss" in metrics or "eval_loss" in metrics:
            store.db["training_metrics"].insert(metrics)
            store.db.conn.commit()
        if step % settings.save_every == 0 and step < total_steps:
            _save_checkpoint(model, optimizer, scheduler, step, work_dir)
            store.db["finetune_jobs"].update(job_id, {"checkpoint": str(checkpoint)})
            store.db.conn.commit()
    adapter_dir = work_dir / "adapter"
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    _save_checkpoint(model, optimizer, scheduler, step, work_dir)
    return "completed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one fine-tune job")
    parser.add_argument("--db", required=True)
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    store = Store(args.db)
    try:
        status, error = train(store, args.job, resume=args.resume), None
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job
        traceback.print_exc()
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    update = {"status": status, "error": error, "ended_at": utcnow(), "pid": None}
    if status in ("completed", "cancelled"):
        update["checkpoint"] = str(Path(store.rows("SELECT output_dir FROM finetune_jobs WHERE id = ?",
                                                   [args.job])[0]["output_dir"]) / "checkpoint")
    store.db["finetune_jobs"].update(args.job, update)
    store.db.conn.commit()
    print(f"job {args.job}: {status}" + (f" ({error})" if error else ""), flush=True)
    return 0 if status != "failed" else 1


if __name__ == "__main__":
    sys.exit(main())
