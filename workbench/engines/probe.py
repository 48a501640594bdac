"""What is behind an OpenAI-compatible endpoint: its models, and (best effort) which server it is,
its version, context size, slots and chat template."""

from __future__ import annotations

import httpx

from .http_errors import MissingApiKey, auth_headers, connection_reason, root_url, server_message


class ProbeError(RuntimeError):
    """The endpoint cannot be used: unreachable, refuses the key, or not OpenAI-compatible."""


def probe_endpoint(base_url: str, *, api_key_env: str | None = None, timeout_s: float = 5.0) -> dict:
    """``{"kind", "version", "models", "n_ctx", "slots", "chat_template", "details"}``.

    ``GET /v1/models`` must answer; the server-specific checks after it are optional and their
    failures ignored. ``kind`` is "llama-server", "lmstudio", "ollama", "vllm" or
    "openai-compatible".
    """
    root = root_url(base_url)
    try:
        headers = auth_headers(api_key_env)
    except MissingApiKey as exc:
        raise ProbeError(str(exc)) from None
    with httpx.Client(timeout=timeout_s, headers=headers) as client:
        data = _models(client, root, api_key_env, timeout_s)
        entries = [m for m in data.get("data") or [] if isinstance(m, dict)]
        found = {"kind": "openai-compatible", "version": None,
                 "models": [m["id"] for m in entries if "id" in m], "n_ctx": None, "slots": None,
                 "chat_template": None, "details": {"models": entries}}
        for check in (_llama_server, _lmstudio, _ollama, _vllm):
            if check(client, root, found):
                break
    return found


def _models(client: httpx.Client, root: str, api_key_env: str | None, timeout_s: float) -> dict:
    url = f"{root}/v1/models"
    try:
        response = client.get(url)
    except httpx.TimeoutException:
        raise ProbeError(f"no answer within {timeout_s:g} s from {url}") from None
    except httpx.TransportError as exc:
        raise ProbeError(f"endpoint {root} not reachable: {connection_reason(exc)}") from None
    if response.status_code in (401, 403):
        where = f": check the API key in ${api_key_env}" if api_key_env else " and no API key is configured"
        raise ProbeError(f"unauthorized (HTTP {response.status_code}) at {url}{where}")
    if response.status_code != 200:
        raise ProbeError(f"HTTP {response.status_code} from {url}: {server_message(response.content)}")
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ProbeError(f"{url} did not answer with a model list: is it an OpenAI-compatible server?")
    return data


def _get_json(client: httpx.Client, url: str):
    """The JSON of a 200 answer, or None on any failure."""
    try:
        response = client.get(url)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _llama_server(client: httpx.Client, root: str, found: dict) -> bool:
    props = _get_json(client, f"{root}/props")
    if not isinstance(props, dict) or "default_generation_settings" not in props or "total_slots" not in props:
        return False
    settings = props.get("default_generation_settings") or {}
    found.update(kind="llama-server", version=props.get("build_info"), n_ctx=settings.get("n_ctx"),
                 slots=props.get("total_slots"), chat_template=props.get("chat_template"))
    found["details"]["model_path"] = props.get("model_path")
    found["details"]["props"] = {k: v for k, v in props.items() if k != "chat_template"}
    return True


def _lmstudio(client: httpx.Client, root: str, found: dict) -> bool:
    data = _get_json(client, f"{root}/api/v0/models")
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list) or not all(isinstance(m, dict) and "state" in m for m in models):
        return False
    loaded = [m for m in models if m.get("state") == "loaded"]
    found.update(kind="lmstudio", n_ctx=(loaded[0].get("max_context_length") if loaded else None))
    found["details"]["lmstudio_models"] = models
    return True


def _ollama(client: httpx.Client, root: str, found: dict) -> bool:
    data = _get_json(client, f"{root}/api/version")
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        return False
    found.update(kind="ollama", version=data["version"])
    return True


def _vllm(client: httpx.Client, root: str, found: dict) -> bool:
    data = _get_json(client, f"{root}/version")
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        return False
    lengths = [m.get("max_model_len") for m in found["details"]["models"] if m.get("max_model_len")]
    found.update(kind="vllm", version=data["version"], n_ctx=lengths[0] if lengths else None)
    return True
