"""The core never imports the UI, and the calling process never imports llama.cpp."""

import subprocess
import sys

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
