"""probe_endpoint against a real llama-server (slow) and stubs that answer like vLLM, Ollama and
LM Studio (a ThreadingHTTPServer on 127.0.0.1 in a thread)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workbench.engines.probe import ProbeError, probe_endpoint


@pytest.fixture
def serve():
    """``serve({path: (status, json)})`` -> the base URL of a server answering those GETs (404
    with llama-server's error body otherwise); ``.seen`` lists the paths asked and headers."""
    servers = []

    def make(routes: dict):
        seen: list[tuple[str, str | None]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((self.path, self.headers.get("Authorization")))
                status, obj = routes.get(self.path, (404, {"error": {"message": "File Not Found"}}))
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        make.seen = seen
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def models(*ids: str, **fields) -> tuple[int, dict]:
    return 200, {"object": "list", "data": [{"id": i, "object": "model", **fields} for i in ids]}


def test_vllm(serve):
    url = serve({"/v1/models": models("Qwen/Qwen2.5-7B", max_model_len=32768),
                 "/version": (200, {"version": "0.6.3"})})
    found = probe_endpoint(url + "/v1")
    assert (found["kind"], found["version"], found["models"], found["n_ctx"]) == \
        ("vllm", "0.6.3", ["Qwen/Qwen2.5-7B"], 32768)
    assert found["slots"] is None and found["chat_template"] is None


def test_ollama(serve):
    url = serve({"/v1/models": models("llama3.2:3b", "qwen2.5:7b"), "/api/version": (200, {"version": "0.5.7"})})
    found = probe_endpoint(url)
    assert (found["kind"], found["version"], found["models"]) == ("ollama", "0.5.7", ["llama3.2:3b", "qwen2.5:7b"])


def test_lmstudio(serve):
    lm = [{"id": "qwen2.5-7b-instruct", "type": "llm", "state": "not-loaded", "max_context_length": 32768},
          {"id": "llama-3.2-1b", "type": "llm", "state": "loaded", "max_context_length": 8192},
          {"id": "nomic-embed", "type": "embeddings", "state": "not-loaded", "max_context_length": 2048}]
    url = serve({"/v1/models": models("qwen2.5-7b-instruct", "llama-3.2-1b"),
                 "/api/v0/models": (200, {"object": "list", "data": lm})})
    found = probe_endpoint(url)
    assert (found["kind"], found["n_ctx"]) == ("lmstudio", 8192)
    assert found["details"]["lmstudio_models"] == lm


def test_an_unknown_server_is_openai_compatible(serve):
    url = serve({"/v1/models": models("gpt-x"), "/props": (200, {"something": "else"}),
                 "/version": (200, {"build": 3})})
    found = probe_endpoint(url)
    assert (found["kind"], found["version"], found["models"]) == ("openai-compatible", None, ["gpt-x"])


def test_the_api_key_is_sent_and_a_401_names_its_variable(serve, monkeypatch):
    url = serve({"/v1/models": (401, {"error": {"message": "Incorrect API key"}})})
    monkeypatch.setenv("WB_PROBE_KEY", "sk-probe-91")
    with pytest.raises(ProbeError, match=r"unauthorized \(HTTP 401\).*\$WB_PROBE_KEY"):
        probe_endpoint(url, api_key_env="WB_PROBE_KEY")
    assert serve.seen[0] == ("/v1/models", "Bearer sk-probe-91")
    monkeypatch.delenv("WB_PROBE_KEY")
    with pytest.raises(ProbeError, match=r"\$WB_PROBE_KEY is not set"):
        probe_endpoint(url, api_key_env="WB_PROBE_KEY")


def test_not_an_openai_server(serve):
    url = serve({"/v1/models": (200, {"hello": "world"})})
    with pytest.raises(ProbeError, match="model list"):
        probe_endpoint(url)
    url = serve({})
    with pytest.raises(ProbeError, match="HTTP 404 from .*/v1/models: File Not Found"):
        probe_endpoint(url)


def test_a_closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProbeError, match=f"endpoint http://127.0.0.1:{port} not reachable: connection refused"):
        probe_endpoint(f"http://127.0.0.1:{port}/")


@pytest.mark.slow
def test_a_real_llama_server(llama_server):
    found = probe_endpoint(llama_server.base_url)
    assert found["kind"] == "llama-server"
    assert found["slots"] == 4 and found["n_ctx"] == 2048
    assert "smollm2" in found["models"]
    assert "<|im_start|>" in found["chat_template"]  # the full template text
    assert found["version"]  # build_info
    assert found["details"]["model_path"].endswith(".gguf")
