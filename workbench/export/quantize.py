"""Quantize a GGUF with llama.cpp (``llama_model_quantize``), always in a child process.

``quantize()`` launches ``python -m workbench.export.quantize IN OUT --type q4_k_m`` with an argv
list and reads the JSON line it prints, so the calling process (the TUI, a CLI, a job runner) never
loads llama.cpp. llama.cpp's own log goes to the child's stderr (a log file when asked).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# llama_ftype values (llama.h)
QTYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15, "q5_k_m": 17}
DEFAULT_TIMEOUT_S = 3600.0


class QuantizeError(RuntimeError):
    """Quantization failed; the message carries llama.cpp's last log lines."""


def quantize_command(in_path: str | Path, out_path: str | Path, qtype: str = "q4_k_m", *,
                     threads: int | None = None) -> list[str]:
    """The argv that quantizes ``in_path`` into ``out_path`` (for job runners that Popen it)."""
    if qtype not in QTYPES:
        raise ValueError(f"quantization must be one of {sorted(QTYPES)}, not {qtype!r}")
    argv = [sys.executable, "-m", "workbench.export.quantize", str(in_path), str(out_path),
            "--type", qtype]
    if threads:
        argv += ["--threads", str(int(threads))]
    return argv


def quantize(in_path: str | Path, out_path: str | Path, qtype: str = "q4_k_m", *,
             threads: int | None = None, log_path: str | Path | None = None,
             timeout: float = DEFAULT_TIMEOUT_S) -> dict:
    """Quantize in a subprocess; returns the child's JSON result (sizes, seconds, ratio).

    Raises ``QuantizeError`` when the child fails or times out (a partial output is removed).
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if not in_path.is_file():
        raise FileNotFoundError(f"no GGUF at {in_path}")
    argv = quantize_command(in_path, out_path, qtype, threads=threads)
    log = open(log_path, "ab") if log_path else subprocess.PIPE
    started = time.perf_counter()
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, timeout=timeout,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        Path(str(out_path) + ".part").unlink(missing_ok=True)
        raise QuantizeError(f"quantizing {in_path.name} to {qtype} timed out after {timeout:.0f} s")
    finally:
        if log_path:
            log.close()
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except json.JSONDecodeError:
            result = None
    if proc.returncode != 0 or not result or not result.get("ok"):
        tail = (proc.stderr or b"").decode("utf-8", "replace").strip().splitlines()[-3:]
        why = (result or {}).get("error") or f"exit status {proc.returncode}"
        raise QuantizeError(f"quantizing {in_path.name} to {qtype} failed: {why}"
                            + (" | " + " / ".join(tail) if tail else ""))
    result["wall_seconds"] = round(time.perf_counter() - started, 3)
    return result


def _quantize_here(in_path: Path, out_path: Path, qtype: str, threads: int | None) -> dict:
    """Runs in the child: call llama.cpp, write to a .part file, rename when complete."""
    import llama_cpp

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QTYPES[qtype]
    params.nthread = int(threads or 0)  # <= 0: all hardware threads
    started = time.perf_counter()
    code = llama_cpp.llama_model_quantize(str(in_path).encode(), str(tmp).encode(), params)
    seconds = time.perf_counter() - started
    if code != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        return {"ok": False, "error": f"llama_model_quantize returned {code}"}
    tmp.replace(out_path)
    in_bytes, out_bytes = in_path.stat().st_size, out_path.stat().st_size
    return {"ok": True, "input": str(in_path), "output": str(out_path), "type": qtype,
            "input_bytes": in_bytes, "output_bytes": out_bytes,
            "ratio": round(out_bytes / in_bytes, 4), "seconds": round(seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.export.quantize",
                                     description="Quantize a GGUF with llama.cpp; prints JSON.")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--type", dest="qtype", default="q4_k_m", choices=sorted(QTYPES))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.input.is_file():
        result = {"ok": False, "error": f"no GGUF at {args.input}"}
    elif args.input.resolve() == args.output.resolve():
        result = {"ok": False, "error": "input and output are the same file"}
    else:
        try:
            from ..models.gguf_inspect import InvalidGGUF, inspect_gguf

            inspect_gguf(args.input)  # a malformed file must never reach llama.cpp
            result = _quantize_here(args.input, args.output, args.qtype, args.threads)
        except InvalidGGUF as exc:
            result = {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the parent as JSON
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stderr.flush()
    print(json.dumps(result), flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
