"""Scheduling of the bridge process: how soon its threads run when woken.

Usage (before any ZeroMQ context or thread exists, so all of them inherit it):
    error = apply_scheduling(slice_s=100e-6)          # EEVDF slice request
    error = apply_scheduling(fifo_priority=10)        # SCHED_FIFO

Every hop of the offload path is a thread wake-up, so the latency tail is
set by how long woken threads wait for a CPU (docs/E2E.md, "Scheduling").
A short slice (Linux 6.6+, unprivileged; older kernels ignore it) lets a
woken thread preempt a CPU hog sooner. SCHED_FIFO runs it before every
ordinary thread and needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance.
Returns None on success, or one line saying why not.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

# sched_setattr / sched_getattr system call numbers; glibc 2.36 has no wrappers.
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}
# struct sched_attr, first layout (SCHED_ATTR_SIZE_VER0 = 48 bytes).
_ATTR = struct.Struct("=IIQiIQQQ")
assert _ATTR.size == 48
SCHED_NORMAL = 0
SLICE_MIN_S = 100e-6
SLICE_MAX_S = 0.1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def apply_scheduling(slice_s: float = 0.0, fifo_priority: int = 0) -> str | None:
    if fifo_priority:
        if not 1 <= fifo_priority <= 99:
            return "SCHED_FIFO priority must be 1..99"
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo_priority))
        except PermissionError:
            return ("cannot switch to SCHED_FIFO: permission denied "
                    "(needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance, e.g. ulimit -r 99)")
        except OSError as e:
            return f"cannot switch to SCHED_FIFO: {e.strerror}"
        return None
    if not slice_s:
        return None
    if not SLICE_MIN_S <= slice_s <= SLICE_MAX_S:
        return "the scheduler slice must be 100us..100ms"
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        return f"no sched_setattr number known for {platform.machine()}"
    setattr_nr, getattr_nr = numbers
    libc = _libc()
    cur = ctypes.create_string_buffer(_ATTR.size)
    nice = 0
    if libc.syscall(getattr_nr, 0, cur, _ATTR.size, 0) == 0:
        nice = _ATTR.unpack(cur.raw)[3]  # sched_setattr sets the nice value too: keep it
    attr = ctypes.create_string_buffer(_ATTR.pack(_ATTR.size, SCHED_NORMAL, 0, nice, 0, int(slice_s * 1e9), 0, 0))
    if libc.syscall(setattr_nr, 0, attr, 0) != 0:
        return f"cannot set the scheduler slice: {os.strerror(ctypes.get_errno())}"
    return None


def describe_scheduling() -> str:
    """The calling thread's policy and slice, e.g. 'SCHED_OTHER slice 100 us'."""
    policy = os.sched_getscheduler(0)
    if policy == os.SCHED_FIFO:
        return f"SCHED_FIFO priority {os.sched_getparam(0).sched_priority}"
    name = "SCHED_OTHER" if policy == os.SCHED_OTHER else f"policy {policy}"
    numbers = _SYSCALLS.get(platform.machine())
    if numbers:
        buf = ctypes.create_string_buffer(_ATTR.size)
        if _libc().syscall(numbers[1], 0, buf, _ATTR.size, 0) == 0:
            runtime = _ATTR.unpack(buf.raw)[5]
            if runtime:
                name += f" slice {runtime // 1000} us"
    return name
