"""UI responsiveness of the workbench, measured in a real pseudo-terminal.

1. Cold start: time from launching ``python -m screens`` to its first frame (and to the first
   frame that shows workspace data).
2. Key->paint during a replay: the app runs a shadow replay on the bundled model (both model
   workers generating), and the bench presses Down/Up in the live table. Latency is the time from
   writing the key to the pty until the terminal receives the frame that shows the newly selected
   item (its id followed by "reference" in the item strip: text no other frame can contain).

Cold start is measured twice: through the real command (``python -m screens``, the launcher the
``workbench`` command runs) and through ``screens.app.run_app`` alone. Key->paint is measured
while the replay is paused (idle baseline) and while it runs.

Usage: python bench/ui_latency.py [--keys 200] [--idle-keys 50] [--cold-runs 5] [--json]
Target: key->paint p99 <= 50 ms, cold start to first paint <= 1 s.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "datasets" / "devops_incidents.jsonl"
ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\"
                  rb"|\x1b[@-Z\\-_]|\x1b")
KEYS = {"down": b"\x1b[B", "up": b"\x1b[A", "enter": b"\r", "n": b"n", "q": b"q"}
COLS, ROWS = 120, 40


class PtyApp:
    """A program running in a pseudo-terminal; its output is read and searched as plain text."""

    def __init__(self, argv: list[str], env: dict, cols: int = COLS, rows: int = ROWS):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.monotonic()
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.raw = b""  # output since the last mark()
        self.last_status: str | None = None  # the replay's last "running · n/N runs" seen

    def mark(self) -> None:
        self.last_status = replay_status(self.text()) or self.last_status
        self.raw = b""

    def text(self) -> str:
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def read_for(self, seconds: float) -> None:
        """Keep reading output for ``seconds`` (the terminal must never block the app)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read(left)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 1 << 16)
        except OSError:
            return False
        self.raw += chunk
        return bool(chunk)

    def wait_for(self, pattern: str, timeout: float) -> float | None:
        """Read until the plain-text output since mark() matches ``pattern``; return that time."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read(deadline - time.monotonic()) and regex.search(self.text()):
                return time.monotonic()
        return None

    def send(self, key: str) -> float:
        sent = time.monotonic()
        os.write(self.master, KEYS.get(key, key.encode()))
        return sent

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            self.send("q")
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                self._read(0.05)
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        os.close(self.master)


def prepare_workspace(root: Path, items: int) -> list[str]:
    """A workspace with ``items`` incidents of the sample set; return their ids in order."""
    lines = [line for line in DATASET.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = lines[:items]
    (root / "datasets").mkdir(parents=True, exist_ok=True)
    (root / "datasets" / "incidents.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from workbench.workspace import open_workspace

    open_workspace(root).close()  # register the bundled model once (sha256) before timing
    return [json.loads(line)["id"] for line in lines]


def workbench_argv(root: Path) -> list[str]:
    """The real command: `python -m screens --workspace ROOT` (what the `workbench` command runs)."""
    return [sys.executable, "-m", "screens", "--workspace", str(root)]


def ui_only_argv(root: Path) -> list[str]:
    """The UI without the CLI's imports: what `workbench` costs once it dispatches lazily."""
    code = "import sys; from screens.app import run_app; sys.exit(run_app(sys.argv[1]))"
    return [sys.executable, "-c", code, str(root)]


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor", LANG="C.UTF-8", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(REPO))
    return env


def measure_cold_start(argv: list[str], runs: int) -> dict:
    """Seconds from launch to the first frame (header and footer drawn) and to the first data."""
    first_paint, first_data = [], []
    for _ in range(runs):
        app = PtyApp(argv, child_env())
        painted = app.wait_for(r"Experiments(?s:.*)Start/resume", 30)
        loaded = app.wait_for(r"No experiment yet|prod-triage vs", 30)
        if painted is None or loaded is None:
            app.stop()
            raise RuntimeError("the app did not draw its first frame:\n" + app.text()[-2000:])
        first_paint.append(painted - app.started)
        first_data.append(loaded - app.started)
        app.stop()
    return {"first_paint_s": first_paint, "first_data_s": first_data}


def press_keys(app: PtyApp, keys: list[str], presses: int, row: int) -> tuple[list[float], int, int]:
    """Sweep the live table down and up; return (latencies in ms, misses, final row)."""
    latencies, misses = [], 0
    for n in range(presses):
        step = "down" if (n // 10) % 2 == 0 else "up"
        row = min(max(row + (1 if step == "down" else -1), 0), len(keys) - 1)
        app.read_for(random.uniform(0.05, 0.15))  # let background frames flow, then press
        app.mark()
        sent = app.send(step)
        painted = app.wait_for(re.escape(keys[row]) + r"\s+reference", 2.0)
        if painted is None:
            misses += 1
        else:
            latencies.append((painted - sent) * 1000)
    return latencies, misses, row


def expect(app: PtyApp, pattern: str, timeout: float, what: str) -> None:
    if app.wait_for(pattern, timeout) is None:
        raise RuntimeError(f"{what} did not happen:\n" + app.text()[-2000:])


def measure_key_to_paint(root: Path, keys: list[str], idle_presses: int, presses: int) -> dict:
    """Create and start a shadow replay from the UI; time keys while paused, then while running."""
    app = PtyApp(workbench_argv(root), child_env())
    try:
        expect(app, r"No experiment yet", 30, "the Experiments screen")
        app.send("n")
        expect(app, r"Create and start", 10, "the new-experiment form")
        app.read_for(0.5)  # the form focuses its first field just after its first frame
        app.mark()
        app.send("enter")  # create and start: prod-triage vs candidate-json-triage, shadow
        expect(app, r"running ·", 30, "the replay start")
        app.send("p")
        expect(app, r"paused ·", 60, "the pause")
        idle, idle_misses, row = press_keys(app, keys, idle_presses, 0)
        app.mark()
        app.send("s")  # resume; wait until both workers have answered at least once more
        expect(app, r"running · (?:[4-9]|\d\d+)/\d+ runs", 240, "the resumed replay")
        app.mark()
        before = app.last_status
        busy, busy_misses, row = press_keys(app, keys, presses, row)
        app.read_for(0.3)
        app.mark()
        return {"idle_ms": idle, "idle_misses": idle_misses, "busy_ms": busy,
                "busy_misses": busy_misses, "runs": f"{before} -> {app.last_status}"}
    finally:
        app.stop()


def replay_status(text: str) -> str | None:
    found = re.findall(r"running · (\d+/\d+) runs", text)
    return found[-1] if found else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float], misses: int) -> dict | None:
    if not latencies:
        return None
    return {"n": len(latencies), "missed": misses, "p50": percentile(latencies, 50),
            "p90": percentile(latencies, 90), "p99": percentile(latencies, 99),
            "max": max(latencies)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200, help="key presses timed during the replay")
    parser.add_argument("--idle-keys", type=int, default=50, help="key presses timed while paused")
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=40, help="incidents in the replay")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="wb-ui-bench-"))
    try:
        keys = prepare_workspace(root, args.items)
        cold_cli = measure_cold_start(workbench_argv(root), args.cold_runs)
        cold_ui = measure_cold_start(ui_only_argv(root), args.cold_runs)
        live = measure_key_to_paint(root, keys, args.idle_keys, args.keys)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "terminal": f"{COLS}x{ROWS} pty", "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cold_start_s": {
            name: {"first_paint_median": statistics.median(c["first_paint_s"]),
                   "first_paint_max": max(c["first_paint_s"]),
                   "first_data_median": statistics.median(c["first_data_s"])}
            for name, c in (("python -m screens", cold_cli), ("screens.app.run_app", cold_ui))},
        "key_to_paint_ms": {"paused": summary(live["idle_ms"], live["idle_misses"]),
                            "during_replay": summary(live["busy_ms"], live["busy_misses"])},
        "replay_runs_while_pressing": live["runs"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, c in result["cold_start_s"].items():
        print(f"cold start to first paint ({name}): median {c['first_paint_median']:.2f} s, "
              f"max {c['first_paint_max']:.2f} s; first data {c['first_data_median']:.2f} s")
    for phase, k in result["key_to_paint_ms"].items():
        if k:
            print(f"key->paint {phase} ({k['n']} keys, {k['missed']} missed): p50 {k['p50']:.1f} ms, "
                  f"p90 {k['p90']:.1f} ms, p99 {k['p99']:.1f} ms, max {k['max']:.1f} ms")
    print(f"replay runs while pressing: {result['replay_runs_while_pressing']}; "
          f"load average {result['load_avg_1min']} on {result['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
