"""Replays on a real managed llama-server (bundled model, 127.0.0.1): shared server, requests
really in flight together, a server killed mid-replay then resumed, LoRA adapter variants, three
arms, and a model that llama-server cannot load."""

import os
import signal
import threading
import time
from collections import Counter

import pytest

from support import incident, max_overlap, write_jsonl
from workbench.datasets import import_dataset
from workbench.engines.openai_http import HttpEngine
from workbench.experiments.arm_engines import ArmEngines
from workbench.experiments.replay import Replay, pending_tasks
from workbench.experiments.report import build_report, render_text
from workbench.models.registry import BUNDLED_ID, Registry
from workbench.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture
def server_ws(ws, llama_server_binary):
    """The workspace with the bundled model on a managed llama-server (4 slots, 1 thread)."""
    ws.store.set_model_settings(BUNDLED_ID, engine="server", server_slots=4, n_threads=2)
    return ws


def _dataset(ws, tmp_path, n):
    return import_dataset(ws.store, write_jsonl(tmp_path / "ds.jsonl",
                                                [incident(i) for i in range(n)])).dataset_id


def _variants(ws, n_arms, max_tokens=6, **extra):
    return {chr(65 + k): ws.store.create_variant(f"v{k}", BUNDLED_ID, max_tokens=max_tokens,
                                                 system_prompt=f"Answer briefly ({k}).",
                                                 **extra).id
            for k in range(n_arms)}


def _pairs(ws, exp_id):
    with Store(ws.store.path) as store:
        return Counter((r["item_id"], r["arm"]) for r in store.runs(exp_id))


def test_three_arms_share_one_server_with_requests_in_flight_together(server_ws, tmp_path,
                                                                     monkeypatch):
    ws = server_ws
    exp = ws.store.create_experiment("three", _dataset(ws, tmp_path, 6), _variants(ws, 3))
    intervals, lock = [], threading.Lock()
    original = HttpEngine.generate

    def timed(self, request):
        start = time.monotonic()
        out = original(self, request)
        with lock:
            intervals.append((start, time.monotonic()))
        return out

    monkeypatch.setattr(HttpEngine, "generate", timed)
    job = Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs", concurrency=2)
    servers = []
    for progress in job.run():
        if job._engines is not None and not servers:
            servers = list(getattr(job._engines, "servers", {}).values())
    assert progress.finished, progress.stopped_reason
    assert len(servers) == 1  # one model in memory for the three arms
    runs = ws.store.runs(exp.id)
    assert Counter(r["arm"] for r in runs) == {"A": 6, "B": 6, "C": 6}
    assert all(r["error"] is None and r["output"] for r in runs)
    assert all(0 < r["ttft_ms"] <= r["latency_ms"] and r["prompt_tokens"] > 0
               and 0 < r["completion_tokens"] <= 6 for r in runs)
    assert {r["usage_source"] for r in runs} == {"stream"}
    assert all("llama-server" in r["engine"] and "managed" in r["engine"] for r in runs)
    assert max_overlap(intervals) >= 3  # 3 arms x 2 in flight on 4 slots: really overlapping
    report = build_report(ws.store, exp.id)
    assert report["bradley_terry"] is not None and len(report["bradley_terry"]["rows"]) == 3
    assert "llama-server" in render_text(report)
    assert not any(s.alive for s in servers)  # stopped when the replay ended


def test_killed_server_stops_the_replay_and_resume_gives_one_row_per_item_and_arm(server_ws,
                                                                                 tmp_path):
    ws = server_ws
    exp = ws.store.create_experiment("kill", _dataset(ws, tmp_path, 10),
                                     _variants(ws, 2, max_tokens=16))
    job = Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs")
    killed = None
    for progress in job.run():
        if killed is None and progress.done >= 3:
            server = next(iter(job._engines.servers.values()))
            killed = server.pid
            os.kill(killed, signal.SIGKILL)
    assert killed is not None and not progress.finished
    assert "SIGKILL" in progress.stopped_reason and "arm" in progress.stopped_reason
    with Store(ws.store.path) as store:
        runs = store.runs(exp.id)
        assert all(r["error"] is None for r in runs)  # the dead server left no error rows
        assert store.get_experiment(exp.id).status == "paused"
        assert len(runs) + len(pending_tasks(store, store.get_experiment(exp.id))) == 20
    final = list(Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs").run())[-1]
    assert final.finished
    pairs = _pairs(ws, exp.id)
    assert len(pairs) == 20 and set(pairs.values()) == {1}


@pytest.fixture(scope="module")
def adapter_gguf(tmp_path_factory):
    pytest.importorskip("peft")
    from workbench.export.adapter_gguf import write_adapter_gguf, write_random_adapter
    from workbench.models.registry import bundled_model_path

    folder = tmp_path_factory.mktemp("adapter")
    peft_dir = write_random_adapter(bundled_model_path(), folder / "peft", std=0.5)
    out = folder / "tuned-adapter.gguf"
    write_adapter_gguf(peft_dir, out, base_gguf=bundled_model_path())
    return str(out)


@pytest.mark.parametrize("engine", ["server", "worker"])
def test_adapter_variant_changes_the_answers_and_shares_the_base_model(ws, tmp_path, engine,
                                                                      adapter_gguf, request):
    if engine == "server":
        request.getfixturevalue("llama_server_binary")
    ws.store.set_model_settings(BUNDLED_ID, engine=engine, server_slots=4, n_threads=2)
    base = ws.store.create_variant("base", BUNDLED_ID, max_tokens=12)
    tuned = ws.store.create_variant("tuned", BUNDLED_ID, max_tokens=12, lora_path=adapter_gguf)
    exp = ws.store.create_experiment("lora", _dataset(ws, tmp_path, 3),
                                     {"A": base.id, "B": tuned.id})
    job = Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs")
    servers = None
    for progress in job.run():
        if servers is None and job._engines is not None:
            servers = dict(getattr(job._engines, "servers", {}))
    assert progress.finished, progress.stopped_reason
    runs = ws.store.runs(exp.id)
    assert all(r["error"] is None for r in runs)
    by_item = {}
    for r in runs:
        by_item.setdefault(r["item_id"], {})[r["arm"]] = r["output"]
    assert any(v["A"] != v["B"] for v in by_item.values())  # the adapter is applied to B only
    if engine == "server":
        assert len(servers) == 1  # base and tuned arms on one server
        spec = next(iter(servers.values())).spec
        assert spec.lora_paths == (adapter_gguf,)


def test_a_model_llama_server_cannot_load_is_a_recorded_error_and_canary_falls_back(
        server_ws, tmp_path, tiny_broken_gguf):
    ws = server_ws
    Registry(ws.store).add(tiny_broken_gguf, model_id="broken")
    ws.store.set_model_settings("broken", engine="server")
    a = ws.store.create_variant("good", BUNDLED_ID, max_tokens=4)
    b = ws.store.create_variant("bad", "broken", max_tokens=4)
    records = [incident(i, user="u-canary" if i % 2 else "u-x") for i in range(4)]
    ds = import_dataset(ws.store, write_jsonl(tmp_path / "c.jsonl", records)).dataset_id
    exp = ws.store.create_experiment("canary", ds, {"A": a.id, "B": b.id}, mode="canary",
                                     weight_b=0.0, canary_users=["u-canary"])
    progress = list(Replay(ws.store.path, exp.id, log_dir=ws.workspace.root / "logs").run())
    assert progress[-1].finished
    runs = ws.store.runs(exp.id)
    b_runs = [r for r in runs if r["arm"] == "B"]
    assert len(b_runs) == 2 and all("failed to load" in r["error"] for r in b_runs)
    assert sum(r["fallback"] for r in runs) == 2


def test_the_plan_names_each_arms_engine_and_its_width(server_ws, tmp_path):
    ws = server_ws
    variants = {arm: ws.store.get_variant(vid) for arm, vid in _variants(ws, 2).items()}
    plans = ArmEngines(ws.store).plan(variants)
    assert [(p.kind, p.concurrency) for p in plans] == [("server", 2), ("server", 2)]
    ws.store.set_model_settings(BUNDLED_ID, engine="worker")
    assert [(p.kind, p.concurrency) for p in ArmEngines(ws.store).plan(variants)] == \
        [("worker", 1), ("worker", 1)]
