"""A model that answers with no text: the replay stores the run as failed (counted as an error)."""

import json

from workbench.engines.base import Generation
from workbench.experiments.replay import Replay
from workbench.experiments.scoring import EMPTY_OUTPUT_ERROR
from workbench.store import ModelRecord, Store


class Fixed:
    """An in-process backend that answers every request with ``text``."""

    slots = 1

    def __init__(self, arm, text):
        self.engine, self.text = f"fixed {arm}", text

    def generate(self, request):
        return Generation(text=self.text, latency_ms=5.0, ttft_ms=1.0, prompt_tokens=4,
                          completion_tokens=0 if not self.text.strip() else 3)

    def close(self):
        pass


def test_empty_answers_are_stored_as_failed_runs(tmp_path):
    store = Store(tmp_path / "w.db")
    store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    variants = {arm: store.create_variant(f"v-{arm}", "fake") for arm in ("A", "B")}
    items = [{"key": f"inc-{i}", "input": f"Incident {i}", "reference": {"severity": "SEV-2"}}
             for i in range(3)]
    ds = store.save_dataset("ds", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("e", ds, {arm: v.id for arm, v in variants.items()})
    backends = {"A": Fixed("A", "SEV-2: restart the pod."), "B": Fixed("B", "  \n")}
    progress = list(Replay(store.path, exp.id,
                           backend_factory=lambda arm, variant, exp_id: backends[arm]).run())
    assert progress[-1].finished
    runs = store.runs(exp.id)
    by_arm = {arm: [r for r in runs if r["arm"] == arm] for arm in ("A", "B")}
    assert len(by_arm["A"]) == len(by_arm["B"]) == 3
    assert all(r["error"] is None for r in by_arm["A"])
    assert all(r["error"] == EMPTY_OUTPUT_ERROR for r in by_arm["B"])
    assert all(json.loads(r["scores"])["empty_output"] is True for r in by_arm["B"])
    store.close()
    assert progress[-1].errors == 3  # counted live too


def test_an_empty_canary_answer_falls_back_to_a(tmp_path):
    store = Store(tmp_path / "w.db")
    store.upsert_model(ModelRecord(id="fake", path="/fake.gguf"))
    variants = {arm: store.create_variant(f"v-{arm}", "fake") for arm in ("A", "B")}
    items = [{"key": f"inc-{i}", "input": f"Incident {i}", "user_id": "u-canary"} for i in range(2)]
    ds = store.save_dataset("ds", items, source_path=None, sha256=None, n_rejected=0)
    exp = store.create_experiment("e", ds, {arm: v.id for arm, v in variants.items()},
                                  mode="canary", weight_b=0.0, canary_users=["u-canary"])
    backends = {"A": Fixed("A", "SEV-2: restart the pod."), "B": Fixed("B", "")}
    progress = list(Replay(store.path, exp.id,
                           backend_factory=lambda arm, variant, exp_id: backends[arm]).run())
    runs = store.runs(exp.id)
    assert progress[-1].finished and progress[-1].fallbacks == 2
    assert sorted((r["arm"], bool(r["fallback"])) for r in runs) == [
        ("A", True), ("A", True), ("B", False), ("B", False)]
    store.close()
