"""Proves the fault sites of docs/FAULTS.md are live libfiu failpoints in the real aegis-core.

The core is started with --fiu-fifo PREFIX, and the `fiu-ctrl` command-line
tool (libfiu's remote control, the one an operator would use) switches the
"transport.send" site on in the running process while traffic flows. The
effect must show in the core's own counters:
- while the site is on, every offload send fails, so no TXN frame leaves the
  core: the ring fills (aegis_in_flight reaches the ring capacity in block
  mode);
- after `fiu-ctrl ... disable`, verdicts resume with nothing lost;
- the summary JSON counts the failed sends (send_stalls > 0) and the
  accounting identity holds with no loss.
Every wait is on a metric or the process, with a timeout that fails the test.
"""

import shutil
import subprocess

import pytest

from aegis_fixtures.observe import dropped_total, identity_holds

pytestmark = pytest.mark.real

FIU_CTRL = shutil.which("fiu-ctrl")


def fiu_ctrl(h, command):
    """Runs `fiu-ctrl -f PREFIX -c COMMAND PID` against the live core."""
    assert h.core is not None and h.core.alive(), "failpoints need a live core"
    out = subprocess.run([FIU_CTRL, "-f", h.fiu_prefix, "-c", command, str(h.core.pid)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, f"fiu-ctrl {command!r} failed: {out.stdout}{out.stderr}"


@pytest.mark.skipif(FIU_CTRL is None, reason="fiu-ctrl (libfiu's fiu-utils) is not installed")
def test_fiu_ctrl_send_failpoint_stops_sends_and_shows_in_counters(core_harness):
    h = core_harness
    capacity = 1024
    h.start_core(mode="block", duration="60s", rate=20_000, ring_capacity=capacity, retransmit_timeout="200ms",
                 fiu=True)
    h.start_bridge()
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)

    fiu_ctrl(h, "enable name=transport.send")
    # No frame leaves the core any more: the ring fills with admitted,
    # unverdicted transactions and producers block (block mode). A healthy
    # bridge keeps up with 20k/s, so a full ring here is the failpoint's doing.
    h.wait_core_metric("aegis_in_flight", lambda v: v >= capacity)
    stuck = h.core_metric("aegis_verdicts_total")

    fiu_ctrl(h, "disable name=transport.send")
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= stuck + 2_000)

    assert h.core.terminate(timeout_s=60) == 0, h.summary()
    s = h.summary()
    assert s["send_stalls"] > 0, "the failpoint's failed sends are counted"
    assert s["lost"] == 0 and s["in_flight"] == 0 and s["drained"] and identity_holds(s)
    assert s["offered"] == s["verdicts"] + dropped_total(s) and dropped_total(s) <= 1, "at most the one closed"
