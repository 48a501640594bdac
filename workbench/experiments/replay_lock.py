"""One replay per experiment at a time, across processes (CLI, UI, another terminal).

``WORKSPACE/locks/experiment-N.lock`` is ``flock``-ed for as long as a replay of experiment N runs
and holds who runs it as JSON (pid, host, started, command). The kernel frees the lock when its
holder exits however it exits (SIGKILL included), so a lock left by a dead replay is found free and
taken over; the JSON the dead holder left behind is kept on ``ReplayLock.stale`` and logged.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
from pathlib import Path

from ..store import ReadOnlyWorkspace, WorkspaceError, utcnow
from ..terminal_text import safe_text

LOCKS_DIR = "locks"
log = logging.getLogger(__name__)


class ReplayLocked(WorkspaceError):
    """Another process is replaying this experiment; ``holder`` is what its lock file says."""

    def __init__(self, message: str, holder: dict | None = None):
        super().__init__(message)
        self.holder = holder or {}


class NothingToResume(WorkspaceError):
    """The experiment is completed: a replay would add nothing."""


def lock_path(locks_dir: str | Path, experiment_id: int) -> Path:
    return Path(locks_dir) / f"experiment-{int(experiment_id)}.lock"


def describe_holder(holder: dict | None) -> str:
    """'pid 12 on host-a since 2026-01-01T10:00:00Z (workbench replay --resume 3)', one line."""
    if not holder or "pid" not in holder:
        return "another process (it is just starting)"
    text = f"pid {holder.get('pid')} on {holder.get('host') or 'an unknown host'}"
    if holder.get("started"):
        text += f" since {holder['started']}"
    if holder.get("command"):
        text += f" ({holder['command']})"
    return safe_text(text)


def _read(fd: int) -> dict | None:
    try:
        data = json.loads(os.pread(fd, 65536, 0).decode("utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _default_command() -> str:
    argv = list(sys.argv) or ["python"]
    argv[0] = Path(argv[0]).name or argv[0]
    return shlex.join(argv)


class ReplayLock:
    """The lock of one experiment's replay: ``acquire()`` (or ``with``) raises ``ReplayLocked``
    naming the holder when another process has it; ``release()`` frees it."""

    def __init__(self, locks_dir: str | Path, experiment_id: int, *, command: str | None = None):
        self.path = lock_path(locks_dir, experiment_id)
        self.experiment_id = int(experiment_id)
        self.command = command
        self.stale: dict | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "ReplayLock":
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise ReadOnlyWorkspace(f"workspace is read-only: cannot create the replay lock "
                                        f"{self.path} ({exc.strerror})") from None
            raise WorkspaceError(f"cannot create the replay lock {self.path}: "
                                 f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise ReplayLocked(f"experiment {self.experiment_id} is already being replayed by "
                               f"{describe_holder(holder)}; wait for it or stop it first",
                               holder) from None
        except OSError as exc:
            os.close(fd)
            raise WorkspaceError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self.stale = _read(fd)  # a clean release empties the file: anything left is a dead holder's
        if self.stale:
            log.warning("experiment %s: taking over the replay lock of %s, which is gone",
                        self.experiment_id, describe_holder(self.stale))
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": utcnow(),
              "command": self.command or _default_command(), "experiment": self.experiment_id}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the lock file and unlock it (the file stays: removing it would race)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> "ReplayLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

