"""Typed rows handed between the store and the rest of the workbench."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import PurePath
from typing import Any

from .db import loads


def _from_row(cls, row: dict, json_fields: tuple[str, ...] = ()) -> Any:
    names = {f.name for f in fields(cls)}
    values = {k: v for k, v in row.items() if k in names}
    for name in json_fields:
        if name in values:
            values[name] = loads(values[name])
    return cls(**values)


@dataclass
class ModelRecord:
    id: str
    path: str
    name: str | None = None
    architecture: str | None = None
    size_label: str | None = None
    parameters: int | None = None
    file_type: str | None = None
    context_length: int | None = None
    file_size: int | None = None
    file_mtime: float | None = None
    sha256: str | None = None
    source: str | None = None
    has_chat_template: int = 0
    n_gpu_layers: int = 0
    n_ctx: int = 2048
    n_threads: int | None = None
    lineage: dict | None = None
    added_at: str | None = None
    engine: str = "auto"  # auto (managed llama-server when a binary exists), worker or server
    server_slots: int | None = None  # --parallel of its managed llama-server (None: default)

    @classmethod
    def from_row(cls, row: dict) -> "ModelRecord":
        return _from_row(cls, row, ("lineage",))


@dataclass
class Variant:
    """Prompt and sampling on one target: a local GGUF (``model_id``, optionally with a LoRA
    adapter GGUF) or a model served by an HTTP endpoint (``endpoint`` + ``endpoint_model``)."""

    id: int
    name: str
    model_id: str | None = None
    system_prompt: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    json_schema: dict | None = None
    created_at: str | None = None
    endpoint: str | None = None
    endpoint_model: str | None = None
    lora_path: str | None = None
    lora_scale: float = 1.0

    @classmethod
    def from_row(cls, row: dict) -> "Variant":
        return _from_row(cls, row, ("json_schema",))

    @property
    def target(self) -> str:
        """What answers: ``model``, ``model + adapter.gguf`` or ``endpoint:model``."""
        if self.endpoint:
            return f"{self.endpoint}:{self.endpoint_model or '(default model)'}"
        if self.lora_path:
            name = PurePath(self.lora_path).name
            scale = "" if self.lora_scale == 1.0 else f" x{self.lora_scale:g}"
            return f"{self.model_id} + {name}{scale}"
        return str(self.model_id)


@dataclass
class Endpoint:
    """An OpenAI-compatible server: where it is, which env var holds its key, what a probe found."""

    name: str
    base_url: str
    api_key_env: str | None = None
    model: str | None = None
    concurrency: int | None = None
    stream: int = 1
    kind: str | None = None
    version: str | None = None
    probe: dict | None = None
    probed_at: str | None = None
    created_at: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Endpoint":
        return _from_row(cls, row, ("probe",))


@dataclass
class Item:
    id: int
    dataset_id: int
    key: str
    input: str | None = None
    messages: list | None = None
    system: str | None = None
    reference: dict | None = None
    user_id: str | None = None
    category: str | None = None
    feature: str | None = None
    line_no: int | None = None
    timestamp: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Item":
        return _from_row(cls, row, ("messages", "reference"))

    @property
    def prompt_text(self) -> str:
        """The operator-facing text of the item: its input, or its last user message."""
        if self.input is not None:
            return self.input
        users = [m.get("content", "") for m in (self.messages or []) if m.get("role") == "user"]
        return users[-1] if users else ""


@dataclass
class Experiment:
    id: int
    name: str
    dataset_id: int
    mode: str
    weight_b: float = 0.5
    canary_users: list | None = None
    item_limit: int | None = None
    seed: int = 0
    primary_metric: str | None = None
    criteria: dict | None = None
    status: str = "draft"
    winner: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    canary_schedule: dict | None = None  # a staged canary (see experiments/canary.py); None: static
    arms: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict, arms: dict[str, int]) -> "Experiment":
        exp = _from_row(cls, row, ("canary_users", "criteria", "canary_schedule"))
        exp.arms = arms
        return exp
