"""The backend protocol: one request in, one measured generation out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class GenerationRequest:
    """What a variant asks of a model for one item."""

    messages: list[dict]
    system: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    json_schema: dict | None = None

    def chat_messages(self) -> list[dict]:
        """The messages with the system prompt first (a message's own system prompt wins)."""
        messages = [dict(m) for m in self.messages]
        if self.system and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.system})
        return messages

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Generation:
    """One measured answer. ``error`` is set (and ``text`` empty) when generation failed."""

    text: str = ""
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    decode_tps: float | None = None
    prompt_tps: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, message: str, latency_ms: float | None = None, **extra: Any) -> "Generation":
        return cls(error=message, latency_ms=latency_ms, extra=dict(extra))

    @classmethod
    def unavailable(cls, message: str, latency_ms: float | None = None) -> "Generation":
        """The engine itself is gone (server unreachable or dead): not an answer of the model.

        A replay stores nothing for it and stops, so a resume reruns the item.
        """
        return cls.failed(message, latency_ms, unavailable=True)

    @property
    def engine_unavailable(self) -> bool:
        return bool(self.extra.get("unavailable"))


class Backend(Protocol):
    """Anything that can answer a request: a llama.cpp worker process, an HTTP endpoint.

    ``slots`` is how many requests it serves at once (1 for a worker process; a server's slot
    count); ``engine`` is the label recorded on every run it answers.
    """

    slots: int
    engine: str

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one request; never raise for model failures, return ``Generation.failed``."""

    def close(self) -> None:
        """Release the model (end the process, free GPU memory)."""
