"""Replay with several requests in flight per arm, an engine that goes away, and 3+ arms.

These use small in-process backends (fast, exact timing control); the same behaviour on a real
llama-server is tested in tests/engines/test_replay_on_server.py.
"""

import threading
import time
from collections import Counter

from support import max_overlap
from workbench.engines.base import Generation
from workbench.experiments.replay import Replay, pending_tasks
from workbench.experiments.report import build_report, render_markdown, render_text
from workbench.store import ModelRecord, Store


class Recorder:
    """A backend with ``slots`` slots that sleeps and records when each request ran."""

    def __init__(self, arm, slots=4, delay=0.15, fail_after=None, text=None):
        self.arm, self.slots, self.delay = arm, slots, delay
        self.engine = f"recorder {arm}"
        self.fail_after, self.text = fail_after, text
        self.intervals, self.calls = [], 0
        self.lock = threading.Lock()

    def generate(self, request):
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.fail_after is not None and n > self.fail_after:
            return Generation.unavailable("endpoint http://127.0.0.1:9 not reachable: "
                                          "connection refused (5 attempts)")
        start = time.monotonic()
        time.sleep(self.delay)
        self.intervals.append((start, time.monotonic()))
        text = self.text(request) if self.text else f"{self.arm} says SEV-2"
        return Generation(text=text, latency_ms=self.delay * 1000, ttft_ms=10.0,
                          prompt_tokens=10, completion_tokens=3,
                          extra={"usage_source": "stream"})

    def close(self):
        pass


def _experiment(store, n_items=8, arms=("A", "B")):
    store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    variants = {arm: store.create_variant(f"v-{arm}", "fake") for arm in arms}
    items = [{"key": f"inc-{i:03d}", "input": f"Incident {i}", "reference": {"severity": "SEV-2"}}
             for i in range(n_items)]
    ds = store.save_dataset("ds", items, source_path=None, sha256=None, n_rejected=0)
    return store.create_experiment("e", ds, {arm: v.id for arm, v in variants.items()})


def _factory(backends):
    return lambda arm, variant, exp_id: backends[arm]


def test_each_arm_keeps_its_slots_busy_and_every_result_is_stored_once(tmp_path):
    store = Store(tmp_path / "w.db")
    exp = _experiment(store, n_items=8)
    backends = {"A": Recorder("A", slots=4), "B": Recorder("B", slots=2)}
    progress = list(Replay(store.path, exp.id, backend_factory=_factory(backends)).run())
    assert progress[-1].finished and progress[-1].done == 16
    assert max_overlap(backends["A"].intervals) == 4  # really in flight together
    assert max_overlap(backends["B"].intervals) == 2
    assert max_overlap(backends["A"].intervals + backends["B"].intervals) == 6
    runs = store.runs(exp.id)
    assert Counter((r["item_id"], r["arm"]) for r in runs).most_common(1)[0][1] == 1
    assert {r["engine"] for r in runs} == {"recorder A", "recorder B"}
    assert {r["usage_source"] for r in runs} == {"stream"}
    assert progress[-1].engines == {"A": "recorder A · 4 in flight", "B": "recorder B · 2 in flight"}


def test_concurrency_argument_overrides_the_slots(tmp_path):
    store = Store(tmp_path / "w.db")
    exp = _experiment(store, n_items=6)
    backends = {"A": Recorder("A", slots=4), "B": Recorder("B", slots=4)}
    list(Replay(store.path, exp.id, backend_factory=_factory(backends), concurrency=1).run())
    assert max_overlap(backends["A"].intervals) == 1 and max_overlap(backends["B"].intervals) == 1


def test_an_engine_that_goes_away_stops_the_replay_and_resume_finishes_it(tmp_path):
    store = Store(tmp_path / "w.db")
    exp = _experiment(store, n_items=10)
    dying = {"A": Recorder("A", slots=2, delay=0.02), "B": Recorder("B", slots=2, delay=0.02,
                                                                    fail_after=4)}
    progress = list(Replay(store.path, exp.id, backend_factory=_factory(dying)).run())
    last = progress[-1]
    assert last.cancelled and not last.finished
    assert "arm B" in last.stopped_reason and "not reachable" in last.stopped_reason
    runs = store.runs(exp.id)
    assert all(r["error"] is None for r in runs)  # nothing stored for the lost requests
    assert store.get_experiment(exp.id).status == "paused"
    assert len(runs) < 20 and len(pending_tasks(store, store.get_experiment(exp.id))) == 20 - len(runs)
    healthy = {"A": Recorder("A", slots=2, delay=0.01), "B": Recorder("B", slots=2, delay=0.01)}
    assert list(Replay(store.path, exp.id, backend_factory=_factory(healthy)).run())[-1].finished
    pairs = Counter((r["item_id"], r["arm"]) for r in store.runs(exp.id))
    assert len(pairs) == 20 and set(pairs.values()) == {1}


def test_three_arms_in_shadow_mode_are_all_replayed_and_ranked(tmp_path):
    store = Store(tmp_path / "w.db")
    exp = _experiment(store, n_items=12, arms=("A", "B", "C"))
    # C always right, B right on even items, A never: ranking C > B > A
    answers = {"A": lambda r: "SEV-4", "C": lambda r: "SEV-2",
               "B": lambda r: "SEV-2" if int(r.messages[-1]["content"].split()[-1]) % 2 == 0
               else "SEV-4"}
    backends = {arm: Recorder(arm, slots=2, delay=0.0, text=answers[arm]) for arm in "ABC"}
    assert list(Replay(store.path, exp.id, backend_factory=_factory(backends)).run())[-1].finished
    assert Counter(r["arm"] for r in store.runs(exp.id)) == {"A": 12, "B": 12, "C": 12}
    report = build_report(store, exp.id)
    ranking = report["bradley_terry"]["rows"]
    assert [r["name"] for r in ranking] == ["C", "B", "A"]
    text = render_text(report)
    assert "Ranking of 3 arms (Bradley-Terry from automatic accuracy" in text
    assert "## Ranking" in render_markdown(report)
    assert set(report["comparisons"]) == {"B", "C"}  # each candidate against A


def test_a_bad_schema_stored_by_an_older_version_does_not_crash_the_replay(tmp_path):
    store = Store(tmp_path / "w.db")
    exp = _experiment(store, n_items=3)
    store.db.execute("UPDATE variants SET json_schema = ? WHERE name = 'v-B'",
                     ['{"type": "objekt"}'])  # what create_variant now refuses
    store.db.conn.commit()
    backends = {"A": Recorder("A", delay=0.0), "B": Recorder("B", delay=0.0, text=lambda r: "{}")}
    assert list(Replay(store.path, exp.id, backend_factory=_factory(backends)).run())[-1].finished
    b_runs = [r for r in store.runs(exp.id) if r["arm"] == "B"]
    assert len(b_runs) == 3 and all(r["json_valid"] is None and r["error"] is None for r in b_runs)
    assert all("JSON schema is invalid" in r["scores"] for r in b_runs)
