"""Replay on real worker processes and a real SQLite file: modes, stickiness, fallback, resume."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from support import incident, write_jsonl
from workbench.experiments.allocation import assign_arm, unit_hash
from workbench.datasets import import_dataset
from workbench.models.registry import BUNDLED_ID, Registry
from workbench.experiments.replay import Replay, pending_tasks, replay_size
from workbench.store import Item, Store

pytestmark = pytest.mark.slow


def _setup(ws, tmp_path, n_items=4, users=None, b_model=BUNDLED_ID, **exp_kwargs):
    records = [incident(i, user=(users[i % len(users)] if users else None)) for i in range(n_items)]
    ds = import_dataset(ws.store, write_jsonl(tmp_path / "ds.jsonl", records)).dataset_id
    a = ws.store.create_variant("A-var", BUNDLED_ID, max_tokens=3, system_prompt="Be brief.")
    b = ws.store.create_variant("B-var", b_model, max_tokens=3)
    return ws.store.create_experiment("t", ds, {"A": a.id, "B": b.id}, **exp_kwargs)


def _run(ws, exp_id):
    job = Replay(ws.store.path, exp_id, log_dir=ws.workspace.root / "logs")
    return list(job.run())


def test_shadow_sends_every_item_to_both_variants(ws, tmp_path):
    exp = _setup(ws, tmp_path, n_items=3)
    progress = _run(ws, exp.id)
    assert progress[-1].finished and progress[-1].done == 6 and progress[-1].total == 6
    runs = ws.store.runs(exp.id)
    assert Counter(r["arm"] for r in runs) == {"A": 3, "B": 3}
    assert all(r["error"] is None and r["output"] for r in runs)
    assert all(r["latency_ms"] > 0 and r["ttft_ms"] > 0 and r["completion_tokens"] == 3
               for r in runs)
    assert all(r["severity_ok"] in (0, 1) for r in runs)  # references carry a severity
    assert ws.store.get_experiment(exp.id).status == "active"
    assert pending_tasks(ws.store, ws.store.get_experiment(exp.id)) == []
    assert _run(ws, exp.id)[-1].done == 0  # idempotent: nothing left to do


def test_split_assignment_is_sticky_per_user_and_follows_the_weight():
    items = [Item(id=i, dataset_id=1, key=f"k{i}", user_id=f"user{i % 50}") for i in range(2000)]
    arms = {}
    for item in items:
        arm = assign_arm(item, mode="split", weight_b=0.3, seed=1)
        assert arms.setdefault(item.user_id, arm) == arm  # same user, same arm
    share_b = sum(a == "B" for a in arms.values()) / len(arms)
    assert 0.1 < share_b < 0.5
    anonymous = [Item(id=i, dataset_id=1, key=f"a{i}") for i in range(4000)]
    share = sum(assign_arm(i, mode="split", weight_b=0.3, seed=1) == "B" for i in anonymous) / 4000
    assert abs(share - 0.3) < 0.03
    assert unit_hash(1, "user7") == unit_hash(1, "user7") != unit_hash(2, "user7")


def test_canary_users_always_get_b():
    canary = [Item(id=i, dataset_id=1, key=f"k{i}", user_id="u-canary") for i in range(50)]
    assert {assign_arm(i, mode="canary", weight_b=0.0, canary_users=["u-canary"]) for i in canary} == {"B"}
    others = [Item(id=i, dataset_id=1, key=f"k{i}", user_id=f"u{i}") for i in range(50)]
    assert {assign_arm(i, mode="canary", weight_b=0.0, canary_users=["u-canary"]) for i in others} == {"A"}


def test_split_replay_runs_each_item_once_on_its_sticky_arm(ws, tmp_path):
    exp = _setup(ws, tmp_path, n_items=6, users=["u-a", "u-b", "u-c"], mode="split", weight_b=0.5)
    _run(ws, exp.id)
    runs = ws.store.runs(exp.id)
    assert len(runs) == 6
    items = {i.id: i for i in ws.store.items(exp.dataset_id)}
    by_user = {}
    for run in runs:
        by_user.setdefault(items[run["item_id"]].user_id, set()).add(run["arm"])
    assert all(len(arms) == 1 for arms in by_user.values())


def test_canary_b_failure_falls_back_to_a(ws, tmp_path, tiny_broken_gguf):
    Registry(ws.store).add(tiny_broken_gguf, model_id="broken")
    exp = _setup(ws, tmp_path, n_items=4, users=["u-canary", "u-x"], b_model="broken",
                 mode="canary", weight_b=0.0, canary_users=["u-canary"])
    progress = _run(ws, exp.id)
    runs = ws.store.runs(exp.id)
    b_runs = [r for r in runs if r["arm"] == "B"]
    fallbacks = [r for r in runs if r["fallback"]]
    assert len(b_runs) == 2 and all("failed to load" in r["error"] for r in b_runs)
    assert len(fallbacks) == 2 and all(r["arm"] == "A" and r["error"] is None for r in fallbacks)
    assert len(runs) == 6 and progress[-1].fallbacks == 2
    assert pending_tasks(ws.store, ws.store.get_experiment(exp.id)) == []


def _cli(ws, *args):
    return [sys.executable, "-m", "workbench", "--workspace", str(ws.workspace.root), *args]


def _count(ws, exp_id):
    with Store(ws.store.path) as store:
        return store.run_count(exp_id)


def _interrupt_then_resume(ws, tmp_path, sig):
    path = write_jsonl(tmp_path / "long.jsonl", [incident(i) for i in range(8)])
    ws.store.create_variant("a8", BUNDLED_ID, max_tokens=8)
    ws.store.create_variant("b8", BUNDLED_ID, max_tokens=8, system_prompt="Be terse.")
    proc = subprocess.Popen(_cli(ws, "replay", str(path), "--a", "a8", "--b", "b8", "--name", "kill"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    exp_id = None
    while time.monotonic() < deadline:
        with Store(ws.store.path) as store:
            exps = store.list_experiments()
        if exps and _count(ws, exps[0].id) >= 3:
            exp_id = exps[0].id
            break
        time.sleep(0.05)
    assert exp_id is not None, proc.communicate()
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    stored = _count(ws, exp_id)
    assert 3 <= stored < 16
    return proc, err, exp_id


def test_sigkill_then_resume_gives_exactly_one_row_per_item_and_variant(ws, tmp_path):
    proc, _, exp_id = _interrupt_then_resume(ws, tmp_path, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    with Store(ws.store.path) as store:
        exp = store.get_experiment(exp_id)
        stored, planned = replay_size(store, exp)
        assert planned == 16 and stored + len(pending_tasks(store, exp)) == planned
    done = subprocess.run(_cli(ws, "replay", "--resume", str(exp_id)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Store(ws.store.path) as store:
        pairs = Counter((r["item_id"], r["variant_id"]) for r in store.runs(exp_id))
    assert len(pairs) == 16 and set(pairs.values()) == {1}


def test_ctrl_c_stops_cleanly_and_marks_the_experiment_paused(ws, tmp_path):
    proc, err, exp_id = _interrupt_then_resume(ws, tmp_path, signal.SIGINT)
    assert proc.returncode == 130
    assert f"workbench replay --resume {exp_id}" in err
    assert "Traceback" not in err
    with Store(ws.store.path) as store:
        assert store.get_experiment(exp_id).status == "paused"
    done = subprocess.run(_cli(ws, "replay", "--resume", str(exp_id)), capture_output=True, text=True)
    assert done.returncode == 0
    assert _count(ws, exp_id) == 16
