"""Workspace paths and defaults.

A workspace is one folder holding ``workbench.db``, ``models/`` and ``datasets/``. It is the
current directory unless ``--workspace DIR`` or the ``WORKBENCH_HOME`` environment variable says
otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "workbench.db"
ENV_HOME = "WORKBENCH_HOME"


@dataclass(frozen=True)
class Workspace:
    """Where one operator's database, models, datasets and job logs live."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def ensure(self) -> "Workspace":
        """Create the workspace folders if they are missing (owner-only, 0700: they hold raw
        incidents) and return self; a folder that already exists keeps its mode."""
        for path in (self.root, self.models_dir, self.datasets_dir):
            make_private_dir(path)
        return self


PRIVATE_DIR_MODE = 0o700


def make_private_dir(path: Path) -> bool:
    """Create ``path`` as an owner-only (0700) folder; True when it was created here. Missing
    parents are created as usual; an existing folder is left as it is."""
    if path.is_dir():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        if path.is_dir():  # made by someone else meanwhile: theirs, leave it
            return False
        raise
    os.chmod(path, PRIVATE_DIR_MODE)  # the umask may have cleared bits; never widen, only exact
    return True


def resolve_workspace(explicit: str | os.PathLike | None = None) -> Workspace:
    """Pick the workspace: an explicit path, else ``$WORKBENCH_HOME``, else the current directory."""
    chosen = explicit or os.environ.get(ENV_HOME) or os.getcwd()
    return Workspace(Path(chosen).expanduser().resolve())


def default_threads(concurrent_workers: int = 1) -> int:
    """CPU threads per model worker so that concurrent workers share the cores without oversubscribing."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, concurrent_workers))
