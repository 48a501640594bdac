"""The layering rule of the core, read from the source (every import, also inside functions), and
the run-time check that importing the core pulls in no UI and no model runtime.

Rules (see docs/architecture.md):
- nothing in ``workbench/`` imports textual or ``screens/``;
- ``stats/`` and ``store/`` import no other workbench package;
- ``engines/`` imports nothing of ``experiments/``, ``rating/``, ``finetune/``, ``export/``;
- ``models/`` imports nothing of ``experiments/``, ``rating/``, ``finetune/``, ``export/``;
- ``experiments/`` imports nothing of ``rating/``, ``finetune/``, ``export/``;
- ``rating/`` imports only ``store/`` and ``stats/``;
- ``monitoring/`` imports nothing of ``engines/``, ``models/``, ``rating/``, ``finetune/``,
  ``export/`` (it reads runs and logs from the store and scores with ``experiments/``), and only
  ``cli/`` imports it among the domain packages;
- only ``cli/`` (and ``__main__``) import ``cli/``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "workbench"

EVERYWHERE = {"textual", "screens"}
PACKAGES = {"cli", "engines", "experiments", "export", "finetune", "models", "monitoring", "rating",
            "stats", "store", "config", "datasets", "formatting", "workspace", "terminal_text",
            "private_files", "timestamps"}
LEAVES = {"terminal_text", "private_files", "timestamps"}  # small helpers any domain may use; they import nothing
# package -> workbench packages it must not import ("*" = every other one); cli/ is checked for all
FORBIDDEN = {
    "stats": {"*"},
    "store": {"*"},
    "engines": {"experiments", "rating", "finetune", "export", "monitoring"},
    "models": {"experiments", "rating", "finetune", "export", "monitoring"},
    "experiments": {"rating", "finetune", "export", "monitoring"},
    "monitoring": {"engines", "models", "rating", "finetune", "export", "workspace"},
    "rating": PACKAGES - {"rating", "store", "stats", *LEAVES},
    "export": {"experiments", "rating", "monitoring"},
    "config": {"*"},
    "formatting": {"*"},
    "terminal_text": {"*"},
    "private_files": {"*"},
    "timestamps": {"*"},
    "datasets": PACKAGES - {"datasets", "store", *LEAVES},
}


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """Absolute names of every module ``path`` imports (relative imports resolved), with line."""
    rel = path.relative_to(root.parent).with_suffix("")
    package = list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # "from . import x" / "from .. import x" may import a submodule x
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def layer_violations(root: Path) -> list[str]:
    """Every import under ``root`` (the workbench package folder) that breaks the rules above."""
    top = root.name
    problems = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        layer = parts[0]
        for line, name in imported_modules(path, root):
            head = name.split(".")
            where = f"{path.relative_to(root.parent)}:{line} imports {'.'.join(head[:2])}"
            if head[0] in EVERYWHERE:
                where = f"{path.relative_to(root.parent)}:{line} imports {head[0]}"
                problems.append(where)
                continue
            if head[0] != top or len(head) < 2 or head[1] not in PACKAGES or head[1] == layer:
                continue
            target = head[1]
            if layer != "cli" and layer != "__main__" and target == "cli":
                problems.append(where)
                continue
            rule = FORBIDDEN.get(layer, set())
            if "*" in rule or target in rule:
                problems.append(where)
    return sorted(set(problems))


def test_the_core_keeps_its_layers():
    assert layer_violations(CORE) == []


def test_the_layer_check_catches_a_forbidden_import(tmp_path):
    """The checker fails on each kind of forbidden import (relative, absolute, inside a function)."""
    core = tmp_path / "workbench"
    for package in ("engines", "experiments", "stats", "store", "rating"):
        (core / package).mkdir(parents=True)
        (core / package / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "engines" / "http.py").write_text("from ..experiments import replay\n")
    (core / "stats" / "x.py").write_text("def f():\n    from workbench.store import Store\n")
    (core / "store" / "y.py").write_text("from .. import config\n")
    (core / "rating" / "z.py").write_text("import textual.app\nfrom ..stats import holm\n")
    (core / "experiments" / "ok.py").write_text("from ..engines import base\nfrom ..stats import holm\n")
    assert layer_violations(core) == [
        "workbench/engines/http.py:1 imports workbench.experiments",
        "workbench/rating/z.py:1 imports textual",
        "workbench/stats/x.py:2 imports workbench.store",
        "workbench/store/y.py:1 imports workbench.config",
    ]


CHECK = """
import importlib, pkgutil, sys
import workbench
for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in {"textual", "screens", "llama_cpp", "torch", "transformers"})
print(",".join(bad))
"""


def test_importing_every_workbench_module_pulls_in_no_ui_and_no_model_runtime():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
