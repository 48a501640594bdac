"""The HTTP engine, against a real llama-server (slow) and against small real HTTP servers that
misbehave on purpose (a ThreadingHTTPServer on 127.0.0.1 in a thread)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from workbench.engines.base import GenerationRequest
from workbench.engines.openai_http import HttpEngine, HttpSettings

QUESTION = [{"role": "user", "content": "Name three colours."}]


def ask(max_tokens: int = 16, **kwargs) -> GenerationRequest:
    return GenerationRequest(messages=kwargs.pop("messages", QUESTION), max_tokens=max_tokens, **kwargs)


# -- a stub server ------------------------------------------------------------------------------


class Stub:
    """A real HTTP/1.1 server; ``answer(handler, body)`` writes the response of each request."""

    def __init__(self, answer):
        stub = self
        self.requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                answer(self, body)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.release = threading.Event()  # handlers that hang wait on it
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.stopped = False

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.release.set()
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def stub():
    made: list[Stub] = []

    def make(answer) -> Stub:
        made.append(Stub(answer))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def send_json(handler, status: int, obj, headers: dict | None = None) -> None:
    data = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def chunk(content: str | None = None, finish: str | None = None) -> dict:
    delta = {"content": content} if content is not None else {}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14,
                                  "prompt_tokens_details": {"cached_tokens": 4}}}


def sse(events: list, done: bool = True, extra: str = "") -> bytes:
    text = extra + "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return (text + ("data: [DONE]\n\n" if done else "")).encode()


def send_sse(handler, events: list, **kwargs) -> None:
    data = sse(events, **kwargs)
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


GOOD = [chunk(""), chunk("red"), chunk(", green"), chunk(", blue"), chunk(finish="stop"), USAGE]


def fast(url: str, **kwargs) -> HttpEngine:
    kwargs.setdefault("backoff_s", 0.01)
    return HttpEngine(HttpSettings(url, **kwargs))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- against stubs ------------------------------------------------------------------------------


def test_the_request_body_and_a_streamed_answer(stub):
    server = stub(lambda h, body: send_sse(h, GOOD, extra=": keep-alive comment\n\n"))
    engine = fast(server.url + "/v1/", extra_body={"lora": [{"id": 0, "scale": 1.0}]})
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    result = engine.generate(ask(system="Be brief.", temperature=0.5, top_p=0.9, seed=7, json_schema=schema))
    assert result.ok, result.error
    assert result.text == "red, green, blue"
    assert result.finish_reason == "stop"
    assert (result.prompt_tokens, result.completion_tokens) == (11, 3)
    assert result.extra == {"usage_source": "stream", "cached_tokens": 4, "retries": 0}
    assert 0 < result.ttft_ms <= result.latency_ms
    assert result.decode_tps is not None  # from the client's clock: no server timings here
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"  # "/v1/" stripped, then added once
    body = sent["body"]
    assert "model" not in body and "Authorization" not in sent["headers"]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, *QUESTION]
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (0.5, 0.9, 7, 16)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": schema, "strict": True}}
    assert body["lora"] == [{"id": 0, "scale": 1.0}]
    engine.close()
    engine.close()  # idempotent


def test_a_stream_without_usage_counts_the_chunks(stub):
    server = stub(lambda h, body: send_sse(h, GOOD[:-1]))
    engine = fast(server.url, model="m1")
    result = engine.generate(ask())
    assert result.ok and result.text == "red, green, blue"
    assert result.completion_tokens == 3 and result.prompt_tokens is None
    assert result.extra["usage_source"] == "estimated (chunks)"
    assert server.requests[0]["body"]["model"] == "m1"


def test_non_streaming_reads_usage_and_server_timings(stub):
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2},
              "timings": {"predicted_per_second": 50.0, "prompt_per_second": 400.0}}
    server = stub(lambda h, body: send_json(h, 200, answer))
    result = fast(server.url, stream=False).generate(ask())
    assert result.ok and result.text == "hi" and result.ttft_ms is None
    assert (result.prompt_tokens, result.completion_tokens) == (5, 2)
    assert (result.decode_tps, result.prompt_tps) == (50.0, 400.0)
    assert result.extra["usage_source"] == "response"
    body = server.requests[0]["body"]
    assert body["stream"] is False and "stream_options" not in body


def test_429_twice_then_success_retries_and_halves_the_limit(stub):
    def answer(handler, body):
        n = len(server.requests)
        if n == 1:
            send_json(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "0.3"})
        elif n == 2:
            send_json(handler, 429, {"error": {"message": "slow down"}})
        else:
            send_sse(handler, GOOD)

    server = stub(answer)
    engine = fast(server.url, concurrency=4)
    started = time.perf_counter()
    result = engine.generate(ask())
    assert result.ok, result.error
    assert result.extra["retries"] == 2 and len(server.requests) == 3
    assert time.perf_counter() - started >= 0.3  # Retry-After honoured over the 10 ms backoff
    # 4 -> 2 (first 429) -> 1 (the retry was sent after the halving: a new episode) -> 2 (a success
    # at current=1 adds one)
    assert engine.limit.current == 2 and engine.limit.in_flight == 0


def test_503_always_fails_after_all_attempts(stub):
    server = stub(lambda h, body: send_json(h, 503, {"error": {"message": "Loading model"}}))
    result = fast(server.url, max_retries=4).generate(ask())
    assert not result.ok and not result.engine_unavailable
    assert result.error == f"HTTP 503 from {server.url}/v1/chat/completions after 5 attempts: Loading model"
    assert len(server.requests) == 5 and result.extra["retries"] == 4


def test_401_names_the_key_variable_and_is_not_retried(stub, monkeypatch):
    server = stub(lambda h, body: send_json(h, 401, {"error": {"message": "Invalid API Key"}}))
    monkeypatch.setenv("WB_TEST_WRONG_KEY", "sk-wrong")
    result = fast(server.url, api_key_env="WB_TEST_WRONG_KEY").generate(ask())
    assert result.error == (f"unauthorized (HTTP 401) at {server.url}/v1/chat/completions: "
                            "check the API key in $WB_TEST_WRONG_KEY")
    assert len(server.requests) == 1 and not result.engine_unavailable
    result = fast(server.url).generate(ask())
    assert "no API key is configured" in result.error


def test_the_api_key_comes_from_the_env_var_and_is_never_shown(stub, monkeypatch):
    secret = "sk-test-5e3c7a"

    def answer(handler, body):
        if handler.headers.get("Authorization") == f"Bearer {secret}":
            send_sse(handler, GOOD)
        else:
            send_json(handler, 401, {"error": {"message": "bad key"}})

    server = stub(answer)
    settings = HttpSettings(server.url, api_key_env="WB_TEST_KEY")
    engine = HttpEngine(settings)
    unset = engine.generate(ask())
    assert unset.error == "the API key variable $WB_TEST_KEY is not set" and not server.requests
    monkeypatch.setenv("WB_TEST_KEY", secret)  # read at request time, not at construction
    result = engine.generate(ask())
    assert result.ok, result.error
    for shown in (repr(settings), str(settings), repr(engine), str(engine), repr(result)):
        assert secret not in shown
    assert "WB_TEST_KEY" in repr(settings)


def test_404_names_the_model(stub):
    server = stub(lambda h, body: send_json(h, 404, {"error": {"message": "model x not found"}}))
    result = fast(server.url, model="x").generate(ask())
    assert result.error == (f"model 'x' not found at {server.url}/v1/chat/completions (HTTP 404): "
                            "model x not found; see `workbench endpoints probe`")
    assert len(server.requests) == 1
    generic = fast(server.url).generate(ask())
    assert generic.error.startswith(f"HTTP 404 from {server.url}/v1/chat/completions: model x not found")


def test_other_4xx_and_context_errors_give_the_server_message_on_one_line(stub):
    long = "bad value\nfor field " + "x" * 1000

    def answer(handler, body):
        if body["max_tokens"] == 1:
            send_json(handler, 400, {"object": "error", "type": "BadRequestError", "message":
                                     "This model's maximum context length is 2048 tokens. However, you "
                                     "requested 4000 tokens."})  # vLLM's shape
        else:
            send_json(handler, 422, {"error": {"message": long}})

    server = stub(answer)
    engine = fast(server.url)
    result = engine.generate(ask())
    assert result.error.startswith(f"HTTP 422 from {server.url}/v1/chat/completions: bad value for field xxx")
    assert "\n" not in result.error and len(result.error) < 420
    context = engine.generate(ask(max_tokens=1))
    assert context.error.startswith("prompt too long for the model's context: This model's maximum context")
    assert len(server.requests) == 2  # neither retried


def test_an_error_event_mid_stream_is_recorded(stub):
    error = {"error": {"code": 500, "message": "the model crashed", "type": "server_error"}}
    server = stub(lambda h, body: send_sse(h, [chunk("a"), error], done=False))
    result = fast(server.url).generate(ask())
    assert result.error == f"error from {server.url}/v1/chat/completions mid-answer: the model crashed"


def test_a_stream_cut_mid_way_then_the_port_closed_is_unavailable(stub):
    def answer(handler, body):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        part = sse([chunk("red"), chunk(", gr")], done=False)
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        handler.wfile.flush()
        time.sleep(0.1)
        server.stopped = True
        server.server.shutdown()  # the server is gone: nothing listens any more ...
        server.server.server_close()
        handler.connection.shutdown(socket.SHUT_RDWR)  # ... and the answer is cut off
        handler.close_connection = True

    server = stub(answer)
    result = fast(server.url).generate(ask())
    assert result.engine_unavailable, result
    assert result.error == f"endpoint {server.url} not reachable: connection refused (5 attempts)"
    assert len(server.requests) == 1


def test_a_server_that_always_cuts_the_stream_is_unavailable_after_the_retries(stub):
    def answer(handler, body):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        part = sse([chunk("red")], done=False)
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)
        handler.close_connection = True

    server = stub(answer)
    result = fast(server.url).generate(ask())
    assert result.engine_unavailable
    assert result.error == f"endpoint {server.url} failed mid-answer: connection closed early (5 attempts)"
    assert len(server.requests) == 5


def test_a_closed_port_is_unavailable():
    url = f"http://127.0.0.1:{closed_port()}"
    result = fast(url + "/v1").generate(ask())
    assert result.engine_unavailable
    assert result.error == f"endpoint {url} not reachable: connection refused (5 attempts)"


def test_a_dead_managed_server_stops_the_retries_at_once(stub):
    server = stub(lambda h, body: send_json(h, 503, {"error": {"message": "unavailable"}}))
    reasons = iter([None, "llama-server killed by SIGKILL"])
    engine = HttpEngine(HttpSettings(server.url, backoff_s=5.0), health=lambda: next(reasons))
    started = time.perf_counter()
    result = engine.generate(ask())
    assert result.engine_unavailable and result.error == "llama-server killed by SIGKILL"
    assert len(server.requests) == 1 and time.perf_counter() - started < 2  # no 5 s backoff


def test_a_read_timeout_is_recorded(stub):
    def answer(handler, body):
        server.release.wait(5)

    server = stub(answer)
    result = fast(server.url, timeout_s=0.3).generate(ask())
    assert result.error == f"no answer within 0.3 s from {server.url}/v1/chat/completions"
    assert not result.engine_unavailable


def test_kill_aborts_a_request_in_flight(stub):
    def answer(handler, body):
        server.release.wait(10)

    server = stub(answer)
    engine = fast(server.url)
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=engine.generate(ask())))
    thread.start()
    while not server.requests:
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.perf_counter()
    engine.kill()
    thread.join(3)
    assert not thread.is_alive() and time.perf_counter() - started < 2
    assert box["result"].error == "cancelled"
    assert engine.generate(ask()).error == "cancelled"
    assert len(server.requests) == 1


def test_importing_the_engine_pulls_in_no_model_runtime_and_no_ui():
    code = ("import sys, workbench.engines.openai_http, workbench.engines.probe\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'llama_cpp', 'torch', 'textual', 'openai', 'transformers'} or m == 'workbench.engines.llama_cpp'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- against a real llama-server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real(llama_server):
    engine = HttpEngine(HttpSettings(llama_server.base_url, model="smollm2"))
    yield engine
    engine.close()


@pytest.mark.slow
def test_real_server_streams_with_ttft_and_usage(real):
    result = real.generate(ask(max_tokens=24))
    assert result.ok, result.error
    assert result.text.strip()
    assert 0 < result.ttft_ms <= result.latency_ms
    assert result.extra["usage_source"] == "stream"
    assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 24
    assert result.decode_tps > 0 and result.prompt_tps > 0  # llama-server's timings


@pytest.mark.slow
def test_real_server_max_tokens_ends_with_length(real):
    result = real.generate(ask(max_tokens=5))
    assert result.ok, result.error
    assert result.finish_reason == "length" and result.completion_tokens == 5


@pytest.mark.slow
def test_real_server_streamed_and_plain_counts_agree(real, llama_server):
    request = ask(max_tokens=12, seed=3)
    streamed = real.generate(request)
    plain_engine = HttpEngine(HttpSettings(llama_server.base_url, stream=False))
    plain = plain_engine.generate(request)
    plain_engine.close()
    assert streamed.ok and plain.ok, (streamed.error, plain.error)
    assert plain.extra["usage_source"] == "response" and plain.ttft_ms is None
    assert (plain.prompt_tokens, plain.completion_tokens, plain.finish_reason) == \
        (streamed.prompt_tokens, streamed.completion_tokens, streamed.finish_reason)


@pytest.mark.slow
def test_real_server_follows_a_json_schema(real):
    schema = {"type": "object", "properties": {"severity": {"enum": ["SEV-1", "SEV-2"]}},
              "required": ["severity"]}
    messages = [{"role": "user", "content": "The database is down for every customer. Rate the severity."}]
    result = real.generate(ask(max_tokens=40, messages=messages, json_schema=schema))
    assert result.ok, result.error
    jsonschema.validate(json.loads(result.text), schema)


def timed_batch(engine: HttpEngine, n: int) -> list[tuple[float, float]]:
    """n threads, one request each: the (sent, last byte) times of each, by the engine's clock."""
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def one():
        result = engine.generate(ask(max_tokens=12))
        ended = time.perf_counter()
        assert result.ok, result.error
        with lock:
            spans.append((ended - result.latency_ms / 1000, ended))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(spans) == n
    return sorted(spans)


@pytest.mark.slow
def test_real_server_requests_overlap_up_to_the_concurrency(llama_server):
    wide = HttpEngine(HttpSettings(llama_server.base_url, concurrency=4))
    spans = timed_batch(wide, 4)
    wide.close()
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # all four at once
    narrow = HttpEngine(HttpSettings(llama_server.base_url, concurrency=1))
    spans = timed_batch(narrow, 4)
    narrow.close()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end - 0.05  # one after the other (50 ms for thread scheduling)


@pytest.mark.slow
def test_real_server_context_exceeded_is_a_recorded_failure(real):
    result = real.generate(ask(max_tokens=8, messages=[{"role": "user", "content": "word " * 3000}]))
    assert not result.ok and not result.engine_unavailable
    assert "context" in result.error
    assert result.error.startswith("prompt too long for the model's context: ")
    assert result.extra["retries"] == 0


def test_a_connection_dropped_without_a_response_is_retried_at_once(stub):
    """llama-server closes a keep-alive connection after a few requests, and a request sent on
    it gets no response at all. That is retried at once on a fresh connection, not after a
    backoff (a second drop in a row backs off as usual)."""
    seen = []

    def answer(handler, body):
        seen.append(1)
        if len(seen) == 2:  # drop the second request unanswered
            handler.close_connection = True
            return
        send_sse(handler, GOOD)

    server = stub(answer)
    engine = HttpEngine(HttpSettings(server.url, backoff_s=5.0, concurrency=1))
    assert engine.generate(ask()).ok
    started = time.monotonic()
    again = engine.generate(ask())
    assert again.ok and again.extra["retries"] == 1
    assert time.monotonic() - started < 2.0  # no 5 s backoff
    assert len(server.requests) == 3
    engine.close()
