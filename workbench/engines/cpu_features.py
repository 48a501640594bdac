"""CPU quirks the llama.cpp engine must work around.

On CPUs with Intel AMX (Sapphire Rapids and newer, often virtualised) llama.cpp repacks weights
into an "AMX" extra buffer and its ``ggml_backend_amx_mul_mat`` can segfault on the first prompt
batch (ggml-org/llama.cpp#20824; seen here on the bundled Q4_1 model: one-token decodes work,
every multi-token prompt crashes the worker). On such CPUs the engine loads models without extra
buffer types (``use_extra_bufts = false``), which is llama.cpp's plain CPU path. Set
``WORKBENCH_LLAMA_EXTRA_BUFFERS=1`` to use them anyway, ``=0`` to turn them off everywhere.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ENV = "WORKBENCH_LLAMA_EXTRA_BUFFERS"
AMX_FLAGS = {"amx_int8", "amx_tile", "amx_bf16"}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (empty where there is none)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def use_extra_buffers(flags: set[str] | None = None, env: dict | None = None) -> bool:
    """Whether llama.cpp may use its extra (repacked / AMX) weight buffers on this machine."""
    env = os.environ if env is None else env
    wanted = env.get(ENV, "").strip().lower()
    if wanted in {"1", "true", "yes", "on"}:
        return True
    if wanted in {"0", "false", "no", "off"}:
        return False
    return not (AMX_FLAGS & (cpu_flags() if flags is None else flags))


@contextmanager
def llama_model_params(lib, *, extra_buffers: bool) -> Iterator[None]:
    """While loading a ``llama_cpp.Llama``, make its model parameters carry ``extra_buffers``.

    llama-cpp-python builds its ``llama_model_params`` inside ``Llama.__init__`` and exposes no
    argument for ``use_extra_bufts``, so the default-parameters factory it calls is wrapped for
    the duration of the load (the worker process loads one model at a time).
    """
    module = lib.llama_cpp
    original = module.llama_model_default_params
    if extra_buffers or not hasattr(original(), "use_extra_bufts"):
        yield
        return

    def defaults():
        params = original()
        params.use_extra_bufts = False
        return params

    module.llama_model_default_params = defaults
    try:
        yield
    finally:
        module.llama_model_default_params = original
