"""A real (tiny) PEFT fine-tune of the bundled SmolLM2 on CPU, as a subprocess job."""

import time

import pytest

from support import REPO
from workbench.datasets import import_dataset
from workbench.finetune import jobs
from workbench.finetune.dataset_builder import build_examples, export_split
from workbench.finetune.settings import LoraSettings
from workbench.models.registry import BUNDLED_ID

pytestmark = pytest.mark.slow


@pytest.fixture
def data(ws, tmp_path):
    report = import_dataset(ws.store, REPO / "datasets" / "devops_incidents.jsonl")
    result = build_examples(ws.store, report.dataset_id, val_fraction=0.1, seed=0)
    result.train, result.validation = result.train[:12], result.validation[:2]
    return export_split(result, tmp_path / "data")


def _settings(**kw):
    base = dict(rank=4, alpha=8, seq_len=192, batch_size=2, eval_every=2, save_every=2,
                target_modules=["q_proj", "v_proj"])
    return LoraSettings(**{**base, **kw})


def test_job_trains_records_metrics_and_writes_an_adapter(ws, data):
    job_id = jobs.create_job(ws.store, ws.workspace, base=BUNDLED_ID, train_file=data["train"],
                             val_file=data["validation"], settings=_settings(max_steps=3))
    assert jobs.launch(ws.store, job_id).wait(timeout=600) == 0
    job = jobs.refresh(ws.store, job_id)
    assert job["status"] == "completed", jobs.log_tail(job)
    assert job["engine"] == "peft"  # no CUDA here
    rows = jobs.metrics(ws.store, job_id)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["loss"] > 0 and r["tokens_per_s"] > 0 and r["learning_rate"] is not None for r in rows)
    assert rows[1]["eval_loss"] > 0 and rows[2]["eval_loss"] > 0
    adapter = ws.workspace.jobs_dir / f"job-{job_id}" / "adapter"
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0


def _wait_for(predicate, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_cancel_then_resume_continues_from_the_checkpoint(ws, data):
    job_id = jobs.create_job(ws.store, ws.workspace, base=BUNDLED_ID, train_file=data["train"],
                             settings=_settings(max_steps=8))
    process = jobs.launch(ws.store, job_id)
    assert _wait_for(lambda: len(jobs.metrics(ws.store, job_id)) >= 3)
    jobs.cancel(ws.store, job_id)
    process.wait(timeout=120)
    job = jobs.refresh(ws.store, job_id)
    assert job["status"] == "cancelled"
    stopped_at = len(jobs.metrics(ws.store, job_id))
    assert 3 <= stopped_at < 8
    assert jobs.launch(ws.store, job_id, resume=True).wait(timeout=600) == 0
    assert jobs.refresh(ws.store, job_id)["status"] == "completed"
    steps = [r["step"] for r in jobs.metrics(ws.store, job_id)]
    assert steps == list(range(1, 9))  # no step lost or repeated
    assert "resume" in "\n".join(jobs.log_tail(jobs.get_job(ws.store, job_id), 400))


def test_bad_data_is_refused_and_a_crashing_job_is_recorded_as_failed(ws, data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "no answer"}]}\n')
    with pytest.raises(ValueError, match="assistant"):
        jobs.create_job(ws.store, ws.workspace, base=BUNDLED_ID, train_file=bad)
    job_id = jobs.create_job(ws.store, ws.workspace, base=BUNDLED_ID, train_file=data["train"],
                             settings=_settings(max_steps=2))
    copied = jobs.get_job(ws.store, job_id)["train_file"]
    with open(copied, "a") as handle:  # the job's own copy goes bad after creation
        handle.write("{truncated\n")
    assert jobs.launch(ws.store, job_id).wait(timeout=600) == 1
    job = jobs.refresh(ws.store, job_id)
    assert job["status"] == "failed" and "line 13: not a chat record" in job["error"]


def test_trained_job_exports_to_gguf_and_goes_straight_into_an_ab(ws, data):
    from workbench.finetune.export_job import create_ab, run_export
    from workbench.experiments.replay import Replay

    job_id = jobs.create_job(ws.store, ws.workspace, base=BUNDLED_ID, train_file=data["train"],
                             settings=_settings(max_steps=2), name="triage-lora")
    assert jobs.launch(ws.store, job_id).wait(timeout=600) == 0
    summary = run_export(ws.store, job_id, quantize_type="q8_0")
    assert summary["models"] == ["triage-lora", "triage-lora-q8_0"]
    parity = {p["kind"]: p for p in summary["parity"]}
    assert parity["hf_vs_gguf"]["passed"] and parity["chat_template"]["chat_template_ok"]
    job = jobs.get_job(ws.store, job_id)
    assert job["gguf_path"].endswith("triage-lora.q8_0.gguf") and job["adapter_gguf_path"]
    candidate = ws.store.get_model("triage-lora-q8_0")
    assert candidate.lineage["job"] == job_id and candidate.lineage["quantization"] == "q8_0"
    prod = ws.store.create_variant("prod", BUNDLED_ID, max_tokens=4)
    exp = create_ab(ws.store, candidate.id, production="prod", dataset=data_dataset(ws), limit=2)
    assert exp.mode == "shadow" and ws.store.get_variant(exp.arms["B"]).model_id == candidate.id
    assert ws.store.get_variant(exp.arms["B"]).max_tokens == prod.max_tokens
    list(Replay(ws.store.path, exp.id).run())
    runs = ws.store.runs(exp.id)
    assert len(runs) == 4 and all(r["error"] is None and r["output"] for r in runs)


def data_dataset(ws):
    return ws.store.get_dataset("devops_incidents")["id"]
