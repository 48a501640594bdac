"""Long CLI steps (quantize, finetune export) show progress from their log and end with a table;
`--json` gives the raw result instead."""

from __future__ import annotations

import io
import json
import time

import pytest

from workbench.cli import main
from workbench.cli.finetune import _export_progress, _quantize_progress
from workbench.cli.output import ProgressBar, run_with_log_progress


def test_log_parsers_read_the_last_step():
    log = ("llama_model_loader: ...\n[   1/ 272] output_norm.weight  - [ 576, 1], type = f32\n"
           "[  17/ 272] blk.1.attn_k.weight - [ 576, 192], type = q4_1, ")
    assert _quantize_progress(log) == (17, 272, "blk.1.attn_k.weight")
    assert _quantize_progress("nothing yet") is None
    assert _export_progress("export: merge (0%)\nexport: write_gguf (30%)\n") == (30, 100, "write_gguf")


def test_progress_follows_the_log_and_returns_the_result(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("old line [ 9/ 9] before\n")  # what was there before is not progress

    def work():
        for i in (1, 2, 3):
            with open(log, "a") as f:
                f.write(f"[ {i}/ 3] tensor-{i}\n")
            time.sleep(0.05)
        return {"ok": True}

    stream = io.StringIO()
    assert run_with_log_progress(work, log, _quantize_progress, bar=ProgressBar(stream),
                                 poll_s=0.01) == {"ok": True}
    lines = stream.getvalue().splitlines()
    assert lines and lines[-1].startswith("[") and "3/3" in lines[-1] and "tensor-3" in lines[-1]
    assert not any("9/9" in line for line in lines)


def test_progress_reraises_the_work_error(tmp_path):
    def work():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_with_log_progress(work, tmp_path / "none.log", _quantize_progress,
                              bar=ProgressBar(io.StringIO()), poll_s=0.01)


@pytest.fixture
def fake_quantize(monkeypatch):
    """llama.cpp's quantize replaced: it logs tensor lines and writes a smaller file."""
    from workbench.export import quantize as module

    def fake(in_path, out_path, qtype, *, log_path=None, **_):
        with open(log_path, "a") as log:
            for i in (1, 2):
                log.write(f"[   {i}/   2] t{i} - [ 8, 8], type = f32, size = 0.1 MiB\n")
        out_path.write_bytes(b"x" * 50)
        return {"ok": True, "input": str(in_path), "output": str(out_path), "type": qtype,
                "input_bytes": 100, "output_bytes": 50, "ratio": 0.5, "seconds": 0.1}

    monkeypatch.setattr(module, "quantize", fake)


def test_quantize_shows_progress_then_a_table_or_json(ws, tmp_path, capsys, fake_quantize):
    source = tmp_path / "m.f16.gguf"
    source.write_bytes(b"y" * 100)
    root = str(ws.workspace.root)
    assert main(["--workspace", root, "quantize", str(source), str(tmp_path / "a.gguf")]) == 0
    out, err = capsys.readouterr()
    assert "2/2" in err and "100%" in err  # the bar, on stderr
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["input", "output", "type"]
    assert "m.f16.gguf" in row and "q4_k_m" in row and "0.5" in row
    assert main(["--workspace", root, "quantize", str(source), str(tmp_path / "b.gguf"),
                 "--type", "q8_0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["type"] == "q8_0" and result["output_bytes"] == 50


def test_export_of_a_job_that_is_not_completed_is_refused(ws, tmp_path, capsys):
    from workbench.finetune import jobs

    train = tmp_path / "t.jsonl"
    train.write_text('{"messages": [{"role": "user", "content": "a"}, '
                     '{"role": "assistant", "content": "b"}]}\n')
    job = jobs.create_job(ws.store, ws.workspace, base="smollm2-135m-instruct-q4_1",
                          train_file=train)
    code = main(["--workspace", str(ws.workspace.root), "finetune", "export", str(job)])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: job {job} is queued; only a completed job can be exported\n"
