"""Write docs/screenshots/*.svg: one per screen, from the deterministic snapshot workspace.

Run: .venv/bin/python tests/screens/make_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from screen_support import prefilled_workspace, steady  # noqa: E402
from textual._doc import take_svg_screenshot  # noqa: E402

from screens.app import create_app  # noqa: E402

SHOTS = {  # file name: (start screen, keys pressed before the shot)
    "models": ("models", ()),
    "datasets": ("datasets", ("tab", "down")),
    "experiments": ("experiments", ("down",)),
    "new-experiment": ("experiments", ("n",)),
    "help": ("experiments", ("question_mark",)),
    "results": ("results", ()),
    "results-charts": ("results", ("g",)),
}


def main() -> int:
    out = HERE.parents[1] / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    for name, (screen, keys) in SHOTS.items():
        root = prefilled_workspace(Path(tempfile.mkdtemp(prefix="wb-shot-")))
        app = create_app(root, start_screen=screen)
        svg = take_svg_screenshot(app=app, terminal_size=(120, 40), title=f"workbench: {name}",
                                  run_before=steady(*keys, models_path=True))
        (out / f"{name}.svg").write_text(svg, encoding="utf-8")
        print(out / f"{name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
