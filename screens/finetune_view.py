"""What the Fine-tune screen shows, read in worker threads, and how it is rendered (no Textual)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rich.console import Group
from rich.table import Table

from .format import shorten, timestamp
from .widgets.safe import Text

ACTIVE = ("queued", "running")
QUANT_TYPES = ("q8_0", "q5_k_m", "q4_k_m")
STATUS_STYLE = {"running": "bold cyan", "queued": "yellow", "completed": "green",
                "cancelled": "dim", "failed": "bold red", "stopping…": "yellow"}
EXPORT_STEP = re.compile(r"^export: (\S+) \((\d+)%\)")


@dataclass
class JobRow:
    """One job of the table: its row and where its training stands."""

    job: dict
    step: int | None = None
    total: int | None = None
    loss: float | None = None


@dataclass
class JobDetail:
    """The selected job: every metric, the log tail, the models its export registered, parity."""

    job: dict
    metrics: list[dict]
    log: list[str]
    products: list[str] = field(default_factory=list)
    parity: list[dict] = field(default_factory=list)


@dataclass
class Overview:
    jobs: list[JobRow]
    detail: JobDetail | None
    export_step: tuple[str, float] | None = None  # the running export's last step and fraction


def total_steps(job: dict) -> int | None:
    """The optimizer steps the job will run (as the trainer counts them), None if unknown."""
    from workbench.finetune.data_loading import read_chat_jsonl
    from workbench.finetune.settings import LoraSettings

    try:
        settings = LoraSettings.from_dict(json.loads(job["config"]))
        return settings.total_steps(0 if settings.max_steps else len(read_chat_jsonl(job["train_file"])))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def export_step(lines: list[str]) -> tuple[str, float] | None:
    """The last "export: STEP (N%)" line of a job's log."""
    for line in reversed(lines):
        match = EXPORT_STEP.match(line.strip())
        if match:
            return match.group(1), int(match.group(2)) / 100
    return None


def continuation(old: list[str], new: list[str]) -> list[str] | None:
    """The lines of a log tail ``new`` that follow the tail ``old``; None if it does not follow."""
    if not old:
        return list(new)
    for overlap in range(min(len(old), len(new)), 0, -1):
        if old[-overlap:] == new[:overlap]:
            return new[overlap:]
    return None


class JobFeed:
    """Reads the jobs for the screen, once a second, in worker threads; caches per job totals."""

    def __init__(self, log_lines: int = 80):
        self.log_lines = log_lines
        self._lock = threading.Lock()
        self._totals: dict[int, int | None] = {}
        self._last: dict[int, tuple[tuple, int | None, float | None]] = {}

    def read(self, store, selected: int | None, exporting: int | None = None) -> Overview:
        from workbench.finetune import jobs as ft

        with self._lock:
            rows, detail, step = [], None, None
            found_jobs = ft.list_jobs(store)  # also marks jobs whose process died as failed
            if found_jobs and selected not in {j["id"] for j in found_jobs}:
                selected = found_jobs[0]["id"]  # the table's cursor starts on the newest job
            for job in found_jobs:
                job_id = job["id"]
                signature = (job["status"], job["ended_at"], job["pid"])
                cached = self._last.get(job_id)
                wanted = job_id == selected
                if wanted or job["status"] == "running" or not cached or cached[0] != signature:
                    found = ft.metrics(store, job_id)
                    losses = [m for m in found if m["loss"] is not None]
                    last_step = found[-1]["step"] if found else None
                    cached = (signature, last_step, losses[-1]["loss"] if losses else None)
                    self._last[job_id] = cached
                    if wanted:
                        detail = JobDetail(job, found, ft.log_tail(job, self.log_lines))
                if job_id not in self._totals:
                    self._totals[job_id] = total_steps(job)
                rows.append(JobRow(job, cached[1], self._totals[job_id], cached[2]))
                if job_id == exporting:
                    step = export_step(ft.log_tail(job, 30))
            if detail is not None:
                detail.products, detail.parity = job_products(store, detail.job["id"])
            return Overview(rows, detail, step)


def job_products(store, job_id: int) -> tuple[list[str], list[dict]]:
    """Models registered from a job's export (merged first) and their stored parity checks."""
    from workbench.export.parity import stored_results

    models = [m for m in store.list_models()
              if m.lineage and str(m.lineage.get("job")) == str(job_id)]
    models.sort(key=lambda m: (m.lineage.get("quantization") is not None, m.id))
    parity, seen = [], set()
    for model in models:
        for row in stored_results(store, model.id):  # newest first: a re-export replaces
            if row["kind"] not in seen:
                seen.add(row["kind"])
                parity.append({**row, "model": model.lineage.get("quantization") or "merged"})
        seen.clear()
    order = list(CHECKS)
    parity.sort(key=lambda r: ([m.id for m in models].index(r["model_id"]),
                               order.index(r["kind"]) if r["kind"] in order else 9))
    return [m.id for m in models], parity


# -- rendering ------------------------------------------------------------------------------
def relative(path: str | None, root: Path) -> str:
    """A path under the workspace shown relative to it."""
    if not path:
        return "-"
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def base_label(job: dict) -> str:
    return job["base_model_id"] or Path(job["base_path"]).name


def settings_line(job: dict) -> str:
    try:
        c = json.loads(job["config"])
    except (TypeError, ValueError):
        return "-"
    length = f"{c['max_steps']} steps" if c.get("max_steps") else f"{c['epochs']:g} epoch(s)"
    return (f"rank {c['rank']} · alpha {c['alpha']} · dropout {c['dropout']:g} · lr "
            f"{c['learning_rate']:.0e} · {length} · seq {c['seq_len']} · batch {c['batch_size']}"
            f"×{c['grad_accum']} · seed {c['seed']} · {','.join(c['target_modules'])}")


def table_cells(row: JobRow, status: str) -> tuple:
    job = row.job
    step = "-" if row.step is None else str(row.step)
    return (str(job["id"]), shorten(job["name"], 24), shorten(base_label(job), 28), job["engine"],
            Text(status, style=STATUS_STYLE.get(status, "")),
            f"{step}/{row.total if row.total is not None else '?'}",
            "-" if row.loss is None else f"{row.loss:.4f}", timestamp(job["created_at"]))


def stats_line(metrics: list[dict], total: int | None) -> Text:
    """Step, epoch, train / validation loss; learning rate and tokens/s of a job (two lines)."""
    if not metrics:
        return Text("no metrics yet", style="dim")
    last = metrics[-1]

    def latest(column: str):
        return next((m[column] for m in reversed(metrics) if m[column] is not None), None)

    loss, val, tps = latest("loss"), latest("eval_loss"), latest("tokens_per_s")
    text = Text()
    for label, value in (("step", f"{last['step']}/{total or '?'}"),
                         ("epoch", "-" if last["epoch"] is None else f"{last['epoch']:.2f}"),
                         ("loss", "-" if loss is None else f"{loss:.4f}"),
                         ("val", "-" if val is None else f"{val:.4f}"), ("\n", ""),
                         ("lr", "-" if last["learning_rate"] is None
                          else f"{last['learning_rate']:.2e}"),
                         ("tok/s", "-" if not tps else f"{tps:.0f}")):
        if label == "\n":
            text.append("\n")
            continue
        text.append(f"{label} ", style="bold")
        text.append(f"{value}   ")
    return text


CHECKS = {"hf_vs_gguf": "HF vs GGUF", "chat_template": "chat template",
          "gguf_vs_gguf": "F16 vs quant"}


def parity_table(parity: list[dict]) -> Table:
    """Token agreement, exact matches and pass/fail of each check (template: ok or broken)."""
    table = Table(box=None, header_style="bold", expand=True, pad_edge=False)
    table.add_column("model", overflow="fold", ratio=1)
    table.add_column("check", no_wrap=True)
    table.add_column("agree", justify="right", no_wrap=True)
    table.add_column("exact", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for p in parity:
        agreement = p.get("agreement", p.get("token_agreement"))  # the gated figure
        template = p.get("chat_template_ok")
        if p["kind"] == "chat_template" and template is not None:
            result = Text("ok" if template else "broken", style="bold green" if template
                          else "bold red")
        else:
            verdict = p.get("verdict") or ("passed" if p.get("passed") else "failed")
            floor = p.get("threshold")
            result = {"passed": Text("pass", style="bold green"),
                      "advisory": Text("advisory" + (f" (<{floor:.0%})" if floor else ""),
                                       style="bold yellow"),
                      }.get(verdict, Text("FAIL" + (f" (<{floor:.0%})" if floor else ""),
                                          style="bold red"))
        table.add_row(
            p.get("model") or p.get("model_id") or "-", CHECKS.get(p["kind"], p["kind"]),
            "-" if agreement is None else f"{agreement:.0%}",
            "-" if p["kind"] == "chat_template" else
            f"{p.get('exact_matches') or 0}/{p.get('n_prompts') or 0}", result)
    return table


def job_info(detail: JobDetail, status: str, root: Path) -> Group:
    """The selected job's settings, files, error, exported models and parity results."""
    job = detail.job
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    title = Text(f"job {job['id']} · {job['name']} · ", style="bold")
    title.append(status, style=STATUS_STYLE.get(status, ""))
    title.append(f" · {job['engine']}")
    data = relative(job["train_file"], root)
    if job["val_file"]:
        data += f" + {Path(job['val_file']).name}"
    ended = f" → {timestamp(job['ended_at'])[11:]}" if job["ended_at"] else ""
    rows = [("base", job["base_model_id"] or relative(job["base_path"], root)),
            ("settings", settings_line(job)), ("data", data),
            ("ran", f"{timestamp(job['started_at'])}{ended}" if job["started_at"] else "-"),
            ("checkpoint", relative(job["checkpoint"], root))]
    if job["gguf_path"]:
        rows.append(("GGUF", relative(job["gguf_path"], root)))
    if detail.products:
        rows.append(("models", ", ".join(detail.products)))
    for name, value in rows:
        grid.add_row(name, Text(str(value), overflow="fold"))
    if job["error"]:
        grid.add_row(Text("error", style="bold red"), Text(job["error"], style="red"))
    parts: list = [title, grid]
    if detail.parity:
        passed = all((p.get("verdict") or ("passed" if p["passed"] else "failed")) != "failed"
                     for p in detail.parity)
        parts += [Text("parity " + ("passed" if passed else "FAILED"),
                       style="bold green" if passed else "bold red"), parity_table(detail.parity)]
    elif job["status"] == "completed":
        parts.append(Text("Not exported yet: e writes the GGUF, quantizes it and checks parity.",
                          style="dim"))
    elif job["status"] in ("cancelled", "failed"):
        parts.append(Text("r resumes it from its last checkpoint.", style="dim"))
    return Group(*parts)


def export_report(summary: dict) -> Group:
    """The result of an export: registered models, parity checks, timings."""
    passed = summary.get("parity_passed", all(p["passed"] for p in summary.get("parity", [])))
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in (summary.get("timings") or {}).items())
    return Group(
        Text("Parity " + ("passed" if passed else "FAILED: check before you A/B this model"),
             style="bold green" if passed else "bold red"),
        Text(f"registered: {', '.join(summary.get('models') or []) or '-'}"),
        Text(""), parity_table(summary.get("parity") or []), Text(""),
        Text(f"timings: {timings or '-'}", style="dim"),
        Text("a creates an A/B: production vs this model.", style="dim"))


# -- training data -------------------------------------------------------------------------
@dataclass
class BuiltData:
    """Files written by the data builder and what they hold."""

    dataset_id: int
    dataset: str
    fmt: str
    train: Path
    validation: Path
    summary: str
    flagged: list[tuple[str, list[str]]]  # (item key, secret kinds)
    n_train: int
    n_validation: int


def build_data(store, jobs_dir: Path, spec: dict) -> BuiltData:
    """Run the dataset builder and write train/validation JSONL under ``jobs/data``."""
    from workbench.finetune.dataset_builder import build_examples, export_split

    dataset = store.get_dataset(spec["dataset_id"])
    result = build_examples(store, dataset["id"], min_quality=spec["min_quality"],
                            categories=spec["categories"] or None, balance=spec["balance"],
                            val_fraction=spec["val_fraction"], seed=spec["seed"],
                            include_references=spec["include_references"])
    if not result.train:
        raise ValueError(f"no training example left: {result.summary()}")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", dataset["name"]).strip("-") or "dataset"
    folder = jobs_dir / "data" / f"{safe}-{datetime.now():%Y%m%d-%H%M%S}"
    files = export_split(result, folder, spec["fmt"])
    flagged = [(e.item_key, e.secrets) for e in result.train + result.validation if e.secrets]
    return BuiltData(dataset["id"], dataset["name"], spec["fmt"], files["train"],
                     files["validation"], result.summary(), sorted(flagged), len(result.train),
                     len(result.validation))


def latest_data(jobs_dir: Path) -> dict | None:
    """The newest files written by the data builder: {"train", "val"} paths, or None."""
    found = sorted(jobs_dir.glob("data/*/train.jsonl"), key=lambda p: p.stat().st_mtime)
    if not found:
        return None
    val = found[-1].with_name("validation.jsonl")
    has_val = val.is_file() and val.stat().st_size > 0
    return {"train": str(found[-1]), "val": str(val) if has_val else ""}


def built_report(built: BuiltData, root: Path) -> Group:
    parts: list = [Text(built.summary, style="bold"), Text(""),
                   Text(f"train       {relative(str(built.train), root)}"),
                   Text(f"validation  {relative(str(built.validation), root)}"),
                   Text(f"format      {built.fmt}")]
    if built.flagged:
        parts += [Text(""), Text(f"{len(built.flagged)} incident(s) with secrets, redacted in "
                                 "the files:", style="bold yellow")]
        parts += [Text(f"  {key}: {', '.join(kinds)}") for key, kinds in built.flagged]
    parts += [Text(""), Text("n starts a fine-tune job on these files.", style="dim")]
    return Group(*parts)
