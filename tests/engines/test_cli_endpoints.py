"""`workbench endpoints ...`, endpoint variants and replays on them, through the real CLI entry
point, against a real llama-server on 127.0.0.1 (and a port where nothing listens)."""

from collections import Counter

import pytest

from support import incident, write_jsonl
from workbench.cli import main
from workbench.store import Store

pytestmark = pytest.mark.slow


def run(ws, capsys, *argv):
    code = main(["--workspace", str(ws.workspace.root), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_probe_show_list_and_replay_on_an_endpoint(ws, tmp_path, capsys, llama_server,
                                                      monkeypatch):
    monkeypatch.setenv("LOCAL_KEY", "sk-test-not-a-real-key-123456")
    ws.store.set_model_settings("smollm2-135m-instruct-q4_1", n_threads=1)  # 2 servers, 2 cores
    code, out, err = run(ws, capsys, "endpoints", "add", "local", "--base-url",
                         llama_server.base_url + "/v1", "--model", "smollm2",
                         "--api-key-env", "LOCAL_KEY")
    assert code == 0, err
    assert "llama-server" in out and "smollm2" in out and "slots (parallel requests): 4" in out
    assert "$LOCAL_KEY at run time (set)" in out
    code, out, _ = run(ws, capsys, "endpoints", "list")
    assert code == 0 and "local" in out and "llama-server" in out and "LOCAL_KEY" in out
    code, out, _ = run(ws, capsys, "endpoints", "show", "local", "--json")
    assert code == 0 and '"n_ctx": 2048' in out and "sk-test" not in out
    with Store(ws.store.path) as store:  # only the variable's name is stored
        assert store.db.execute("SELECT count(*) FROM endpoints WHERE "
                                "probe LIKE '%sk-test%' OR api_key_env LIKE '%sk-%'").fetchone()[0] == 0
    code, out, err = run(ws, capsys, "variants", "add", "remote", "--endpoint", "local",
                         "--max-tokens", "6")
    assert code == 0, err
    assert "local:(default model)" in out
    path = write_jsonl(tmp_path / "d.jsonl", [incident(i) for i in range(3)])
    ws.store.create_variant("prod-short", "smollm2-135m-instruct-q4_1", max_tokens=6)
    code, out, err = run(ws, capsys, "replay", str(path), "--variant", "prod-short",
                         "--variant", "remote", "--concurrency", "2")
    assert code == 0, err
    assert "B: remote (local:(default model)) on endpoint local, 2 in flight" in err
    with Store(ws.store.path) as store:
        runs = store.runs(1)
    assert Counter(r["arm"] for r in runs) == {"A": 3, "B": 3}
    b = [r for r in runs if r["arm"] == "B"]
    assert all(r["error"] is None and "endpoint local" in r["engine"] for r in b)
    code, out, _ = run(ws, capsys, "report", "1")
    assert code == 0 and "at endpoint local; tokens: streamed usage (3 runs)" in out


def test_unreachable_endpoint_is_kept_with_a_warning_and_a_replay_on_it_stops_cleanly(
        ws, tmp_path, capsys):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"  # nothing listens here
    code, out, err = run(ws, capsys, "endpoints", "add", "gone", "--base-url", url)
    assert code == 0 and "not reachable" in err and "kept" in err
    code, out, err = run(ws, capsys, "endpoints", "probe", "gone")
    assert code == 2 and err.startswith("error: probe of gone:") and "Traceback" not in err
    run(ws, capsys, "variants", "add", "ghost", "--endpoint", "gone", "--max-tokens", "4")
    path = write_jsonl(tmp_path / "d.jsonl", [incident(i) for i in range(2)])
    code, out, err = run(ws, capsys, "replay", str(path), "--a", "prod-triage", "--b", "ghost",
                         "--mode", "shadow")
    assert code == 1, err
    assert "error: arm B:" in err and "not reachable" in err
    assert "finish it with: workbench replay --resume 1" in err
    with Store(ws.store.path) as store:
        assert all(r["arm"] == "A" for r in store.runs(1))  # nothing stored for the dead arm
        assert store.get_experiment(1).status == "paused"


@pytest.mark.parametrize("argv, message", [
    (["variants", "add", "x", "--model", "smollm2-135m-instruct-q4_1", "--endpoint", "e"],
     "not allowed with argument"),
    (["replay", "d", "--variant", "a"], "two or more variants"),
    (["replay", "d", "--a", "x", "--variant", "y"], "either --variant"),
    (["replay", "d", "--variant", "a", "--variant", "b", "--variant", "c", "--mode", "split"],
     "3+ arms need --mode shadow"),
    (["replay", "d", "--a", "x", "--b", "y", "--concurrency", "0"], "--concurrency: must be >= 1"),
    (["endpoints", "show", "nope"], "no endpoint 'nope'"),
    (["endpoints", "add", "bad", "--base-url", "localhost:1"], "http:// or https://"),
])
def test_cli_mistakes_are_one_line_errors(ws, capsys, argv, message):
    code, out, err = run(ws, capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
