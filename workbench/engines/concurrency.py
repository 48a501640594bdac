"""An adaptive limit on the requests in flight to one endpoint (AIMD, as TCP does with its window).

A server that answers 429 is told less; once it keeps up again it is given more, one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_POLL_S = 0.05  # how often a waiter with a cancel event looks at it


class AdaptiveLimit:
    """At most `current` requests in flight; halves on 429 (multiplicative decrease), then creeps
    back up by one after `current` consecutive successes (additive increase), never above
    `maximum` nor below `minimum`.

    One halving per episode: each ``acquire`` remembers (per thread) the generation of the limit
    it entered under; a 429 of a request that entered before the last halving does not halve
    again, since the requests in flight then were all sent to the same overloaded server.
    """

    def __init__(self, maximum: int, minimum: int = 1):
        if maximum < 1 or not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got minimum={minimum}, maximum={maximum}")
        self.maximum = maximum
        self.minimum = minimum
        self.current = maximum
        self.in_flight = 0
        self.generation = 0  # bumped by every halving
        self._successes = 0
        self._cond = threading.Condition()
        self._local = threading.local()

    def acquire(self, cancel: threading.Event | None = None) -> bool:
        """Wait for a free place; False (and nothing taken) if ``cancel`` got set meanwhile."""
        with self._cond:
            while self.in_flight >= self.current:
                if cancel is not None and cancel.is_set():
                    return False
                self._cond.wait(_POLL_S if cancel is not None else None)
            if cancel is not None and cancel.is_set():
                return False
            self.in_flight += 1
            self._local.generation = self.generation
            return True

    def release(self) -> None:
        with self._cond:
            if self.in_flight <= 0:
                raise RuntimeError("release() without acquire()")
            self.in_flight -= 1
            self._cond.notify()

    @contextmanager
    def slot(self, cancel: threading.Event | None = None) -> Iterator[bool]:
        """``with limit.slot(cancel) as ok:`` -- ok is False when cancelled before a place came free."""
        acquired = self.acquire(cancel)
        try:
            yield acquired
        finally:
            if acquired:
                self.release()

    def throttled(self) -> None:
        """The server said 429 to a request of this thread: halve, once per episode."""
        with self._cond:
            self._successes = 0
            entered = getattr(self._local, "generation", self.generation)
            if entered < self.generation:
                return  # already halved for the batch this request was part of
            self.current = max(self.minimum, self.current // 2)
            self.generation += 1

    def succeeded(self) -> None:
        """A request was answered: after `current` successes in a row, allow one more."""
        with self._cond:
            self._successes += 1
            if self._successes >= self.current:
                self._successes = 0
                if self.current < self.maximum:
                    self.current += 1
                    self._cond.notify()

    def wake(self) -> None:
        """Wake every waiter, so one whose cancel event is set returns at once."""
        with self._cond:
            self._cond.notify_all()

    def __repr__(self) -> str:
        return (f"AdaptiveLimit(current={self.current}, maximum={self.maximum}, "
                f"minimum={self.minimum}, in_flight={self.in_flight})")
