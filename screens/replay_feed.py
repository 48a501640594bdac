"""From a replay thread to the UI: coalesced progress messages (at most one per interval)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from textual.message import Message


@dataclass
class ReplayTick:
    """The part of an ``experiments.replay.Progress`` the UI needs, copied in the replay thread."""

    done: int
    total: int
    eta_s: float | None
    errors: int
    fallbacks: int
    run: dict | None


class ReplayUpdate(Message):
    """Runs stored since the last update (oldest first) and where the replay stands."""

    def __init__(self, experiment_id: int, ticks: list[ReplayTick]):
        super().__init__()
        self.experiment_id = experiment_id
        self.ticks = ticks

    @property
    def latest(self) -> ReplayTick:
        return self.ticks[-1]


class ReplayEnded(Message):
    """A replay stopped: finished, paused/cancelled, or failed with ``error``."""

    def __init__(self, experiment_id: int, *, finished: bool, stopped: bool, error: str | None,
                 done: int):
        super().__init__()
        self.experiment_id = experiment_id
        self.finished, self.stopped, self.error, self.done = finished, stopped, error, done


class Coalescer:
    """Batches items pushed from one thread; hands each batch to ``deliver`` at most once per
    ``interval_s`` and never leaves an item behind (a timer flushes the last batch)."""

    def __init__(self, deliver: Callable[[list], None], interval_s: float = 0.1):
        self.deliver = deliver
        self.interval_s = interval_s
        self._items: list = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = 0.0

    def push(self, item) -> None:
        with self._lock:
            self._items.append(item)
            if self._timer is not None:
                return
            wait = self._last + self.interval_s - time.monotonic()
            if wait > 0:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:  # deliver under the lock so batches arrive in order
            batch, self._items = self._items, []
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._last = time.monotonic()
            if batch:
                self.deliver(batch)

    def close(self) -> None:
        """Deliver whatever is left now."""
        self.flush()
