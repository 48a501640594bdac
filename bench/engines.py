"""Replay throughput on a managed llama-server vs a plain concurrent client on the same server.

Usage: python bench/engines.py [--items 16] [--parallel 8] [--rounds 2] [--no-worker]

The same 32 requests (the first 16 devops incidents x the two starter variants, bundled model):
(a) ``Replay`` of a shadow experiment on the managed llama-server ``--parallel 8`` (both arms share
    it, 4 in flight each), every result scored and stored in SQLite as in the product;
(b) a plain client: 8 threads posting the same chat-completion bodies, streamed as the replay
    streams them (for TTFT), to a llama-server started with the same arguments; the same client
    without streaming is printed too;
(c) today's embedded llama-cpp-python worker (one per arm), for reference.
Throughput is completion tokens / wall time from the first request to the last answer (server
start-up excluded on both sides; the replay's figure with start-up is printed too). (a) and (b)
alternate for ``--rounds`` rounds after one warm-up each; medians are reported. Target: >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_workspace(root: Path, n_items: int, engine: str, slots: int):
    from workbench.datasets import import_dataset
    from workbench.models.registry import BUNDLED_ID
    from workbench.workspace import open_workspace

    ws = open_workspace(root)
    ws.store.set_model_settings(BUNDLED_ID, engine=engine, server_slots=slots)
    lines = (REPO / "datasets" / "devops_incidents.jsonl").read_text().splitlines()
    path = root / "bench.jsonl"
    path.write_text("\n".join([line for line in lines if line.strip()][:n_items]) + "\n")
    dataset = import_dataset(ws.store, path, name="bench").dataset_id
    return ws, dataset


def replay_once(root: Path, n_items: int, engine: str, slots: int) -> dict:
    """One fresh experiment on the starter variants; tokens and times of the replay."""
    from workbench.experiments.replay import Replay

    ws, dataset = make_workspace(root, n_items, engine, slots)
    a, b = ws.store.get_variant("prod-triage"), ws.store.get_variant("candidate-json-triage")
    exp = ws.store.create_experiment(f"bench-{time.time()}", dataset, {"A": a.id, "B": b.id})
    started = time.perf_counter()
    serving = None
    progress = None
    for progress in Replay(ws.store.path, exp.id, log_dir=root / "logs").run():
        if serving is None and progress.engines:
            serving = time.perf_counter()  # engines are up, requests are being sent
    ended = time.perf_counter()
    runs = ws.store.runs(exp.id)
    ws.close()
    assert progress is not None and progress.finished, progress
    errors = [r["error"] for r in runs if r["error"]]
    tokens = sum(r["completion_tokens"] or 0 for r in runs)
    return {"tokens": tokens, "runs": len(runs), "errors": len(errors),
            "wall_s": ended - (serving or started), "wall_with_startup_s": ended - started,
            "engines": progress.engines, "first_error": errors[0] if errors else None}


def request_bodies(n_items: int) -> list[dict]:
    """The chat-completion bodies the two starter variants send (built here, independently)."""
    from workbench.workspace import STARTER_VARIANTS

    lines = (REPO / "datasets" / "devops_incidents.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines if line.strip()][:n_items]
    bodies = []
    for item in items:
        for _, v in STARTER_VARIANTS:
            body = {"messages": [{"role": "system", "content": v["system_prompt"]},
                                 {"role": "user", "content": item["input"]}],
                    "max_tokens": v["max_tokens"], "temperature": 0.0, "top_p": 1.0, "seed": 0}
            if v.get("json_schema"):
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "output", "schema": v["json_schema"], "strict": True}}
            bodies.append(body)
    return bodies


def plain_client_once(base_url: str, bodies: list[dict], threads: int, *, stream: bool) -> dict:
    """``threads`` threads posting ``bodies``; streamed like the replay's requests or not.

    A request that meets a stale keep-alive connection (llama-server closes one after a few
    requests) is sent again at once, as any HTTP client must.
    """
    import httpx

    todo = list(bodies)
    lock = threading.Lock()
    tokens, retries = [0], [0]
    client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=threads))
    url = f"{base_url}/v1/chat/completions"

    def post(body: dict) -> int:
        if not stream:
            return client.post(url, json=body).json()["usage"]["completion_tokens"]
        body = dict(body, stream=True, stream_options={"include_usage": True})
        used = 0
        with client.stream("POST", url, json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    used = (json.loads(line[6:]).get("usage") or {}).get("completion_tokens", used)
        return used

    def work():
        while True:
            with lock:
                if not todo:
                    return
                body = todo.pop(0)
            for attempt in range(3):
                try:
                    used = post(body)
                    break
                except httpx.RemoteProtocolError:
                    with lock:
                        retries[0] += 1
            with lock:
                tokens[0] += used

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    client.close()
    return {"tokens": tokens[0], "wall_s": wall, "retries": retries[0]}


def main() -> None:
    from workbench.config import default_threads
    from workbench.engines.llama_server import ManagedServer, ServerSpec, require_llama_server
    from workbench.models.registry import BUNDLED_ID, bundled_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-worker", action="store_true", help="skip the embedded-worker figure")
    args = parser.parse_args()
    binary = require_llama_server()
    bodies = request_bodies(args.items)
    tmp = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    spec = ServerSpec(model_path=str(bundled_model_path()), n_ctx=2048, parallel=args.parallel,
                      n_threads=default_threads(1), alias=BUNDLED_ID)
    print(f"{len(bodies)} requests, llama-server --parallel {args.parallel}, "
          f"{default_threads(1)} threads ({binary})", flush=True)

    replay_tps, plain_tps, plain_ns_tps, startup, tokens = [], [], [], [], []
    for round_no in range(args.rounds + 1):  # round 0 is the warm-up
        replay = replay_once(tmp / f"replay-{round_no}", args.items, "server", args.parallel)
        with ManagedServer(spec, binary=binary, log_path=tmp / f"plain-{round_no}.log") as server:
            plain = plain_client_once(server.base_url, bodies, args.parallel, stream=True)
        with ManagedServer(spec, binary=binary, log_path=tmp / f"plain-ns-{round_no}.log") as server:
            plain_ns = plain_client_once(server.base_url, bodies, args.parallel, stream=False)
        if replay["errors"]:
            print(f"  replay errors: {replay['errors']}, first: {replay['first_error']}")
        r_tps, p_tps = replay["tokens"] / replay["wall_s"], plain["tokens"] / plain["wall_s"]
        ns_tps = plain_ns["tokens"] / plain_ns["wall_s"]
        label = "warm-up" if round_no == 0 else f"round {round_no}"
        print(f"{label}: replay {replay['tokens']} tokens {replay['wall_s']:.1f} s = {r_tps:.1f} "
              f"tok/s ({replay['wall_with_startup_s']:.1f} s with server start); plain streamed "
              f"{plain['tokens']} tokens {plain['wall_s']:.1f} s = {p_tps:.1f} tok/s "
              f"({plain['retries']} stale-connection retries); plain non-streamed "
              f"{plain_ns['tokens']} tokens = {ns_tps:.1f} tok/s", flush=True)
        if round_no:
            replay_tps.append(r_tps)
            plain_tps.append(p_tps)
            plain_ns_tps.append(ns_tps)
            startup.append(replay["wall_with_startup_s"] - replay["wall_s"])
            tokens.append((replay["tokens"], plain["tokens"], plain_ns["tokens"]))
    print(f"engines: {replay['engines']}")
    r, p = statistics.median(replay_tps), statistics.median(plain_tps)
    ns = statistics.median(plain_ns_tps)
    print(f"\n(a) replay on managed llama-server: {r:.1f} tok/s (server start-up "
          f"{statistics.median(startup):.1f} s, not counted)")
    print(f"(b) plain {args.parallel}-thread client, same streamed requests: {p:.1f} tok/s")
    print(f"    (the same client without streaming: {ns:.1f} tok/s)")
    print(f"ratio (a)/(b): {r / p:.3f}  (target >= 0.95); (a)/non-streamed: {r / ns:.3f}")
    print("completion tokens per round (replay, streamed, non-streamed): "
          + "; ".join(f"{a}, {b}, {c}" for a, b, c in tokens)
          + "  (greedy outputs differ with llama-server's prompt cache and batch composition)")
    if not args.no_worker:
        worker = replay_once(tmp / "worker", args.items, "worker", args.parallel)
        w = worker["tokens"] / worker["wall_s"]
        print(f"(c) replay on the embedded worker (one per arm): {w:.1f} tok/s; the managed "
              f"server replay is {r / w:.2f}x that")


if __name__ == "__main__":
    main()
