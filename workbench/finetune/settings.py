"""LoRA fine-tune settings, stored as JSON with each job."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ENGINES = ("auto", "peft", "unsloth")


@dataclass
class LoraSettings:
    """Everything a fine-tune job needs besides its base model and data."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int | None = None
    seq_len: int = 512
    batch_size: int = 4
    grad_accum: int = 1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    seed: int = 0
    log_every: int = 1
    eval_every: int = 20
    save_every: int = 20
    engine: str = "auto"

    def validate(self) -> "LoraSettings":
        """Raise ValueError with a clear message for impossible settings."""
        problems = []
        if self.rank < 1:
            problems.append("rank must be >= 1")
        if self.alpha <= 0:
            problems.append("alpha must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            problems.append("dropout must be in [0, 1)")
        if self.learning_rate <= 0:
            problems.append("learning rate must be > 0")
        if self.max_steps is None and self.epochs <= 0:
            problems.append("give epochs > 0 or max_steps")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append("max_steps must be >= 1")
        if self.seq_len < 16 or self.batch_size < 1 or self.grad_accum < 1:
            problems.append("seq_len >= 16, batch_size >= 1 and grad_accum >= 1 are required")
        if not self.target_modules:
            problems.append("at least one target module is required")
        if self.engine not in ENGINES:
            problems.append(f"engine must be one of {', '.join(ENGINES)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def total_steps(self, n_examples: int) -> int:
        """Optimizer steps a job runs on ``n_examples`` training examples."""
        if self.max_steps:
            return self.max_steps
        per_epoch = math.ceil(math.ceil(n_examples / self.batch_size) / self.grad_accum)
        return max(1, math.ceil(per_epoch * self.epochs))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LoraSettings":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fine-tune setting(s): {', '.join(sorted(unknown))}")
        return cls(**data).validate()
