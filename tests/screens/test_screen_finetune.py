"""Fine-tune screen: training data, stored jobs with their loss chart, cancel, A/B, errors.

No test here trains a model except the slow end-to-end one; jobs and metrics are written to the
store directly (real training is covered by tests/test_finetune_jobs.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from screen_support import (BUNDLED, FIXED_TIME, WORKSPACE_LABEL, incident_lines, screen_text,
                            settle, wait_for, write_jsonl)
from textual.widgets import DataTable, Input, Log, Select, SelectionList

from screens.app import create_app
from screens.dialogs import ConfirmDialog, MessageDialog
from screens.finetune_forms import ABForm, BuildDataForm, NewJobForm

REPO = Path(__file__).resolve().parents[2]
CHATS = [("checkout p99 4 s after deploy 2.31, pool 100/100", "Severity: SEV-1. Roll back 2.31."),
         ("nightly report 40 min late, no impact", "Severity: SEV-3. Clear the batch backlog."),
         ("eu-west primary down, writes fail", "Severity: SEV-0. Fail over by hand."),
         ("autocomplete empty for 30% of queries", "Severity: SEV-2. Restore the index alias.")]
LOG = ["== 2025-06-02T09:30:00.000+00:00 start: -m workbench.finetune.trainer --job 1",
       "loading base smollm2-135m-instruct-q4_1 (GGUF, dequantized) ...",
       "engine peft: LoRA rank 4 on q_proj, v_proj (0.23 M trainable parameters)",
       "12 train / 2 validation examples, 12 steps",
       "job 1: completed"]


def at(minute: int) -> str:
    return FIXED_TIME.replace("09:30", f"09:{minute:02d}")


def chat_file(path: Path) -> Path:
    return write_jsonl(path, [json.dumps({"messages": [{"role": "user", "content": q},
                                                       {"role": "assistant", "content": a}]})
                              for q, a in CHATS])


def finetune_workspace(tmp_path: Path, *, devops: bool = False, jobs: bool = True) -> Path:
    """A workspace with a dataset; with ``jobs``, a completed exported job and a cancelled one."""
    from workbench.finetune.jobs import create_job
    from workbench.finetune.settings import LoraSettings
    from workbench.store import ModelRecord
    from workbench.workspace import open_workspace

    root = tmp_path / "ws"
    if devops:
        (root / "datasets").mkdir(parents=True)
        shutil.copy(REPO / "datasets" / "devops_incidents.jsonl", root / "datasets")
    else:
        write_jsonl(root / "datasets" / "incidents.jsonl", incident_lines(3))
    opened = open_workspace(root)
    if not jobs:
        opened.close()
        return root
    store, data = opened.store, chat_file(tmp_path / "data" / "train.jsonl")
    settings = LoraSettings(rank=4, alpha=8, max_steps=12, seq_len=192, batch_size=2,
                            target_modules=["q_proj", "v_proj"], eval_every=4)
    try:
        done = create_job(store, opened.workspace, base=BUNDLED, train_file=data, val_file=data,
                          settings=settings, name="triage-lora")
        stopped = create_job(store, opened.workspace, base=BUNDLED, train_file=data,
                             settings=LoraSettings(rank=16, alpha=32, max_steps=40),
                             name="triage-lora-r16")
        job_dir = opened.workspace.jobs_dir
        with store.db.conn:
            for job_id, status, start, end in ((done, "completed", 31, 36),
                                               (stopped, "cancelled", 40, 42)):
                store.db.execute(
                    "UPDATE finetune_jobs SET status = ?, engine = 'peft', created_at = ?, "
                    "started_at = ?, ended_at = ?, checkpoint = ? WHERE id = ?",
                    [status, at(start - 1), at(start), at(end),
                     str(job_dir / f"job-{job_id}" / "checkpoint"), job_id])
            for step in range(1, 13):
                store.db.execute(
                    "INSERT INTO training_metrics (job_id, step, epoch, loss, eval_loss, "
                    "learning_rate, tokens_per_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [done, step, step / 2, 3.2 - 0.15 * step + 0.05 * (step % 3),
                     3.1 - 0.12 * step if step % 4 == 0 else None, 2e-4 * (1 - step / 12),
                     410.0 + step, at(32)])
            for step in range(1, 6):
                store.db.execute(
                    "INSERT INTO training_metrics (job_id, step, epoch, loss, learning_rate, "
                    "tokens_per_s, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [stopped, step, step / 10, 3.0 - 0.1 * step, 2e-4, 380.0, at(41)])
            store.db.execute("UPDATE finetune_jobs SET gguf_path = ?, adapter_gguf_path = ? "
                             "WHERE id = ?", [str(job_dir / "job-1/export/triage-lora.q8_0.gguf"),
                                              str(job_dir / "job-1/export/triage-lora.lora.gguf"),
                                              done])
            for model_id, kind, agreement, exact, template, passed in (
                    ("triage-lora", "hf_vs_gguf", 0.97, 3, None, 1),
                    ("triage-lora", "chat_template", None, 0, 1, 1),
                    ("triage-lora-q8_0", "gguf_vs_gguf", 0.81, 2, None, 1)):
                store.db.execute(
                    "INSERT INTO parity_checks (model_id, kind, n_prompts, token_agreement, "
                    "exact_matches, chat_template_ok, passed, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [model_id, kind, 0 if kind == "chat_template" else 4, agreement, exact,
                     template, passed, at(37)])
        bundled = store.get_model(BUNDLED)
        for model_id, quant in (("triage-lora", None), ("triage-lora-q8_0", "q8_0")):
            store.upsert_model(ModelRecord(id=model_id, path=bundled.path, architecture="llama",
                                           added_at=at(37), lineage={"job": done,
                                                                     "quantization": quant}))
        for job_id in (done, stopped):
            (job_dir / f"job-{job_id}" / "train.log").write_text(
                "\n".join(LOG).replace("job 1", f"job {job_id}") + "\n")
        store.db["datasets"].update(1, {"imported_at": FIXED_TIME, "source_path": "datasets/x"})
    finally:
        opened.close()
    return root


def notices(app) -> str:
    return "\n".join(str(n.message) for n in app._notifications)


def job_status(root: Path, job_id: int) -> str:
    from workbench.finetune.jobs import get_job
    from workbench.store import Store

    with Store(root / "workbench.db") as store:
        return get_job(store, job_id)["status"]


async def open_screen(pilot):
    await settle(pilot)
    await wait_for(pilot, lambda: pilot.app.screen.overview is not None, what="the jobs")
    await settle(pilot)
    return pilot.app.screen


async def test_build_data_writes_both_files_and_shows_the_summary(tmp_path, make_app):
    root = finetune_workspace(tmp_path, devops=True, jobs=False)
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        assert "No fine-tune job yet" in screen_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, BuildDataForm), what="the form")
        form = app.screen
        categories = form.query_one(SelectionList)
        assert categories.option_count == 16  # the categories of devops_incidents
        for name in ("auth", "deploy", "database"):
            categories.select(name)
        form.query_one("#seed", Input).value = "7"
        form.query_one("#val-fraction", Input).value = "0.2"
        form.query_one("#format", Select).value = "anthropic"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), what="the summary")
        text = screen_text(app)
        built = screen.last_build
        assert f"{built.n_train} train / {built.n_validation} validation" in text
        assert built.n_train + built.n_validation == 7 + 6 + 9  # every auth, deploy, database item
        assert "inc-029: aws_access_key" in text and "inc-033" in text  # flagged and redacted
        assert built.train.parent.parent == root / "jobs" / "data"
        records = [json.loads(line) for line in built.train.read_text().splitlines()]
        assert len(records) == built.n_train and all("messages" in r for r in records)
        assert "AKIA" not in built.train.read_text() + built.validation.read_text()
        await pilot.press("escape")
        await pilot.press("n")  # the new-job form offers the files just built
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobForm), what="the job form")
        assert app.screen.query_one("#train", Input).value == str(built.train)
        assert app.screen.query_one("#val", Input).value == str(built.validation)


async def test_stored_jobs_show_their_metrics_loss_chart_log_and_parity(tmp_path, make_app):
    root = finetune_workspace(tmp_path)
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        table = screen.query_one("#jobs-table", DataTable)
        assert table.row_count == 2
        newest = [str(c) for c in table.get_row_at(0)]
        assert newest[:6] == ["2", "triage-lora-r16", BUNDLED, "peft", "cancelled", "5/40"]
        assert newest[6] == "2.5000"
        await pilot.press("down")
        await settle(pilot)
        assert screen.overview.detail.job["id"] == 1
        chart = screen.query_one("#loss-chart")
        assert [s for s, _ in chart.series["train"]] == list(range(1, 13))
        assert [s for s, _ in chart.series["validation"]] == [4, 8, 12]
        text = screen_text(app)
        assert "step 12/12" in text and "val 1.6600" in text and "tok/s 422" in text
        assert "job 1: completed" in text  # the log tail
        assert "parity passed" in text and "97%" in text and "F16 vs quant" in text
        assert "jobs/job-1/train.jsonl" in text  # workspace paths shown relative
        assert list(screen.query_one(Log).lines)[-1] == "job 1: completed"


async def test_cancel_a_queued_job_and_refusals_as_notices(tmp_path, make_app):
    from workbench.finetune.jobs import create_job
    from workbench.store import Store
    from workbench.workspace import resolve_workspace

    root = finetune_workspace(tmp_path)
    with Store(root / "workbench.db") as store:
        queued = create_job(store, resolve_workspace(root), base=BUNDLED,
                            train_file=chat_file(tmp_path / "q.jsonl"), name="waiting")
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        assert screen.selected_id() == queued
        await pilot.press("e")  # not completed: refused with a notice
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: job_status(root, queued) == "cancelled", what="the cancel")
        await settle(pilot)
        await wait_for(pilot, lambda: screen.rows[queued].job["status"] == "cancelled",
                       what="the table")
        assert "cancelled" in str(screen.query_one(DataTable).get_row_at(0)[4])
        await pilot.press("c")  # nothing left to cancel
        await pilot.press("down", "down")  # job 1
        await settle(pilot)
        assert screen.selected_id() == 1
        await pilot.press("r")  # a completed job is exported, not resumed
        text = notices(app)
        assert "only a completed job can be exported" in text
        assert "only a queued or running job can be cancelled" in text
        assert "is completed; e exports it" in text
        assert not app.errors


async def test_invalid_settings_and_a_bad_base_are_notified(tmp_path, make_app):
    root = finetune_workspace(tmp_path, jobs=False)
    train = chat_file(root / "jobs" / "data" / "incidents-20250602-093000" / "train.jsonl")
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobForm), what="the form")
        form = app.screen
        assert form.query_one("#train", Input).value == str(train)  # an earlier session's build
        assert form.query_one("#val", Input).value == ""  # (it has no validation file)
        form.query_one("#rank", Input).value = "0"
        form.query_one("#dropout", Input).value = "1.5"
        await pilot.click("#ok")
        await pilot.pause()
        assert app.screen is form  # kept open, values intact
        assert "rank must be >= 1" in notices(app) and "dropout must be in [0, 1)" in notices(app)
        form.query_one("#rank", Input).value = "4"
        form.query_one("#dropout", Input).value = "0.1"
        form.query_one("#path", Input).value = str(tmp_path / "missing.gguf")
        form.query_one("#path", Input).focus()
        await pilot.press("enter")  # (the first notice may cover the OK button)
        await wait_for(pilot, lambda: "neither a registered model" in notices(app),
                       what="the refusal")
        await settle(pilot)
        assert screen.query_one(DataTable).row_count == 0
        await pilot.press("n")  # the form comes back as it was submitted
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobForm), what="the form")
        assert app.screen.query_one("#rank", Input).value == "4"
        assert app.screen.query_one("#path", Input).value.endswith("missing.gguf")


async def test_ab_of_an_exported_model_then_open_it_on_experiments(tmp_path, make_app):
    from workbench.store import Store

    root = finetune_workspace(tmp_path)
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot)
        await pilot.press("down")  # job 1, exported
        await settle(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ABForm), what="the form")
        form = app.screen
        assert form.query_one("#candidate", Select).value == "triage-lora-q8_0"
        assert form.query_one("#production", Select).value == "prod-triage"
        form.query_one("#limit", Input).value = "2"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the offer")
        await pilot.press("y")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ExperimentsScreen",
                       what="the Experiments screen")
        await settle(pilot)
        with Store(root / "workbench.db") as store:
            exp = store.list_experiments()[-1]
            b = store.get_variant(exp.arms["B"])
            assert exp.mode == "shadow" and exp.item_limit == 2
            assert b.model_id == "triage-lora-q8_0" and b.name == "prod-triage@triage-lora-q8_0"
        assert app.screen.view.exp.id == exp.id
        assert "prod-triage@triage-lora-q8_0" in screen_text(app)


async def test_the_log_keeps_following_its_tail_and_the_export_step_shows(tmp_path, make_app):
    root = finetune_workspace(tmp_path)
    log_path = root / "jobs" / "job-2" / "train.log"
    log_path.write_text("".join(f"line {i}\n" for i in range(60)))
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        log = screen.query_one(Log)
        await wait_for(pilot, lambda: log.max_scroll_y > 0 and log.is_vertical_scroll_end,
                       what="the end of the log")
        screen.exporting = 2  # the progress row appears: the log loses a row
        screen.show_export_progress(None)
        await pilot.pause(0.1)
        with open(log_path, "a") as handle:
            handle.write("== export: ...\nexport: quantize_q8_0 (50%)\n")
        screen.poll(force=True)
        await settle(pilot)
        await wait_for(pilot, lambda: log.is_vertical_scroll_end, what="the log to follow")
        assert log.lines[-1] == "export: quantize_q8_0 (50%)"
        assert screen.overview.export_step == ("quantize_q8_0", 0.5)
        assert "exporting job 2: quantize q8 0" in screen_text(app)
        screen.exporting = None


def test_log_continuation():
    from screens.finetune_view import continuation

    assert continuation(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert continuation(["a", "b"], ["a", "b"]) == []
    assert continuation(["a", "b"], ["x", "y"]) is None
    assert continuation([], ["x"]) == ["x"]


def test_fine_tune_screen_snapshot(snap_compare, tmp_path):
    root = finetune_workspace(tmp_path)

    async def run_before(pilot) -> None:
        pilot.app.sub_title = WORKSPACE_LABEL
        await open_screen(pilot)
        await pilot.press("down")
        await settle(pilot)

    app = create_app(root, start_screen="fine-tune")
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


@pytest.mark.slow
async def test_a_tiny_job_started_from_the_screen_trains_to_completion(tmp_path, make_app):
    root = finetune_workspace(tmp_path, devops=True, jobs=False)
    app = make_app(root, start_screen="fine-tune")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, BuildDataForm), what="the form")
        app.screen.query_one(SelectionList).select("cache")  # 3 incidents: a small set
        app.screen.query_one("#val-fraction", Input).value = "0.34"
        await pilot.click("#ok")
        await wait_for(pilot, lambda: isinstance(app.screen, MessageDialog), what="the summary")
        await pilot.press("escape")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobForm), what="the job form")
        form = app.screen
        for field, value in (("max-steps", "2"), ("seq-len", "128"), ("rank", "4"),
                             ("batch-size", "2"), ("target-modules", "q_proj,v_proj")):
            form.query_one(f"#{field}", Input).value = value
        await pilot.click("#ok")
        await wait_for(pilot, lambda: screen.rows and screen.processes, 30, "the job")
        job_id = next(iter(screen.rows))
        await wait_for(pilot, lambda: screen.rows[job_id].job["status"] == "completed", 110,
                       "the job to complete")
        await wait_for(pilot, lambda: not screen.processes, 5, "the process to be reaped")
        assert screen.rows[job_id].step == 2
        assert [s for s, _ in screen.query_one("#loss-chart").series["train"]] == [1, 2]
