"""Opening a workspace: database, registry sync, sample datasets and starter variants."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .config import Workspace, resolve_workspace
from .datasets import DatasetError, import_dataset
from .models.registry import BUNDLED_ID, Registry
from .store import NotFound, Store
from .terminal_text import safe_text

TRIAGE_SYSTEM = (
    "You are an on-call SRE assistant. Read the incident and answer with its severity "
    "(SEV-0 total outage or data loss, SEV-1 major customer impact, SEV-2 partial impact with a "
    "workaround, SEV-3 no customer impact), the most likely root cause, and the first "
    "remediation step. Be brief and never reveal credentials.")

TRIAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": ["SEV-0", "SEV-1", "SEV-2", "SEV-3"]},
        "root_cause": {"type": "string"},
        "first_step": {"type": "string"},
    },
    "required": ["severity", "root_cause", "first_step"],
}

STARTER_VARIANTS = (
    ("prod-triage", dict(system_prompt=TRIAGE_SYSTEM, max_tokens=128)),
    ("candidate-json-triage", dict(system_prompt=TRIAGE_SYSTEM + " Answer in JSON.",
                                   max_tokens=128, json_schema=TRIAGE_SCHEMA)),
)


@dataclass
class OpenedWorkspace:
    workspace: Workspace
    store: Store
    registry: Registry
    problems: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.store.close()


def ensure_starter_variants(store: Store) -> None:
    """Give a new workspace two variants on the bundled model so a first A/B needs no set-up."""
    if store.list_variants():
        return
    try:
        store.get_model(BUNDLED_ID)
    except NotFound:
        return
    for name, settings in STARTER_VARIANTS:
        store.create_variant(name, BUNDLED_ID, **settings)


def import_new_datasets(store: Store, folder: Path) -> list[str]:
    """Import JSONL files in ``folder`` not yet imported (by name); report problems, never raise.

    A file that cannot be imported (not a regular file, too big, unreadable, binary, no valid
    line) is skipped with a warning naming it; the other files are still imported.
    """
    messages: list[str] = []
    try:
        if not folder.is_dir():
            return messages
        paths = sorted(folder.glob("*.jsonl"))
    except OSError as exc:
        return [f"{safe_text(folder)}: cannot list datasets ({exc.strerror or exc})"]
    known = {d["name"] for d in store.list_datasets()}
    for path in paths:
        if path.stem in known:
            continue
        shown = safe_text(path.name)
        try:
            report = import_dataset(store, path)
        except DatasetError as exc:
            messages.append(f"skipped {exc}")
            continue
        except (ValueError, OSError, RecursionError, MemoryError) as exc:
            messages.append(f"skipped {shown}: {type(exc).__name__}: {safe_text(exc)}"[:500])
            continue
        if report.errors:
            messages.append(f"{shown}: {len(report.errors)} bad line(s) skipped "
                            f"(first: {safe_text(report.errors[0])})")
    return messages


def open_workspace(path: str | Path | None = None, *, seed: bool = True) -> OpenedWorkspace:
    """Open (creating if needed) a workspace; register the bundled model and starter content."""
    workspace = resolve_workspace(path).ensure()
    store = Store(workspace.db_path)
    registry = Registry(store, workspace)
    problems = registry.sync()  # says so when the workspace is read-only
    if seed and not store.read_only:
        ensure_starter_variants(store)
        problems += import_new_datasets(store, workspace.datasets_dir)
    return OpenedWorkspace(workspace, store, registry, problems)
