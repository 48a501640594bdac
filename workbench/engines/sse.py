"""Reading an OpenAI-style chat completion stream (server-sent events) as it arrives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


class BrokenStream(Exception):
    """The stream ended (or turned to garbage) before the answer was complete."""


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The payload of every ``data:`` line; comments (``:``), blank lines and other fields skipped.

    Each data line is taken as one event: the OpenAI-compatible servers put one JSON object on one
    line, and some leave out the blank line between events.
    """
    for line in lines:
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name.strip() != "data":
            continue
        yield value[1:] if value.startswith(" ") else value


@dataclass
class StreamState:
    """What the chunks of one streamed answer added up to so far."""

    started: float  # perf_counter just before the request was sent
    parts: list[str] = field(default_factory=list)
    first_at: float | None = None  # perf_counter of the first non-empty content delta
    content_chunks: int = 0
    finish_reason: str | None = None
    usage: dict | None = None
    timings: dict | None = None  # llama-server's own measurements
    done: bool = False  # "[DONE]" seen
    error: dict | None = None  # an error event sent in the stream

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def complete(self) -> bool:
        """Ended properly: "[DONE]", or at least a finish reason (some servers skip "[DONE]")."""
        return self.done or self.finish_reason is not None

    def feed(self, data: str) -> None:
        """Take one event's payload."""
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise BrokenStream(f"not JSON in the stream: {data[:80]!r}") from exc
        if not isinstance(chunk, dict):
            raise BrokenStream(f"not a chunk in the stream: {data[:80]!r}")
        if chunk.get("error"):
            error = chunk["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if content:
                if self.first_at is None:
                    self.first_at = time.perf_counter()
                self.parts.append(content)
                self.content_chunks += 1
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if chunk.get("timings"):
            self.timings = chunk["timings"]

    def read(self, lines: Iterable[str], cancelled=lambda: False) -> None:
        """Feed every event of ``lines`` up to "[DONE]"; stops early when ``cancelled()``."""
        for data in sse_data(lines):
            if cancelled():
                return
            self.feed(data)
            if self.done or self.error:
                return
