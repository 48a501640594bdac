"""Chat JSONL -> token ids with the loss on the assistant's answer only; seeded batches."""

from __future__ import annotations

import json
import random
from pathlib import Path

IGNORE = -100


def read_chat_jsonl(path: str | Path) -> list[list[dict]]:
    """Conversations from OpenAI chat JSONL (or Anthropic records with a top-level system)."""
    conversations = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            messages = list(record["messages"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{Path(path).name} line {line_no}: not a chat record ({exc})") from None
        if record.get("system"):
            messages.insert(0, {"role": "system", "content": record["system"]})
        if not messages or messages[-1]["role"] != "assistant":
            raise ValueError(f"{Path(path).name} line {line_no}: the last message must be the "
                             "assistant's answer")
        conversations.append(messages)
    return conversations


def encode(tokenizer, messages: list[dict], seq_len: int) -> dict:
    """input_ids and labels for one conversation; labels mask everything but the final answer."""
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True)
    full = tokenizer.apply_chat_template(messages, tokenize=True)
    if hasattr(prompt, "input_ids") or isinstance(prompt, dict):
        prompt, full = prompt["input_ids"], full["input_ids"]
    prompt, full = list(prompt), list(full)
    if full[:len(prompt)] != prompt:  # templates that rewrite earlier turns: mask by length
        prompt = full[:len(prompt)]
    labels = [IGNORE] * len(prompt) + full[len(prompt):]
    return {"input_ids": full[:seq_len], "labels": labels[:seq_len]}


def encode_all(tokenizer, conversations: list[list[dict]], seq_len: int) -> list[dict]:
    """Encode every conversation; drop those whose answer was truncated away entirely."""
    encoded = [encode(tokenizer, c, seq_len) for c in conversations]
    return [e for e in encoded if any(label != IGNORE for label in e["labels"])]


def batch_order(n_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches of one epoch: a seeded shuffle, so a resumed job sees the same order."""
    order = list(range(n_examples))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return [order[i:i + batch_size] for i in range(0, n_examples, batch_size)]


def collate(examples: list[dict], pad_id: int):
    """Pad a batch to its longest example; returns torch tensors."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        ids[row, :n] = torch.tensor(example["input_ids"])
        labels[row, :n] = torch.tensor(example["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
