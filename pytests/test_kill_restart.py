"""Proves the offload path survives a crashing bridge: the real aegis-core and the real Python bridge.

The real-process kill-and-restart test. The bridge is SIGKILLed mid-stream
and restarted several times while the core offloads at a steady rate:
- once while it is busy (after it has verdicted a given number of records),
- once exactly between receiving a batch and sending its verdicts (the
  --hook-stop-before-send hook freezes it there; the kill lands while it
  holds frames it will never answer).

Block mode: `lost == 0`, every offered transaction is accepted and verdicted,
and the ledger holds exactly one `verdict` line per id. This fails if the
core does not rewind and resend on a new incarnation (the killed bridge's
frames would stay unverdicted until the drain deadline).

Drop mode, small ring: with the bridge dead the ring fills and new payments
are dropped as `ring_full`. The identity offered = verdicts + expired +
dropped + in_flight holds exactly with in_flight == 0, and the ids the ledger
marks dropped are exactly the ids without a verdict, as many as the summary
counts.

The retransmit timeout is set far beyond the test (60 s), so recovery must
come from the rewind on a new incarnation: a core built with the `no_rewind`
mutant fails both tests (checked with AEGIS_MUTANT_NAME="no_rewind"), where
a 200 ms timeout would have hidden the bug by resending anyway.

Both also require that the core rejected no verdict (the check every summary
read goes through, Harness.summary): the bridges are honest.

Every wait is on observable state (metrics, process state), bounded.
"""

import pytest

from aegis_fixtures.observe import dropped_total, identity_holds

pytestmark = pytest.mark.real


def kill_busy(h, records, timeout_s=60):
    """SIGKILLs the bridge once it has verdicted `records`, mid-stream."""
    h.wait_bridge_records(records, timeout_s=timeout_s)
    h.bridge.kill()


def kill_between_receive_and_send(h, frames, timeout_s=60):
    """Restarts the bridge with the stop-before-send hook and SIGKILLs it there."""
    bridge = h.start_bridge(extra=["--hook-stop-before-send", frames])
    bridge.wait_stopped(timeout_s)
    assert "hook: stopped before send" in bridge.log_text()
    bridge.kill()


def wait_incarnations(h, n, timeout_s=60):
    """The core has seen `n` bridge incarnations (so the last restart took effect)."""
    h.wait_core_metric("aegis_bridge_incarnations_total", lambda v: v >= n, timeout_s=timeout_s)


def test_block_mode_bridge_killed_and_restarted_loses_nothing(core_harness):
    block_mode_kill_and_restart(core_harness, 60_000)


def block_mode_kill_and_restart(h, count, drain_timeout_s=60, wait_s=60):
    """The scenario and its checks; pytests/test_mutant_core.py runs it against a planted bug.

    `wait_s` bounds each wait for progress. A correct core passes each within a
    few seconds at 20k/s; the mutant run shortens them so its expected failure
    comes quickly.
    """
    h.start_core(mode="block", count=count, rate=20_000, ring_capacity=4096,
                 retransmit_timeout="60s", extra=["--drain-timeout", f"{drain_timeout_s}s"])
    h.start_bridge()
    kill_busy(h, 5_000, wait_s)
    h.start_bridge()
    wait_incarnations(h, 2, wait_s)
    kill_busy(h, 3_000, wait_s)
    kill_between_receive_and_send(h, 4, wait_s)
    # No wait for the hooked bridge's HELLO: it is queued to that bridge's
    # libzmq I/O thread, which SIGSTOP may freeze before it is written (the
    # core sends TXN frames to a connected PULL without waiting for a HELLO).
    # A fresh-clone `make test` under load caught exactly that.
    h.start_bridge()
    rc = h.wait_core_exit(drain_timeout_s + 30)

    s = h.summary()
    assert rc == 0, f"aegis-core exit code {rc}; summary {s}"
    assert s["mode"] == "block"
    assert s["lost"] == 0
    assert s["offered"] == s["accepted"] == s["verdicts"] == count
    assert s["in_flight"] == 0 and s["expired"] == 0 and dropped_total(s) == 0
    assert s["bridge_incarnations"] >= 3, "two killed bridges and the last one (the hooked one may go unseen)"
    assert s["retransmits"] > 0, "the killed bridges held frames that had to be resent"
    assert identity_holds(s)

    ledger = h.ledger()
    assert not ledger.duplicates(), f"ids with more than one fate: {list(ledger.duplicates().items())[:5]}"
    assert ledger.fate_counts() == {"verdict": count}, "exactly one verdict line per accepted id"
    assert len(ledger.fates) == count


def test_drop_mode_small_ring_identity_and_ledger_match(core_harness):
    h = core_harness
    count = 60_000
    h.start_bridge()  # first: a bridge starting late would see a ring that filled without it
    h.start_core(mode="drop", count=count, rate=20_000, ring_capacity=1024,
                 retransmit_timeout="60s", extra=["--drain-timeout", "60s"])
    kill_busy(h, 5_000)
    # With no bridge the 1024-slot ring fills within 0.1 s at 20k/s: wait for the drops.
    h.wait_core_metric("aegis_dropped_total", lambda v: v >= 2_000, timeout_s=60, reason="ring_full")
    kill_between_receive_and_send(h, 4)
    h.start_bridge()
    rc = h.wait_core_exit(60)

    s = h.summary()
    assert rc == 0, f"aegis-core exit code {rc}; summary {s}"
    assert s["mode"] == "drop"
    assert s["offered"] == count
    assert s["in_flight"] == 0
    assert s["dropped"]["ring_full"] >= 2_000
    assert identity_holds(s), f"offered != verdicts + expired + dropped + in_flight: {s}"
    assert s["offered"] == s["verdicts"] + s["expired"] + dropped_total(s)
    assert s["accepted"] == s["verdicts"] + s["expired"]

    ledger = h.ledger()
    assert not ledger.duplicates()
    by_fate = ledger.by_fate()
    dropped_ids = set().union(*(ids for fate, ids in by_fate.items() if fate.startswith("dropped")))
    verdict_ids = by_fate.get("verdict", set())
    assert len(ledger.fates) == count, "every offered id has a line"
    assert len(dropped_ids) == dropped_total(s)
    assert len(by_fate.get("dropped_ring_full", ())) == s["dropped"]["ring_full"]
    assert len(verdict_ids) == s["verdicts"]
    assert set(ledger.fates) - verdict_ids == dropped_ids | by_fate.get("expired", set()), \
        "the ids without a verdict are exactly the dropped (and expired) ones"
