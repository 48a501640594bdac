"""The engine contract: every engine (embedded llama.cpp worker, HTTP client on a llama-server it
did not start, managed llama-server) answers the same requests with the same guarantees.

All three run the bundled SmolLM2-135M for real; a new engine gets a fixture here and must pass.
"""

import json

import jsonschema
import pytest

from workbench.engines.base import GenerationRequest

pytestmark = pytest.mark.slow

SCHEMA = {"type": "object", "properties": {"severity": {"enum": ["SEV-1", "SEV-2", "SEV-3"]},
                                           "summary": {"type": "string", "maxLength": 40}},
          "required": ["severity", "summary"]}


def ask(text, **kw):
    return GenerationRequest(messages=[{"role": "user", "content": text}],
                             system="You are an on-call SRE assistant.", **kw)


@pytest.fixture(scope="module", params=["worker", "http", "managed"])
def engine(request):
    from workbench.engines.llama_cpp import EngineSpec
    from workbench.engines.worker import ModelWorker
    from workbench.models.registry import bundled_model_path

    model = str(bundled_model_path())
    if request.param == "worker":
        backend = ModelWorker(EngineSpec(model_path=model, n_ctx=2048, n_threads=2),
                              label="contract")
        yield backend
        backend.close()
        return
    from workbench.engines.openai_http import HttpEngine, HttpSettings

    if request.param == "http":
        server = request.getfixturevalue("llama_server")
        backend = HttpEngine(HttpSettings(base_url=server.base_url + "/v1", model="smollm2",
                                          concurrency=2), engine="llama-server (plain)")
        yield backend
        backend.close()
        return
    request.getfixturevalue("llama_server_binary")
    from workbench.engines.llama_server import ManagedServer, ServerSpec

    from server_support import PLAIN_PIDS

    with ManagedServer(ServerSpec(model_path=model, n_ctx=2048, parallel=2, n_threads=2)) as srv:
        PLAIN_PIDS.add(srv.pid)  # lives for this module's tests: not a leak between them
        backend = HttpEngine(HttpSettings(base_url=srv.base_url, concurrency=2),
                             engine=srv.label, health=srv.health)
        yield backend
        backend.close()


def test_answers_with_timings_and_token_counts(engine):
    gen = engine.generate(ask("Disk /var is 97% full on db-1. Severity?", max_tokens=24))
    assert gen.ok, gen.error
    assert gen.text.strip()
    assert gen.latency_ms > 0 and 0 < gen.ttft_ms <= gen.latency_ms
    assert gen.prompt_tokens > 10 and 0 < gen.completion_tokens <= 24
    assert gen.finish_reason in ("stop", "length")
    assert gen.extra.get("usage_source") in ("stream", "counted", "response")
    assert engine.slots >= 1 and engine.engine


def test_max_tokens_is_a_hard_limit(engine):
    gen = engine.generate(ask("Write a long postmortem about a DNS outage.", max_tokens=5))
    assert gen.ok, gen.error
    assert gen.completion_tokens == 5 and gen.finish_reason == "length"


def test_json_schema_output_is_valid(engine):
    gen = engine.generate(ask("api-gateway 5xx at 40% after a deploy. Triage it as JSON.",
                              max_tokens=80, json_schema=SCHEMA))
    assert gen.ok, gen.error
    jsonschema.validate(json.loads(gen.text), SCHEMA)


def test_greedy_decoding_is_repeatable(engine):
    first = engine.generate(ask("Name one cause of high p99 latency.", max_tokens=16, seed=3))
    second = engine.generate(ask("Name one cause of high p99 latency.", max_tokens=16, seed=3))
    assert first.ok and second.ok and first.text == second.text


def test_a_prompt_over_the_context_is_a_failed_generation_and_the_engine_goes_on(engine):
    gen = engine.generate(ask("log line " * 1500, max_tokens=8))
    assert not gen.ok and "context" in gen.error.lower()
    assert not gen.engine_unavailable  # the request was bad, not the engine
    assert engine.generate(ask("Say OK.", max_tokens=3)).ok
