"""Replay an experiment's items through its variants: shadow, split or canary; resumable.

Every arm gets its engine from ``arm_engines`` (an embedded worker, a managed llama-server shared by
the arms on one GGUF, or an HTTP endpoint) and keeps up to N requests in flight (one thread each),
so arms generate truly in parallel and a server batches them. Every result is written to ``runs`` the moment it arrives, one transaction each, and the
table is unique on (experiment, item, variant): a replay killed at any moment (even SIGKILL) and
resumed ends with exactly one row per (item, variant). One replay per experiment runs at a time
(``replay_lock``: a second one, from any process, is refused with who holds it), and a completed
experiment is never replayed again.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .allocation import arms_for
from .canary import plan_canary, sync_events
from .replay_lock import LOCKS_DIR, NothingToResume, ReplayLock
from ..engines.base import Backend, Generation, GenerationRequest
from .scoring import score_output
from ..store import Experiment, Item, Store, Variant, utcnow

BackendFactory = Callable[[str, Variant, int], Backend]


@dataclass
class Task:
    item: Item
    arm: str
    fallback: bool = False


@dataclass
class Progress:
    """Where a replay stands; ``last`` is the run just stored (None for the first report)."""

    done: int
    total: int
    started: float
    errors: int = 0
    fallbacks: int = 0
    last: dict | None = None
    finished: bool = False
    cancelled: bool = False
    stopped_reason: str | None = None  # why the replay stopped early (engine gone, failed to start)
    engines: dict[str, str] = field(default_factory=dict)  # arm -> engine label and width
    canary: object | None = None  # a staged canary's CanaryPlan after each served block

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def eta_s(self) -> float | None:
        if self.done == 0 or self.done >= self.total:
            return None if self.done == 0 else 0.0
        return self.elapsed_s / self.done * (self.total - self.done)


def build_request(item: Item, variant: Variant) -> GenerationRequest:
    """The request a variant sends for an item; the variant's system prompt wins over the item's."""
    messages = list(item.messages) if item.messages else [{"role": "user", "content": item.input}]
    system = variant.system_prompt or item.system
    if variant.system_prompt:
        messages = [m for m in messages if m.get("role") != "system"]
    return GenerationRequest(messages=messages, system=system, temperature=variant.temperature,
                             top_p=variant.top_p, max_tokens=variant.max_tokens,
                             seed=variant.seed, json_schema=variant.json_schema)


def staged(exp: Experiment) -> bool:
    """A canary with a schedule of stages (served block by block, see ``canary.py``)."""
    return exp.mode == "canary" and bool(exp.canary_schedule)


def pending_tasks(store: Store, exp: Experiment, *, light: bool = False) -> list[Task]:
    """What is left to run: items x arms without a stored run (fallbacks included).

    ``light`` tasks carry only each item's id, key and user (enough to count, not to run). A
    staged canary's pending work is its next block only (later blocks depend on its health).
    """
    if staged(exp):
        return _staged_tasks(store, exp, plan_canary(store, exp))
    items = store.items(exp.dataset_id, limit=exp.item_limit, light=light)
    by_pair = {(item_id, arm): error for item_id, arm, error in store.db.execute(
        "SELECT item_id, arm, error IS NOT NULL FROM runs WHERE experiment_id = ?", [exp.id])}
    tasks: list[Task] = []
    for item in items:
        for arm in arms_for(item, mode=exp.mode, arms=sorted(exp.arms), weight_b=exp.weight_b,
                            seed=exp.seed, canary_users=exp.canary_users):
            failed = by_pair.get((item.id, arm))
            if failed is None:
                tasks.append(Task(item, arm))
            elif exp.mode != "shadow" and arm == "B" and failed and (item.id, "A") not in by_pair:
                tasks.append(Task(item, "A", fallback=True))
    return tasks


def pending_and_planned(store: Store, exp: Experiment, stored: int, *,
                        light: bool = False) -> tuple[list[Task], int]:
    """``pending_tasks`` and the replay's planned size with ``stored`` runs done (for a staged
    canary: one request per item after the next block), from one canary plan."""
    if staged(exp):
        plan = plan_canary(store, exp)
        return _staged_tasks(store, exp, plan), _staged_total(plan, stored)
    tasks = pending_tasks(store, exp, light=light)
    return tasks, stored + len(tasks)


def _staged_tasks(store: Store, exp: Experiment, plan) -> list[Task]:
    return [Task(item, arm, fallback=arm == "A" and _b_failed(store, exp, item))
            for item, arm in plan.next_block]


def _b_failed(store: Store, exp: Experiment, item: Item) -> bool:
    return bool(store.db.execute(
        "SELECT 1 FROM runs WHERE experiment_id = ? AND item_id = ? AND arm = 'B' "
        "AND error IS NOT NULL", [exp.id, item.id]).fetchone())


def _staged_total(plan, done: int) -> int:
    """Runs done plus the next block plus one request per item after it."""
    blocked = len({item.id for item, _ in plan.next_block})
    return done + len(plan.next_block) + plan.n_requests - plan.served - blocked


def replay_size(store: Store, exp: Experiment) -> tuple[int, int]:
    """(runs stored, runs planned) for an experiment, fallbacks counted in both (a staged
    canary's later fallbacks cannot be known ahead: one request per item is planned)."""
    stored = store.run_count(exp.id)
    if exp.mode == "shadow":  # every item to every arm: no per-item assignment to work out
        n_items = store.db.execute("SELECT count(*) FROM items WHERE dataset_id = ?",
                                   [exp.dataset_id]).fetchone()[0]
        return stored, min(n_items, exp.item_limit or n_items) * len(exp.arms)
    return stored, pending_and_planned(store, exp, stored, light=True)[1]


def engine_label(backend: Backend) -> str:
    """What is stored as a run's engine: the backend's own label, else its class name."""
    return getattr(backend, "engine", type(backend).__name__)


@dataclass
class _Result:
    task: Task
    generation: Generation
    variant: Variant
    engine: str


@dataclass
class Replay:
    """One run of an experiment's pending work. Iterate ``run()`` for progress; ``cancel()`` stops.

    ``concurrency`` is each arm's number of requests in flight (None: the engine's slots);
    ``niceness`` > 0 lowers embedded workers' CPU priority (an interactive UI stays snappy).
    ``run()`` raises ``ReplayLocked`` when another process replays the experiment (the lock lives
    in ``locks_dir``, default ``WORKSPACE/locks``; ``command`` is what it says runs it) and
    ``NothingToResume`` for a completed experiment; ``stale_lock`` is a dead holder's lock taken over.
    """

    db_path: Path
    experiment_id: int
    log_dir: Path | None = None
    backend_factory: BackendFactory | None = None
    retry_errors: bool = False
    concurrency: int | None = None
    niceness: int = 0
    locks_dir: Path | None = None
    command: str | None = None
    stale_lock: dict | None = None
    _cancel: threading.Event = field(default_factory=threading.Event)
    _engines: object | None = None

    def cancel(self) -> None:
        """Stop soon: in-flight generations are abandoned (they rerun on resume)."""
        self._cancel.set()
        if self._engines is not None:
            self._engines.kill()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> Iterator[Progress]:
        """Run every pending task; yield a ``Progress`` after each stored run."""
        store = Store(self.db_path)
        threads: list[threading.Thread] = []
        queues: dict[str, queue.Queue] = {}
        widths: dict[str, int] = {}  # arm -> its threads (requests in flight)
        clean = False  # set when every task ran: the engines then close gracefully
        lock = ReplayLock(self.locks_dir or Path(self.db_path).parent / LOCKS_DIR,
                          self.experiment_id, command=self.command)
        try:
            exp = store.get_experiment(self.experiment_id)
            if exp.status == "completed":
                raise NothingToResume(f"experiment {exp.id} is complete; nothing to resume")
            store.require_writable()
            lock.acquire()
            self.stale_lock = lock.stale
            if self.retry_errors:
                store.delete_error_runs(exp.id)
            variants = {arm: store.get_variant(vid) for arm, vid in exp.arms.items()}
            tasks = pending_tasks(store, exp)
            progress = Progress(done=0, total=len(tasks), started=time.monotonic())
            if staged(exp):
                progress.canary = plan = plan_canary(store, exp)
                sync_events(store, exp.id, plan.events)
                progress.total = _staged_total(plan, 0)
            store.set_experiment(exp.id, status="active",
                                 **({} if exp.started_at else {"started_at": utcnow()}))
            yield progress
            if not tasks:
                progress.finished = clean = True
                yield progress
                return
            backends = self._start_engines(store, variants, exp.id, progress)
            if backends is None:
                store.set_experiment(exp.id, status="paused")
                yield progress
                return
            results: queue.Queue = queue.Queue()
            for arm, variant in variants.items():
                queues[arm] = queue.Queue()
                backend = backends[arm]
                width = widths[arm] = max(1, self.concurrency or getattr(backend, "slots", 1) or 1)
                progress.engines[arm] = f"{engine_label(backend)} · {width} in flight"
                for n in range(width):
                    thread = threading.Thread(
                        target=self._serve_arm, name=f"replay-{arm}-{n}", daemon=True,
                        args=(queues[arm], backend, variant, results))
                    thread.start()
                    threads.append(thread)
            for task in tasks:
                queues[task.arm].put(task)
            yield progress
            outstanding = len(tasks)
            while outstanding and not self._cancel.is_set():
                try:
                    result = results.get(timeout=0.1)
                except queue.Empty:
                    continue
                if self._cancel.is_set():
                    break
                if result.generation.engine_unavailable:  # not an answer: store nothing, stop
                    progress.stopped_reason = (f"arm {result.task.arm}: "
                                               f"{result.generation.error}")
                    self.cancel()
                    break
                outstanding -= 1
                run = self._store_result(store, exp, result)
                progress.done += 1
                failed = bool(run["error"])  # an engine error, or an empty answer
                progress.errors += int(failed)
                progress.fallbacks += int(result.task.fallback)
                if failed and exp.mode != "shadow" and result.task.arm == "B" and "A" in queues:
                    queues["A"].put(Task(result.task.item, "A", fallback=True))
                    outstanding += 1
                    progress.total += 1
                progress.last = run
                if not outstanding and staged(exp):  # a block is served: its health decides
                    outstanding = self._next_block(store, exp, queues, progress)
                yield progress
            progress.cancelled = self._cancel.is_set()
            progress.finished = clean = not progress.cancelled
            if progress.cancelled:
                store.set_experiment(exp.id, status="paused")
            yield progress
        finally:
            if not clean and not self._cancel.is_set():
                # Ended early (Ctrl-C in the caller, an error): abandon in-flight generations
                # at once; closing a worker waits for its current request otherwise.
                self.cancel()
            self._cancel.set()
            for arm, q in queues.items():
                for _ in range(widths.get(arm, 0)):  # one stop sign per thread of the arm
                    q.put(None)
            if self._engines is not None:
                self._engines.close()
            for thread in threads:
                thread.join(10)
            self._engines = None
            lock.release()  # after the engines: a next replay never meets this one's servers
            store.close()

    @staticmethod
    def _next_block(store: Store, exp: Experiment, queues: dict[str, queue.Queue],
                    progress: Progress) -> int:
        """Plan a staged canary again from the stored runs: store its events, queue the next
        block; return how many tasks were queued (0: the rollout is over)."""
        plan = plan_canary(store, exp)
        sync_events(store, exp.id, plan.events)
        progress.canary = plan
        for item, arm in plan.next_block:
            queues[arm].put(Task(item, arm, fallback=arm == "A" and _b_failed(store, exp, item)))
        progress.total = _staged_total(plan, progress.done)
        return len(plan.next_block)

    def _start_engines(self, store: Store, variants: dict[str, Variant], exp_id: int,
                       progress: Progress) -> dict[str, Backend] | None:
        """Build every arm's backend; on failure say why on ``progress`` and return None."""
        from .arm_engines import ArmEngines, FactoryEngines

        if self.backend_factory is not None:
            self._engines = FactoryEngines(self.backend_factory)
        else:
            self._engines = ArmEngines(store, self.log_dir, concurrency=self.concurrency,
                                       niceness=self.niceness)
        try:
            return self._engines.build(variants, exp_id)
        except Exception as exc:  # noqa: BLE001 - a server that will not start is reported
            progress.stopped_reason = f"could not start the engines: {exc}"
            progress.cancelled = True
            return None

    def _serve_arm(self, tasks: queue.Queue, backend: Backend, variant: Variant,
                   results: queue.Queue) -> None:
        engine = engine_label(backend)
        while not self._cancel.is_set():
            task = tasks.get()
            if task is None or self._cancel.is_set():
                return
            try:
                generation = backend.generate(build_request(task.item, variant))
            except Exception as exc:  # noqa: BLE001 - a backend bug must not hang the replay
                generation = Generation.failed(f"{type(exc).__name__}: {exc}")
            results.put(_Result(task, generation, variant, engine))

    @staticmethod
    def _store_result(store: Store, exp: Experiment, result: _Result) -> dict:
        gen, task, variant = result.generation, result.task, result.variant
        scores = score_output(gen.text, task.item.reference, variant.json_schema) if gen.ok else None
        run = {
            "experiment_id": exp.id, "item_id": task.item.id, "variant_id": variant.id,
            "arm": task.arm, "output": gen.text, "latency_ms": gen.latency_ms,
            "ttft_ms": gen.ttft_ms, "prompt_tokens": gen.prompt_tokens,
            "completion_tokens": gen.completion_tokens, "decode_tps": gen.decode_tps,
            "prompt_tps": gen.prompt_tps, "finish_reason": gen.finish_reason,
            "error": gen.error or (scores.run_error() if scores else None),
            "fallback": task.fallback, "engine": result.engine,
            "usage_source": gen.extra.get("usage_source"),
            **(scores.columns() if scores else {}),
        }
        store.record_run(run)
        return {**run, "item_key": task.item.key}
