"""AdaptiveLimit: in-flight bound with real threads, the halve/creep sequence, cancel."""

from __future__ import annotations

import threading
import time

import pytest

from workbench.engines.concurrency import AdaptiveLimit


def run_workers(limit: AdaptiveLimit, n: int, hold_s: float) -> tuple[int, list[tuple[int, int]]]:
    """n threads each take a slot for hold_s; the highest in-flight count seen, and every
    (in_flight, current) pair seen just after an acquire."""
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    seen: list[tuple[int, int]] = []

    def work():
        with limit.slot() as ok:
            assert ok
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
                seen.append((limit.in_flight, limit.current))
            time.sleep(hold_s)
            with lock:
                state["now"] -= 1

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert limit.in_flight == 0
    return state["peak"], seen


def test_in_flight_never_exceeds_the_limit_with_real_threads():
    limit = AdaptiveLimit(3)
    peak, seen = run_workers(limit, 12, 0.02)
    assert peak == 3  # reached, never passed
    assert all(in_flight <= current for in_flight, current in seen)


def test_after_a_halving_new_requests_wait_for_the_lower_limit():
    limit = AdaptiveLimit(4)
    limit.throttled()
    limit.throttled()  # this thread entered no slot: each call halves
    assert limit.current == 1
    peak, _ = run_workers(limit, 4, 0.02)
    assert peak == 1


def test_halves_on_429_then_creeps_back_by_one_per_current_successes():
    limit = AdaptiveLimit(8, minimum=2)
    limit.throttled()
    assert limit.current == 4
    limit.throttled()
    limit.throttled()
    assert limit.current == 2  # never below the minimum
    for _ in range(2):
        limit.succeeded()
    assert limit.current == 3  # 2 successes at current=2 -> +1
    for _ in range(2):
        limit.succeeded()
    assert limit.current == 3  # 3 needed now
    limit.succeeded()
    assert limit.current == 4
    for _ in range(4):
        limit.succeeded()
    assert limit.current == 5
    limit.throttled()
    assert limit.current == 2  # 5 // 2
    for _ in range(100):
        limit.succeeded()
    assert limit.current == 8  # never above the maximum


def test_a_429_resets_the_success_streak():
    limit = AdaptiveLimit(4)
    limit.throttled()  # 2
    limit.succeeded()
    limit.throttled()  # 1, streak reset
    limit.succeeded()
    assert limit.current == 2
    limit.succeeded()
    assert limit.current == 2  # one success of the two needed at current=2


def test_one_halving_per_episode_for_requests_already_in_flight():
    """Four requests in flight all get 429: halve once (4 -> 2), not to 1. A request sent after
    the halving that gets 429 halves again."""
    limit = AdaptiveLimit(4)
    inside = threading.Barrier(4)
    throttled = threading.Barrier(4)

    def request():
        with limit.slot():
            inside.wait(5)  # all four in flight before any 429
        limit.throttled()
        throttled.wait(5)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert limit.current == 2
    with limit.slot():
        pass
    limit.throttled()  # entered after the halving: a new episode
    assert limit.current == 1


def test_cancel_unblocks_a_waiter():
    limit = AdaptiveLimit(1)
    assert limit.acquire()
    cancel = threading.Event()
    result = {}

    def waiter():
        started = time.perf_counter()
        result["ok"] = limit.acquire(cancel)
        result["waited"] = time.perf_counter() - started

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive()  # really blocked
    cancel.set()
    limit.wake()
    thread.join(2)
    assert not thread.is_alive()
    assert result["ok"] is False and result["waited"] < 1.5
    assert limit.in_flight == 1  # the cancelled waiter took nothing
    limit.release()
    with limit.slot(cancel) as ok:  # a set event: no place given even when one is free
        assert ok is False
    assert limit.in_flight == 0


def test_a_release_lets_a_waiter_in():
    limit = AdaptiveLimit(1)
    limit.acquire()
    got = threading.Event()
    thread = threading.Thread(target=lambda: (limit.acquire(), got.set()))
    thread.start()
    assert not got.wait(0.1)
    limit.release()
    assert got.wait(2)
    thread.join(2)
    limit.release()


def test_bad_arguments_and_unmatched_release():
    with pytest.raises(ValueError):
        AdaptiveLimit(0)
    with pytest.raises(ValueError):
        AdaptiveLimit(2, minimum=3)
    with pytest.raises(RuntimeError):
        AdaptiveLimit(1).release()
