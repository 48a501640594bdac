"""The HTTP engine: any OpenAI-compatible ``/v1/chat/completions`` endpoint (llama-server, vLLM,
Ollama, LM Studio, a hosted API) as a ``Backend``.

Built on httpx rather than the ``openai`` package: httpx gives direct control of SSE streaming
(to time the first token), of per-request timeouts and of the connection pool's size, and sends
non-standard body fields such as llama-server's per-request ``lora`` as they are -- and it is a
small import.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from .base import Generation, GenerationRequest
from .concurrency import AdaptiveLimit
from .http_errors import (RETRY_STATUSES, MissingApiKey, auth_headers, connection_reason, is_context_error,
                          one_line, retry_after_s, root_url, server_message, status_message)
from .sse import BrokenStream, StreamState

MAX_DELAY_S = 30.0  # the longest wait between two attempts, Retry-After included


@dataclass
class HttpSettings:
    """Where and how to send requests. The API key itself is never stored: only the name of the
    environment variable that holds it, read at each request."""

    base_url: str  # server root ("http://h:p") or with "/v1"; both accepted
    model: str | None = None  # the "model" field; omitted from the body when None
    api_key_env: str | None = None  # NAME of the env var holding the key
    concurrency: int = 4  # AdaptiveLimit maximum, and the connection pool's size
    stream: bool = True
    timeout_s: float = 600.0  # read timeout for one request
    connect_timeout_s: float = 10.0
    max_retries: int = 4
    backoff_s: float = 0.5  # first retry delay; doubles each retry (with jitter), at most 30 s
    extra_body: dict | None = None  # merged into every request body, e.g. {"lora": [...]}

    @property
    def root(self) -> str:
        return root_url(self.base_url)

    @property
    def chat_url(self) -> str:
        return f"{self.root}/v1/chat/completions"


class _Retry(Exception):
    """An attempt that may succeed when tried again: a connection failure, 429 or 5xx."""

    def __init__(self, reason: str, *, status: int | None = None, body: bytes = b"",
                 retry_after: float | None = None, connecting: bool = False):
        super().__init__(reason)
        self.reason, self.status, self.body = reason, status, body
        self.retry_after, self.connecting = retry_after, connecting
        self.stale = False  # a stale pooled connection: retry at once


def _ms(since: float, until: float | None = None) -> float:
    return ((until if until is not None else time.perf_counter()) - since) * 1000


class HttpEngine:
    """A ``Backend`` that sends each request to an OpenAI-compatible endpoint.

    Thread safe: up to ``slots`` threads may call ``generate`` at once; the ``AdaptiveLimit``
    lets fewer through while the server answers 429. ``health`` (given by a server the workbench
    manages) returns why the server is gone, or None while it is fine.
    """

    def __init__(self, settings: HttpSettings, *, engine: str = "http",
                 health: Callable[[], str | None] | None = None):
        if settings.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {settings.concurrency}")
        self.settings = settings
        self.engine = engine
        self.slots = settings.concurrency
        self.health = health
        self.limit = AdaptiveLimit(settings.concurrency)
        self._cancel = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet = weakref.WeakSet()  # every connection opened, for kill()
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            limits=httpx.Limits(max_connections=settings.concurrency,
                                max_keepalive_connections=settings.concurrency))

    def __repr__(self) -> str:
        return f"HttpEngine({self.settings!r}, engine={self.engine!r})"

    # -- the request -------------------------------------------------------------------------

    def build_body(self, request: GenerationRequest) -> dict:
        """The JSON body of the chat completion request."""
        s = self.settings
        body: dict = {"messages": request.chat_messages(), "temperature": request.temperature,
                      "top_p": request.top_p, "max_tokens": request.max_tokens, "seed": request.seed,
                      "stream": s.stream}
        if s.model is not None:
            body["model"] = s.model
        if s.stream:
            body["stream_options"] = {"include_usage": True}
        if request.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": request.json_schema, "strict": True}}
        if s.extra_body:
            body.update(s.extra_body)
        return body

    def generate(self, request: GenerationRequest) -> Generation:
        """Answer one request; never raises (a failure is a ``Generation.failed``)."""
        try:
            return self._generate(request)
        except Exception as exc:  # noqa: BLE001 -- a bug here must not end a whole replay
            if self._cancel.is_set():
                return Generation.failed("cancelled")
            return Generation.failed(f"{type(exc).__name__}: {one_line(str(exc))}")

    def _generate(self, request: GenerationRequest) -> Generation:
        s = self.settings
        if self._cancel.is_set():
            return Generation.failed("cancelled")
        if self._closed:
            return Generation.failed("engine closed")
        try:
            headers = auth_headers(s.api_key_env)
        except MissingApiKey as exc:
            return Generation.failed(str(exc))
        body = self.build_body(request)
        attempts = s.max_retries + 1
        started = time.perf_counter()
        last: _Retry | None = None
        for attempt in range(attempts):
            if attempt:
                if (reason := self._health_reason()) is not None:
                    return self._count(Generation.unavailable(reason, _ms(started)), attempt)
                if self._cancel.wait(self._delay(attempt, last)):
                    return Generation.failed("cancelled", _ms(started))
            if (reason := self._health_reason()) is not None:
                return self._count(Generation.unavailable(reason, _ms(started)), attempt)
            with self.limit.slot(self._cancel) as acquired:
                if not acquired:
                    return Generation.failed("cancelled", _ms(started))
                try:
                    result = self._attempt(body, headers)
                except _Retry as retry:
                    last = retry
                else:
                    if result.ok:
                        self.limit.succeeded()
                    return self._count(result, attempt)
            if self._cancel.is_set():
                return Generation.failed("cancelled", _ms(started))
            if last.status == 429:
                self.limit.throttled()
        return self._count(self._give_up(last, attempts, started), attempts - 1)

    def _attempt(self, body: dict, headers: dict) -> Generation:
        """One try: the measured answer, a final failure, or ``_Retry``."""
        s, url = self.settings, self.settings.chat_url
        started = time.perf_counter()
        try:
            with self._client.stream("POST", url, json=body, headers=headers,
                                     extensions={"trace": self._trace}) as response:
                if response.status_code != 200:
                    payload = response.read()
                    if response.status_code in RETRY_STATUSES:
                        raise _Retry(server_message(payload), status=response.status_code,
                                     body=payload, retry_after=retry_after_s(response))
                    return Generation.failed(status_message(
                        response.status_code, url, payload, model=s.model, api_key_env=s.api_key_env),
                        _ms(started), status=response.status_code)
                content_type = response.headers.get("content-type", "")
                if "event-stream" in content_type or (s.stream and "json" not in content_type):
                    return self._read_stream(response, started, url)
                return self._read_json(response.read(), started, url)
        except _Retry:
            raise
        except httpx.ConnectTimeout as exc:
            raise _Retry(connection_reason(exc, s.connect_timeout_s), connecting=True) from exc
        except httpx.TimeoutException:
            if self._cancel.is_set():
                return Generation.failed("cancelled", _ms(started))
            return Generation.failed(f"no answer within {s.timeout_s:g} s from {url}", _ms(started))
        except (httpx.TransportError, BrokenStream, RuntimeError) as exc:
            # RuntimeError: httpx's "the client has been closed", after kill() or close()
            if self._cancel.is_set() or self._closed:
                return Generation.failed("cancelled" if self._cancel.is_set() else "engine closed",
                                         _ms(started))
            if isinstance(exc, RuntimeError):
                raise
            reason = connection_reason(exc) if isinstance(exc, httpx.TransportError) else str(exc)
            retry = _Retry(reason, connecting=isinstance(exc, httpx.ConnectError))
            # a pooled keep-alive connection the server had already closed (llama-server closes
            # one after a few requests): try again at once on a fresh connection
            retry.stale = isinstance(exc, httpx.RemoteProtocolError) and "without sending" in str(exc)
            raise retry from exc

    def _read_stream(self, response: httpx.Response, started: float, url: str) -> Generation:
        state = StreamState(started)
        state.read(response.iter_lines(), self._cancel.is_set)
        ended = time.perf_counter()
        if self._cancel.is_set():
            return Generation.failed("cancelled", _ms(started, ended))
        if state.error is not None:
            raw = json.dumps({"error": state.error})
            message = (f"prompt too long for the model's context: {server_message(raw)}"
                       if is_context_error(raw) else f"error from {url} mid-answer: {server_message(raw)}")
            return Generation.failed(message, _ms(started, ended))
        if not state.complete:
            raise BrokenStream("the stream ended before the answer was complete")
        first = state.first_at or ended
        result = Generation(text=state.text, latency_ms=_ms(started, ended), ttft_ms=_ms(started, first),
                            finish_reason=state.finish_reason)
        if state.usage:
            self._usage(result, state.usage, "stream")
        else:
            result.completion_tokens = state.content_chunks
            result.extra["usage_source"] = "estimated (chunks)"
        self._rates(result, state.timings)
        return result

    def _read_json(self, payload: bytes, started: float, url: str) -> Generation:
        ended = time.perf_counter()
        try:
            data = json.loads(payload)
            choice = data["choices"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return Generation.failed(f"not a chat completion from {url}: {one_line(payload[:200].decode('utf-8', 'replace'))}",
                                     _ms(started, ended))
        message = choice.get("message") or {}
        result = Generation(text=message.get("content") or "", latency_ms=_ms(started, ended),
                            finish_reason=choice.get("finish_reason"))
        self._usage(result, data.get("usage") or {}, "response")
        self._rates(result, data.get("timings"))
        return result

    @staticmethod
    def _usage(result: Generation, usage: dict, source: str) -> None:
        result.prompt_tokens = usage.get("prompt_tokens")
        result.completion_tokens = usage.get("completion_tokens")
        result.extra["usage_source"] = source
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if cached is not None:
            result.extra["cached_tokens"] = cached

    @staticmethod
    def _rates(result: Generation, timings: dict | None) -> None:
        """Token rates: llama-server's own timings when sent, else the client's clock."""
        timings = timings or {}
        if timings.get("predicted_per_second"):
            result.decode_tps = float(timings["predicted_per_second"])
        elif (result.completion_tokens or 0) > 1 and result.ttft_ms is not None \
                and result.latency_ms > result.ttft_ms:
            # the first token came at TTFT, the other n-1 in the time after it
            result.decode_tps = (result.completion_tokens - 1) / ((result.latency_ms - result.ttft_ms) / 1000)
        if timings.get("prompt_per_second"):
            result.prompt_tps = float(timings["prompt_per_second"])

    # -- retries -----------------------------------------------------------------------------

    def _delay(self, attempt: int, last: _Retry | None) -> float:
        """Seconds to wait before try ``attempt`` (1 = the first retry)."""
        if last is not None and last.retry_after is not None:
            return min(last.retry_after, MAX_DELAY_S)
        if last is not None and last.stale and attempt == 1:
            return 0.0
        delay = self.settings.backoff_s * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
        return min(delay, MAX_DELAY_S)

    def _health_reason(self) -> str | None:
        if self.health is None:
            return None
        try:
            return self.health()
        except Exception:  # noqa: BLE001 -- a broken health check is no verdict
            return None

    def _give_up(self, last: _Retry, attempts: int, started: float) -> Generation:
        s = self.settings
        if last.status is not None:
            return Generation.failed(status_message(last.status, s.chat_url, last.body, model=s.model,
                                                    api_key_env=s.api_key_env, attempts=attempts),
                                     _ms(started), status=last.status)
        if last.connecting:
            return Generation.unavailable(f"endpoint {s.root} not reachable: {last.reason} "
                                          f"({attempts} attempts)", _ms(started))
        return Generation.unavailable(f"endpoint {s.root} failed mid-answer: {last.reason} "
                                      f"({attempts} attempts)", _ms(started))

    @staticmethod
    def _count(result: Generation, retries: int) -> Generation:
        result.extra["retries"] = retries
        return result

    # -- cancel and close --------------------------------------------------------------------

    def _trace(self, event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete" and info.get("return_value") is not None:
            self._streams.add(info["return_value"])

    def kill(self) -> None:
        """Cancel: abort the requests in flight now; later ``generate`` calls fail "cancelled"."""
        self._cancel.set()
        self.limit.wake()
        for stream in list(self._streams):
            sock = stream.get_extra_info("socket")
            if sock is not None:
                try:  # shutdown (unlike close) wakes a thread blocked reading the socket
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.close()

    def close(self) -> None:
        """Close the connections; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()
