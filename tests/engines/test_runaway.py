"""Runaway generations are bounded: a chat template that never ends is killed at the request's
time limit, one that allocates without bound hits the worker's memory limit, and Ctrl-C stops a
CLI replay within seconds while its worker is stuck. All on copies of the bundled model whose
chat template is hostile (written with gguf's own ``gguf-new-metadata``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.engines.base import GenerationRequest
from workbench.engines.llama_cpp import EngineSpec
from workbench.engines.worker import ModelWorker, memory_limit_bytes, request_timeout_for

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}hi"
HUNGRY = "{{ 'x' * 2000000000 }}"
MARK = "WORKBENCH_RUNAWAY_TEST"
REPO = Path(__file__).resolve().parents[2]


def _with_template(source: Path, target: Path, template: str) -> Path:
    new_metadata = Path(sys.executable).with_name("gguf-new-metadata")
    subprocess.run([str(new_metadata), str(source), str(target), "--chat-template", template,
                    "--force"], check=True, capture_output=True, timeout=300)
    return target


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    from workbench.models.registry import bundled_model_path

    folder = tmp_path_factory.mktemp("hostile")
    return {"endless": _with_template(bundled_model_path(), folder / "endless.gguf", ENDLESS),
            "hungry": _with_template(bundled_model_path(), folder / "hungry.gguf", HUNGRY)}


def _request(max_tokens=8):
    return GenerationRequest(messages=[{"role": "user", "content": "Say hi."}], max_tokens=max_tokens)


def test_request_limits_follow_the_request(monkeypatch):
    monkeypatch.delenv("WORKBENCH_REQUEST_TIMEOUT_S", raising=False)
    assert request_timeout_for(_request(8)) == 128.0
    assert request_timeout_for(_request(100000)) == 900.0
    assert request_timeout_for(_request(8), fixed=3.0) == 3.0
    monkeypatch.setenv("WORKBENCH_REQUEST_TIMEOUT_S", "7")
    assert request_timeout_for(_request(8)) == 7.0


def test_memory_limit_default_and_override(monkeypatch, tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"\0" * 1024 * 1024)
    monkeypatch.delenv("WORKBENCH_WORKER_MEMORY_MB", raising=False)
    cpu = memory_limit_bytes(EngineSpec(str(model), n_ctx=2048))
    assert cpu == 2 * 1024 * 1024 + 2048 * 1024 * 1024 + 2048 * 1024 * 1024
    assert memory_limit_bytes(EngineSpec(str(model), n_gpu_layers=99)) is None
    monkeypatch.setenv("WORKBENCH_WORKER_MEMORY_MB", "512")
    assert memory_limit_bytes(EngineSpec(str(model))) == 512 * 1024 * 1024
    monkeypatch.setenv("WORKBENCH_WORKER_MEMORY_MB", "0")
    assert memory_limit_bytes(EngineSpec(str(model))) is None


def test_endless_chat_template_is_killed_at_the_time_limit(hostile, tmp_path):
    with ModelWorker(EngineSpec(str(hostile["endless"]), n_ctx=512, n_threads=1), label="endless",
                     log_dir=tmp_path, request_timeout=4.0) as worker:
        started = time.monotonic()
        result = worker.generate(_request())
        took = time.monotonic() - started
        assert result.error and "timed out after 4 s" in result.error and "killed" in result.error
        assert took < 4.0 + 60  # the load plus the limit, not forever
        assert not worker.alive  # the stuck process is gone


def test_allocating_chat_template_hits_the_memory_limit(hostile, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WORKER_MEMORY_MB", "1024")
    with ModelWorker(EngineSpec(str(hostile["hungry"]), n_ctx=512, n_threads=1), label="hungry",
                     log_dir=tmp_path, request_timeout=120.0) as worker:
        result = worker.generate(_request())
        assert result.error and "out of memory" in result.error and "1.0 GiB" in result.error
        assert worker.alive  # a refused allocation is an error, not a dead worker


def _our_processes(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"{MARK}={marker}".encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_ctrl_c_stops_a_replay_stuck_in_a_worker(hostile, tmp_path):
    ws = tmp_path / "ws"
    (ws / "models").mkdir(parents=True)
    os.link(hostile["endless"], ws / "models" / "endless.gguf")
    env = {**os.environ, MARK: str(tmp_path), "WORKBENCH_REQUEST_TIMEOUT_S": "600"}
    cli = [sys.executable, "-m", "workbench", "--workspace", str(ws)]

    def run(*args):
        return subprocess.run(cli + list(args), env=env, capture_output=True, text=True, timeout=120)

    assert run("models", "list").returncode == 0
    models = json.loads(run("models", "list", "--json").stdout)
    endless = next(m["id"] for m in models if "endless" in m["id"])
    assert run("models", "set", endless, "--engine", "worker", "--threads", "1").returncode == 0
    for name in ("stuck-a", "stuck-b"):
        added = run("variants", "add", name, "--model", endless, "--max-tokens", "8")
        assert added.returncode == 0, added.stderr
    replay = subprocess.Popen(cli + ["replay", str(REPO / "datasets" / "devops_incidents.jsonl"), "--a", "stuck-a", "--b", "stuck-b",
                                     "--limit", "2", "--name", "stuck"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_our_processes(str(tmp_path))) < 2:
            time.sleep(0.5)  # the CLI and its worker(s)
        time.sleep(5)  # the worker has loaded and is inside the endless template
        assert replay.poll() is None, replay.communicate()
        started = time.monotonic()
        replay.send_signal(signal.SIGINT)
        out, err = replay.communicate(timeout=30)
        stopped_in = time.monotonic() - started
    finally:
        if replay.poll() is None:
            replay.kill()
    assert replay.returncode == 130, err
    assert stopped_in < 10, f"Ctrl-C took {stopped_in:.1f} s"
    assert "--resume" in err and "Traceback" not in err
    time.sleep(1)
    assert _our_processes(str(tmp_path)) == []  # no worker left behind
    with sqlite3.connect(ws / "workbench.db") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0  # a kill is not an answer
