"""Model workers on the real bundled model: measurements, determinism, crashes, load failures."""

import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict

import pytest

from workbench.engines.base import GenerationRequest
from workbench.engines.llama_cpp import EngineSpec
from workbench.engines.worker import ModelLoadError, ModelWorker

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "The payments database primary is down and all "
                                        "checkouts fail. What severity is this?"}]


@pytest.fixture(scope="module")
def worker():
    from workbench.models.registry import bundled_model_path

    with ModelWorker(EngineSpec(str(bundled_model_path()), n_threads=2), label="t") as w:
        yield w


OTHER = [{"role": "user", "content": "Disk usage on a log volume reached 85%. Severity?"}]


def test_generation_is_measured_and_deterministic(worker, bundled_path):
    request = GenerationRequest(messages=QUESTION, system="You are an SRE.", max_tokens=12)
    other = GenerationRequest(messages=OTHER, system="You are an SRE.", max_tokens=12)
    first, between, second, third = (worker.generate(r) for r in (request, other, request, request))
    assert first.error is None, first.error
    assert first.text and first.text == second.text == third.text
    assert between.text != first.text
    assert first.prompt_tokens == second.prompt_tokens == third.prompt_tokens
    # what was asked before changes nothing: a fresh worker, asked in another order, agrees
    with ModelWorker(EngineSpec(str(bundled_path), n_threads=2), label="fresh") as fresh:
        assert [fresh.generate(r).text for r in (other, request)] == [between.text, first.text]
    assert first.completion_tokens == 12 and first.finish_reason == "length"
    assert first.prompt_tokens > 20
    assert 0 < first.ttft_ms < first.latency_ms
    assert first.decode_tps > 1 and first.prompt_tps > 1


def test_streamed_counts_match_llama_cpp_usage(worker):
    finishes = set()
    for max_tokens, system in ((9, None), (200, "Answer with one word."), (9, None)):
        request = GenerationRequest(messages=QUESTION, system=system, max_tokens=max_tokens)
        streamed = worker.generate(request)
        plain = worker.call("generate", {**asdict(request), "stream": False})
        assert streamed.text == plain["text"]
        assert streamed.prompt_tokens == plain["prompt_tokens"]
        assert streamed.completion_tokens == plain["completion_tokens"]
        assert streamed.finish_reason == plain["finish_reason"]
        finishes.add(streamed.finish_reason)
    assert finishes == {"length", "stop"}  # both ways a generation ends are counted right


def test_prefix_reuse_still_counts_the_whole_prompt(worker, bundled_path):
    request = GenerationRequest(messages=QUESTION, system="You are an SRE.", max_tokens=4)
    whole = worker.generate(request)
    spec = EngineSpec(str(bundled_path), n_threads=2, reuse_prefix=True)
    with ModelWorker(spec, label="reuse") as reuse:
        reuse.generate(GenerationRequest(messages=OTHER, system="You are an SRE.", max_tokens=4))
        again = reuse.generate(request)  # the system prompt's KV cache is reused
        plain = reuse.call("generate", {**asdict(request), "stream": False})
    assert again.error is None and again.completion_tokens == 4
    assert again.prompt_tokens == whole.prompt_tokens == plain["prompt_tokens"]


def test_json_schema_output_is_valid_json(worker):
    schema = {"type": "object", "properties": {"severity": {"enum": ["SEV-0", "SEV-1", "SEV-2", "SEV-3"]}},
              "required": ["severity"]}
    result = worker.generate(GenerationRequest(messages=QUESTION, json_schema=schema, max_tokens=40))
    assert json.loads(result.text)["severity"] in {"SEV-0", "SEV-1", "SEV-2", "SEV-3"}


def test_parent_process_never_imports_llama_cpp(worker):
    worker.generate(GenerationRequest(messages=QUESTION, max_tokens=2))
    assert "llama_cpp" not in sys.modules


def test_worker_killed_mid_run_becomes_an_error_and_restarts(worker):
    worker.start()
    old_pid = worker.pid
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        g=worker.generate(GenerationRequest(messages=QUESTION, max_tokens=400))))
    thread.start()
    time.sleep(1.0)
    os.kill(old_pid, signal.SIGKILL)
    thread.join(60)
    assert "killed by SIGKILL" in result["g"].error
    again = worker.generate(GenerationRequest(messages=QUESTION, max_tokens=3))
    assert again.error is None and worker.pid != old_pid


def test_unloadable_model_is_reported_without_retry_storm(tiny_broken_gguf, tmp_path):
    with ModelWorker(EngineSpec(str(tiny_broken_gguf)), label="broken", log_dir=tmp_path) as w:
        first = w.generate(GenerationRequest(messages=QUESTION, max_tokens=2))
        assert "failed to load" in first.error
        started = time.perf_counter()
        second = w.generate(GenerationRequest(messages=QUESTION, max_tokens=2))
        assert second.error == first.error
        assert time.perf_counter() - started < 0.5  # no respawn
        with pytest.raises(ModelLoadError):
            w.start()
    assert (tmp_path / "worker-broken.log").stat().st_size > 0  # llama.cpp's own words kept


def test_amx_cpus_load_without_extra_buffers(tmp_path):
    from workbench.engines.cpu_features import ENV, cpu_flags, use_extra_buffers

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_int8 amx_tile\n\nprocessor\t: 1\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "amx_int8", "amx_tile"}
    assert cpu_flags(tmp_path / "missing") == set()
    assert use_extra_buffers({"avx2", "amx_int8"}, env={}) is False
    assert use_extra_buffers({"avx2", "avx512f"}, env={}) is True
    assert use_extra_buffers({"amx_int8"}, env={ENV: "1"}) is True
    assert use_extra_buffers({"avx2"}, env={ENV: "off"}) is False


def test_the_load_parameters_carry_the_extra_buffer_choice():
    import llama_cpp

    from workbench.engines.cpu_features import llama_model_params

    factory = llama_cpp.llama_cpp.llama_model_default_params
    with llama_model_params(llama_cpp, extra_buffers=False):
        assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts is False
    assert llama_cpp.llama_cpp.llama_model_default_params is factory
    assert factory().use_extra_bufts is True
