"""The scheduler requests of aegis-core and the bridge reach every thread.

What it proves: `--sched-slice` (default 100us) is applied before any thread
or ZeroMQ context exists, so every thread of the running process, libzmq's
I/O thread included, asks the kernel for that slice; `--sched-slice 0`
leaves the kernel's default. Read back from /proc/PID/task/*/sched
(`se.slice`), so a slice applied to the main thread only, or applied after
the I/O thread started, fails here. Skipped where the kernel has no custom
slices (before Linux 6.12) or does not show them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from aegis_fixtures.bridge_cli import bridge_argv, bridge_env

SLICE_NS = 100_000


def _slices(pid: int) -> dict[str, int]:
    """thread name (with tid) -> se.slice in ns."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        comm = (task / "comm").read_text().strip()
        for line in (task / "sched").read_text().splitlines():
            if line.startswith("se.slice"):
                out[f"{comm}/{task.name}"] = int(float(line.split(":")[1]))
    return out


def _slices_once(pid: int, *threads: str, timeout_s: float = 30.0) -> dict[str, int]:
    """_slices(pid) once a thread of each name prefix in `threads` exists.

    The pump starts after the "scheduling:" line, and libzmq's I/O thread
    names itself only once it runs (until then it shows its creator's name).
    """
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        slices = _slices(pid)
        if all(any(name.startswith(t) for name in slices) for t in threads):
            return slices
        assert time.monotonic() < deadline, f"not all of {threads} within {timeout_s}s: {slices}"
        time.sleep(0.01)  # polling /proc for the thread to appear; the assertion does not depend on timing


def _kernel_shows_custom_slices() -> bool:
    probe = ("from aegis_bridge.sched import apply_scheduling; "
             "assert apply_scheduling(0.0005) is None; "
             "print([l for l in open('/proc/self/sched') if l.startswith('se.slice')][0].split(':')[1].strip())")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, env=bridge_env())
    return p.returncode == 0 and p.stdout.strip() and int(float(p.stdout.strip())) == 500_000


pytestmark = pytest.mark.skipif(not _kernel_shows_custom_slices(),
                                reason="this kernel has no per-thread EEVDF slice (Linux 6.12+) or does not show se.slice")


def _wait_line(proc: subprocess.Popen, needle: str) -> str:
    for line in proc.stdout:
        if needle in line:
            return line
    raise AssertionError(f"process exited ({proc.wait()}) before printing {needle!r}")


@pytest.mark.parametrize("slice_arg, want", [(None, SLICE_NS), ("250us", 250_000)])
def test_every_core_thread_asks_for_the_slice(core_path, slice_arg, want):
    with tempfile.TemporaryDirectory(prefix="aegis-sched-", dir="/tmp") as d:
        argv = [str(core_path), "--endpoint-dir", f"{d}/ep", "--duration", "60s", "--rate", "1000",
                "--bridge-wait-report", "0", "--mode", "drop", "--ring-capacity", "16", "--drain-timeout", "1ms"]
        if slice_arg:
            argv += ["--sched-slice", slice_arg]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = _wait_line(proc, "scheduling:")
            assert f"slice {want // 1000} us" in line, line
            slices = _slices_once(proc.pid, "aegis-pump/", "ZMQbg/IO")
            assert all(v == want for v in slices.values()), slices
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_sched_slice_0_leaves_the_kernel_default(core_path):
    with tempfile.TemporaryDirectory(prefix="aegis-sched-", dir="/tmp") as d:
        proc = subprocess.Popen([str(core_path), "--endpoint-dir", f"{d}/ep", "--duration", "60s", "--rate", "1000",
                                 "--bridge-wait-report", "0", "--mode", "drop", "--sched-slice", "0", "--drain-timeout", "1ms"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_line(proc, "scheduling:")
            # The kernel's default is whatever this test process has (it set no slice).
            mine = _slices(os.getpid())
            default = next(iter(mine.values()))
            slices = _slices(proc.pid)
            assert all(v == default for v in slices.values()), (default, slices)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_every_bridge_thread_asks_for_the_slice():
    env = bridge_env()
    with tempfile.TemporaryDirectory(prefix="aegis-sched-", dir="/tmp") as d:
        proc = subprocess.Popen([*bridge_argv(), "--offload", f"ipc://{d}/o.sock",
                                 "--verdicts", f"ipc://{d}/v.sock"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = _wait_line(proc, "incarnation")
            assert "scheduling SCHED_OTHER slice 100 us" in line, line
            slices = _slices_once(proc.pid, "ZMQbg/IO")
            assert all(v == SLICE_NS for v in slices.values()), slices
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
