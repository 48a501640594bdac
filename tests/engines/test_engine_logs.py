"""Engine logs: rotated past a size, created owner-only, and read back for the line that says
why an engine failed (not the debugger chatter a llama.cpp abort prints)."""

from __future__ import annotations

import os
import stat

from workbench.engines.logs import open_log_fd, rotate, useful_tail

ABORT_LOG = """\
llama_model_loader: loaded meta data with 33 key-value pairs and 272 tensors
load_tensors: CPU_Mapped model buffer size =    88.94 MiB
/project/ggml/src/ggml-cpu/ops.cpp:4521: GGML_ASSERT(ne00 % 32 == 0) failed
ptrace: Operation not permitted.
No stack.
The program is not being run.
[New LWP 4242]
[Thread debugging using libthread_db enabled]
Using host libthread_db library "/lib/x86_64-linux-gnu/libthread_db.so.1".
0x00007f1c2a0e7c7f in __GI___wait4 () from /lib/x86_64-linux-gnu/libc.so.6
#0  0x00007f1c2a0e7c7f in __GI___wait4 () from /lib/x86_64-linux-gnu/libc.so.6
#1  0x00007f1c29b6b1e3 in ggml_print_backtrace () from libggml-base.so
[Inferior 1 (process 4241) detached]
"""


def test_abort_reason_is_kept_and_debugger_noise_dropped():
    tail = useful_tail(ABORT_LOG.splitlines(), keep=3)
    assert "GGML_ASSERT(ne00 % 32 == 0) failed" in tail
    for noise in ("ptrace", "No stack", "Inferior", "LWP", "__GI___wait4", "libthread_db"):
        assert noise not in tail


def test_without_an_error_line_the_last_meaningful_lines_are_shown():
    tail = useful_tail(["loading", "", "ptrace: Operation not permitted.", "ready to serve"])
    assert tail == "loading / ready to serve"


def test_rotate_keeps_a_few_old_logs(tmp_path):
    log = tmp_path / "worker-A.log"
    for generation in range(5):
        log.write_text(f"run {generation}\n" + "x" * 200)
        rotate(log, max_bytes=100, keep=3)
        assert not log.exists()
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["worker-A.log.1", "worker-A.log.2", "worker-A.log.3"]
    assert (tmp_path / "worker-A.log.1").read_text().startswith("run 4")
    assert (tmp_path / "worker-A.log.3").read_text().startswith("run 2")
    small = tmp_path / "small.log"
    small.write_text("short")
    rotate(small, max_bytes=100)
    assert small.read_text() == "short"  # under the limit: left alone


def test_logs_are_created_owner_only(tmp_path):
    path = tmp_path / "server.log"
    os.close(open_log_fd(str(path)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
