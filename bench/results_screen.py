"""Time the Results screen opening on an experiment with 100k runs, in a real pseudo-terminal.

Builds a workspace whose database holds 50k items x 2 arms (and 3 raters x 300 ratings) with
``bench/results_100k.py``'s builder, starts the app on the Models screen, waits until it is idle,
presses 5 (Results) and measures until the terminal receives the frame with the verdict
("Verdict: ..."), then until the replay counts and chart data follow ("runs 100000/100000").

Two cases per launch kind:
  cold: the app as `workbench` starts it; it imports the statistics stack (scipy, ~1 s) in a
        thread 2 s after start, so a Results open before that also pays for the import.
  warm: the statistics modules were imported before the app started.
``--settle`` is how long after the first screen the key is pressed (default 4 s).

Usage: .venv/bin/python bench/results_screen.py [--items 50000] [--runs 3] [--json]
Target: verdict painted under 1 s after the key.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_100k import build  # noqa: E402
from ui_latency import PtyApp, child_env  # noqa: E402

APP_CODE = ("import sys\n{warm}from screens.app import create_app\n"
            "app = create_app(sys.argv[1], start_screen='models', calm_gc=True)\n"
            "sys.exit(app.run() or 0)\n")


def prepare(root: Path, items: int) -> None:
    from workbench.config import DB_NAME
    from workbench.workspace import open_workspace

    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    build(root / DB_NAME, items)
    open_workspace(root).close()  # register the bundled model once, before any timing
    print(f"built {2 * items} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def open_results(root: Path, warm: bool, runs_total: int, settle_s: float) -> tuple[float, float]:
    """Seconds from pressing 5 to the verdict frame, and to the frame with the replay counts."""
    warm_imports = "import workbench.experiments.report, workbench.experiments.replay\n"
    code = APP_CODE.format(warm=warm_imports if warm else "")
    app = PtyApp([sys.executable, "-c", code, str(root)], child_env())
    try:
        if app.wait_for(r"smollm2", 60) is None:
            raise RuntimeError("the Models screen did not show:\n" + app.text()[-2000:])
        app.read_for(settle_s)  # the workspace worker, first loads (and the statistics prewarm)
        app.mark()
        sent = app.send("5")
        verdict = app.wait_for(r"Verdict: \w", 30)
        details = app.wait_for(rf"runs {runs_total}/{runs_total}", 30)
        if verdict is None or details is None:
            raise RuntimeError("the Results screen did not finish:\n" + app.text()[-2000:])
        return verdict - sent, details - sent
    finally:
        app.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="app launches per case")
    parser.add_argument("--settle", type=float, default=4.0,
                        help="seconds between the first screen and pressing 5")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="wb-results-bench-"))
    result: dict = {"runs": 2 * args.items, "terminal": "120x40 pty", "cpus": os.cpu_count()}
    try:
        prepare(root, args.items)
        for case in ("cold", "warm"):
            times = [open_results(root, case == "warm", 2 * args.items, args.settle)
                     for _ in range(args.runs)]
            result[case] = {"verdict_s": [round(v, 3) for v, _ in times],
                            "details_s": [round(d, 3) for _, d in times],
                            "verdict_median_s": round(statistics.median(v for v, _ in times), 3),
                            "details_median_s": round(statistics.median(d for _, d in times), 3)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for case in ("cold", "warm"):
        r = result[case]
        print(f"{case}: key 5 -> verdict painted median {r['verdict_median_s']:.2f} s "
              f"({', '.join(f'{v:.2f}' for v in r['verdict_s'])}); -> counts and chart data "
              f"{r['details_median_s']:.2f} s")
    print(f"{result['runs']} runs, {result['terminal']}, load average {result['load_avg_1min']} "
          f"on {result['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
