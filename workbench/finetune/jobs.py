"""Fine-tune jobs: create, launch as a subprocess (argv list), follow, cancel, resume.

The job's state and metrics live in the store (written by the job process itself, so a job keeps
running and recording when the TUI closes); its log is a file the UI tails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..private_files import open_private
from ..config import Workspace
from ..export.hf_loader import OFFLINE_ENV
from ..store import NotFound, Store, utcnow
from .data_loading import read_chat_jsonl
from .settings import LoraSettings

ACTIVE = ("queued", "running")


def resolve_base(store: Store, base: str) -> tuple[str | None, str]:
    """(model id, path) for a registered model id, a GGUF path or a local HF folder."""
    try:
        model = store.get_model(base)
        return model.id, model.path
    except NotFound:
        pass
    path = Path(base).expanduser()
    if path.is_file() or (path.is_dir() and (path / "config.json").is_file()):
        return None, str(path.resolve())
    raise NotFound(f"base {base!r} is neither a registered model nor a GGUF file or HF folder")


def create_job(store: Store, workspace: Workspace, *, base: str, train_file: str | Path,
               val_file: str | Path | None = None, settings: LoraSettings | None = None,
               name: str | None = None, dataset_id: int | None = None) -> int:
    """Record a queued job with its own folder (data copied in, so the job is self-contained)."""
    settings = (settings or LoraSettings()).validate()
    model_id, base_path = resolve_base(store, base)
    for path in filter(None, (train_file, val_file)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"no training data at {path}")
        if not read_chat_jsonl(path):
            raise ValueError(f"{Path(path).name} holds no conversations")
    with store.db.atomic():
        job_id = store.db["finetune_jobs"].insert({
            "name": name or f"lora-{model_id or Path(base_path).stem}", "base_model_id": model_id,
            "base_path": base_path, "dataset_id": dataset_id, "engine": settings.engine,
            "config": json.dumps(settings.to_dict()), "status": "queued", "output_dir": "",
            "created_at": utcnow()}).last_pk
    out = workspace.jobs_dir / f"job-{job_id}"
    out.mkdir(parents=True, exist_ok=True)
    train_copy = shutil.copy(train_file, out / "train.jsonl")
    val_copy = shutil.copy(val_file, out / "validation.jsonl") if val_file else None
    with store.db.atomic():
        store.db["finetune_jobs"].update(job_id, {
            "output_dir": str(out), "train_file": str(train_copy),
            "val_file": str(val_copy) if val_copy else None, "log_path": str(out / "train.log")})
    return job_id


def get_job(store: Store, job_id: int) -> dict:
    rows = store.rows("SELECT * FROM finetune_jobs WHERE id = ?", [int(job_id)])
    if not rows:
        raise NotFound(f"no fine-tune job {job_id}")
    return rows[0]


def list_jobs(store: Store) -> list[dict]:
    for job in store.rows("SELECT id FROM finetune_jobs WHERE status = 'running'"):
        refresh(store, job["id"])
    return store.rows("SELECT * FROM finetune_jobs ORDER BY id DESC")


def metrics(store: Store, job_id: int) -> list[dict]:
    return store.rows("SELECT * FROM training_metrics WHERE job_id = ? ORDER BY step", [job_id])


def launch(store: Store, job_id: int, *, resume: bool = False) -> subprocess.Popen:
    """Start the job process (or restart it from its checkpoint with ``resume``)."""
    job = refresh(store, job_id)
    if job["status"] == "running":
        raise ValueError(f"job {job_id} is already running (pid {job['pid']})")
    if job["status"] == "completed" and not resume:
        raise ValueError(f"job {job_id} is already completed")
    argv = [sys.executable, "-m", "workbench.finetune.trainer", "--db", str(store.path),
            "--job", str(job_id)] + (["--resume"] if resume else [])
    log = open_private(job["log_path"], "a")
    log.write(f"\n== {utcnow()} {'resume' if resume else 'start'}: {' '.join(argv[1:])}\n")
    log.flush()
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env={**os.environ, **OFFLINE_ENV})
    log.close()
    with store.db.atomic():
        store.db["finetune_jobs"].update(job_id, {"status": "running", "pid": process.pid,
                                                  "ended_at": None, "error": None})
    return process


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child of this process has ended too
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def refresh(store: Store, job_id: int) -> dict:
    """The job, with a 'running' job whose process is gone marked failed."""
    job = get_job(store, job_id)
    if job["status"] == "running" and not _alive(job["pid"]):
        job = get_job(store, job_id)  # it may have just written its own final status
        if job["status"] == "running":
            with store.db.atomic():
                store.db["finetune_jobs"].update(job_id, {
                    "status": "failed", "pid": None, "ended_at": utcnow(),
                    "error": "the job process ended without recording a result (see its log)"})
            job = get_job(store, job_id)
    return job


def cancel(store: Store, job_id: int) -> dict:
    """Ask a running job to stop: it saves a checkpoint and ends as 'cancelled'."""
    job = refresh(store, job_id)
    if job["status"] == "running" and job["pid"]:
        os.kill(job["pid"], signal.SIGTERM)
    elif job["status"] == "queued":
        with store.db.atomic():
            store.db["finetune_jobs"].update(job_id, {"status": "cancelled", "ended_at": utcnow()})
    return get_job(store, job_id)


def log_tail(job: dict, lines: int = 40) -> list[str]:
    """The last lines of a job's log."""
    path = Path(job["log_path"] or "")
    if not path.is_file():
        return []
    return path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
