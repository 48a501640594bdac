"""One replay per experiment: a lock held by another process, a SIGKILLed holder, a completed
experiment. Real processes and real lock files; no model (in-process fake backends)."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest

from support import experiment_with_runs
from workbench.engines.base import Generation
from workbench.experiments.replay import Replay
from workbench.experiments.replay_lock import (NothingToResume, ReplayLock, ReplayLocked,
                                               lock_path)
from workbench.store import Store

HOLDER = """
import sys
from workbench.experiments.replay_lock import ReplayLock
lock = ReplayLock(sys.argv[1], int(sys.argv[2]), command="workbench replay --resume 1").acquire()
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes stdin (or kills this process)
lock.release()
print("released", flush=True)
"""


class Echo:
    slots = 1
    engine = "echo"

    def generate(self, request):
        return Generation(text="SEV-2 echo", latency_ms=1.0, completion_tokens=2)

    def close(self):
        pass


def _workspace(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    store = Store(root / "workbench.db")
    exp = experiment_with_runs(store, 2)
    store.db.execute("DELETE FROM runs WHERE arm = 'B'")  # something left to resume
    return root, store, exp


def _hold(root, exp_id):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / "locks"), str(exp_id)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _replay(store, exp_id):
    return Replay(store.path, exp_id, backend_factory=lambda arm, variant, exp: Echo())


def _cli(root, *args):
    return subprocess.run([sys.executable, "-m", "workbench", "--workspace", str(root), *args],
                          capture_output=True, text=True, timeout=120)


def test_a_replay_held_by_another_process_is_refused_with_who_holds_it(tmp_path):
    root, store, exp = _workspace(tmp_path)
    holder = _hold(root, exp.id)
    try:
        with pytest.raises(ReplayLocked) as refused:
            next(_replay(store, exp.id).run())
        message = str(refused.value)
        assert message.startswith(f"experiment {exp.id} is already being replayed by pid "
                                  f"{holder.pid} on {socket.gethostname()} since 20")
        assert "(workbench replay --resume 1)" in message
        assert refused.value.holder["pid"] == holder.pid
        cli = _cli(root, "replay", "--resume", str(exp.id))
        assert cli.returncode == 2 and "Traceback" not in cli.stderr
        assert f"error: experiment {exp.id} is already being replayed by pid {holder.pid}" \
            in cli.stderr
        assert store.run_count(exp.id) == 2  # nothing ran, nothing changed
        assert store.get_experiment(exp.id).status == "draft"
    finally:
        holder.stdin.close()
        assert holder.stdout.readline().strip() == "released"
        holder.wait(10)
    progress = list(_replay(store, exp.id).run())  # released cleanly: free, nothing stale
    assert progress[-1].finished and store.run_count(exp.id) == 4
    assert lock_path(root / "locks", exp.id).read_text() == ""


def test_a_sigkilled_holder_frees_the_lock_and_its_stale_record_is_taken_over(tmp_path):
    root, store, exp = _workspace(tmp_path)
    holder = _hold(root, exp.id)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    stale = json.loads(lock_path(root / "locks", exp.id).read_text())
    assert stale["pid"] == holder.pid  # the dead holder's record is still in the file
    replay = _replay(store, exp.id)
    progress = list(replay.run())
    assert progress[-1].finished and store.run_count(exp.id) == 4
    assert replay.stale_lock["pid"] == holder.pid


def test_the_same_process_cannot_replay_one_experiment_twice(tmp_path):
    root, store, exp = _workspace(tmp_path)
    first = _replay(store, exp.id).run()
    next(first)  # holds the lock now, as the UI's replay thread would
    try:
        with pytest.raises(ReplayLocked, match=f"pid {os.getpid()}"):
            next(_replay(store, exp.id).run())
        path = lock_path(root / "locks", exp.id)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        first.close()
    with ReplayLock(root / "locks", exp.id):  # closing the generator released it
        pass


def test_resume_of_a_completed_experiment_is_refused(tmp_path):
    root, store, exp = _workspace(tmp_path)
    store.set_experiment(exp.id, status="completed", winner="A")
    with pytest.raises(NothingToResume, match=f"^experiment {exp.id} is complete; nothing to resume$"):
        next(_replay(store, exp.id).run())
    cli = _cli(root, "replay", "--resume", str(exp.id))
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert f"error: experiment {exp.id} is complete; nothing to resume" in cli.stderr
    assert store.run_count(exp.id) == 2 and store.get_experiment(exp.id).status == "completed"
