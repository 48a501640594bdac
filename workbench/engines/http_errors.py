"""What the HTTP engine and the endpoint probe share: the server root, the API key, and the
one-line messages a user reads when an OpenAI-compatible endpoint answers with an error."""

from __future__ import annotations

import json
import os

import httpx

MESSAGE_CHARS = 300
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class MissingApiKey(RuntimeError):
    """The variable named to hold the API key is not set."""


def root_url(base_url: str) -> str:
    """The server root: "http://h:p/v1/" and "http://h:p" both give "http://h:p"."""
    root = base_url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")].rstrip("/")
    return root


def auth_headers(api_key_env: str | None) -> dict[str, str]:
    """The Authorization header, the key read from ``$api_key_env`` now (never kept)."""
    if api_key_env is None:
        return {}
    key = os.environ.get(api_key_env)
    if not key:
        raise MissingApiKey(f"the API key variable ${api_key_env} is not set")
    return {"Authorization": f"Bearer {key}"}


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_payload(body: bytes | str) -> dict:
    """The JSON error object of a body, or {} (OpenAI/llama-server ``{"error": {...}}``,
    vLLM ``{"object": "error", "message": ...}``, FastAPI ``{"detail": ...}``)."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    error = data.get("error")
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": error}
    if "message" in data:
        return data
    if "detail" in data:
        return {"message": data["detail"] if isinstance(data["detail"], str) else json.dumps(data["detail"])}
    return {}


def server_message(body: bytes | str) -> str:
    """The server's own words: ``error.message`` when the body is JSON, else the text; one line."""
    message = error_payload(body).get("message")
    if message is None:
        message = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return one_line(message) or "(empty body)"


def is_context_error(body: bytes | str) -> bool:
    """llama-server's ``exceed_context_size_error``; vLLM/OpenAI "maximum context length ..."."""
    payload = error_payload(body)
    if payload.get("type") == "exceed_context_size_error" or payload.get("code") == "context_length_exceeded":
        return True
    text = str(payload.get("message", "")).lower()
    return "context" in text and any(word in text for word in ("length", "size", "window", "exceed", "too long"))


def status_message(status: int, url: str, body: bytes | str, *, model: str | None,
                   api_key_env: str | None, attempts: int = 1) -> str:
    """The message for an HTTP error answer (after ``attempts`` tries)."""
    message = server_message(body)
    if status in (401, 403):
        where = (f"check the API key in ${api_key_env}" if api_key_env
                 else "and no API key is configured")
        sep = ": " if api_key_env else " "
        return f"unauthorized (HTTP {status}) at {url}{sep}{where}"
    if status == 404:
        if model:
            return (f"model '{model}' not found at {url} (HTTP 404): {message}; "
                    "see `workbench endpoints probe`")
        return (f"HTTP 404 from {url}: {message}; is it an OpenAI-compatible server? "
                "see `workbench endpoints probe`")
    if status == 400 and is_context_error(body):
        return f"prompt too long for the model's context: {message}"
    if attempts > 1:
        return f"HTTP {status} from {url} after {attempts} attempts: {message}"
    return f"HTTP {status} from {url}: {message}"


def connection_reason(exc: httpx.TransportError, connect_timeout_s: float | None = None) -> str:
    """A few words for a connection failure: "connection refused", "connection reset", ..."""
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {connect_timeout_s:g} s" if connect_timeout_s else "connect timed out"
    if "refused" in text:
        return "connection refused"
    if "reset" in text:
        return "connection reset"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection closed early"
    return one_line(str(exc) or type(exc).__name__, 120)


def retry_after_s(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, when the server gave it as a number."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff
