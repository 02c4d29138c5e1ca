"""Proves the deployed binaries keep their promises under real faults: aegis-core plus the real bridge.

Crash, stall, shutdown, failpoint and rogue-input cases. Each test
asserts the accounting from the summary JSON and the ledger (and the
metrics where they are stable), not just that nothing crashed:
- crash and restart: the bridge SIGKILLed mid-batch 20 times; rapid
  start/kill loops; started before the core; restarted while the core drains;
  two bridges at once (a rolling restart), the older one then killed;
- stalls: SIGSTOP shorter than the retransmit timeout (no timeout resend),
  longer (the core resends, nothing is verdicted twice in the ledger), and
  until the ring fills (block: producer back-pressure, no loss; drop:
  ring_full drops equal to the ids without a verdict); with a TTL, longer
  than the TTL (what the bridge holds expires, its late verdicts change no
  fate, the ledger's expired ids match the count);
- core shutdown: SIGTERM drains and writes a complete summary; SIGKILL is
  survived by the bridge, which serves the next core epoch;
- failpoints: transport send/recv faults switched on through libfiu's remote
  control while traffic flows;
- rogue input on the verdict endpoint: every malformed kind, wrong epoch,
  wrong direction, unknown seqs, duplicates, a flood and an oversized frame,
  each counted by reason while the accounting stays exact.

Waits are on metrics, logs or process state, each with a timeout that fails
the test. Where the bridge must be killed "between receiving and sending",
its --hook-stop-before-send hook freezes it exactly there.
"""

import struct

import pytest
import xxhash

from aegis_bridge import protocol as p
from aegis_fixtures.observe import dropped_total, identity_holds, promtool_check

pytestmark = pytest.mark.real

# Recovery after a bridge restart must come from the rewind, not from the
# retransmit timeout, unless a test is about the timeout.
NO_TIMEOUT = dict(retransmit_timeout="60s", extra=["--drain-timeout", "60s"])


def assert_clean_block_run(h, rc, count, min_incarnations=1, check_rejections=True):
    s = h.summary(check_rejections=check_rejections)
    assert rc == 0, f"aegis-core exit code {rc}; summary {s}"
    assert s["lost"] == 0 and s["in_flight"] == 0
    assert s["offered"] == s["accepted"] == s["verdicts"] == count
    assert dropped_total(s) == 0 and identity_holds(s)
    assert s["bridge_incarnations"] >= min_incarnations
    ledger = h.ledger()
    assert not ledger.duplicates()
    assert ledger.fate_counts() == {"verdict": count}
    return s


def assert_clean_terminated_run(h, min_verdicts):
    """An open-ended (--duration) run ended by SIGTERM: drained, exact, nothing lost."""
    assert h.core.terminate(timeout_s=60) == 0, h.summary()
    s = h.summary()
    assert s["stopped_by_signal"] and s["drained"] and s["lost"] == 0 and s["in_flight"] == 0
    assert identity_holds(s) and s["verdicts"] >= min_verdicts
    if s["mode"] == "block":
        # A producer blocked on the full ring when the signal closed admission.
        assert s["offered"] == s["verdicts"] + s["dropped"]["closed"] and dropped_total(s) <= 1
    ledger = h.ledger()
    assert not ledger.duplicates()
    counts = ledger.fate_counts()
    assert counts["verdict"] == s["verdicts"] and sum(counts.values()) == s["offered"]
    return s


def assert_drop_ledger_matches(h, s):
    assert identity_holds(s) and s["in_flight"] == 0
    ledger = h.ledger()
    assert not ledger.duplicates()
    by_fate = ledger.by_fate()
    verdict_ids = by_fate.get("verdict", set())
    dropped_ids = set().union(*(ids for fate, ids in by_fate.items() if fate.startswith("dropped")))
    assert len(by_fate.get("dropped_ring_full", ())) == s["dropped"]["ring_full"]
    assert len(by_fate.get("expired", ())) == s["expired"]
    assert len(verdict_ids) == s["verdicts"] and len(ledger.fates) == s["offered"]
    assert set(ledger.fates) - verdict_ids == dropped_ids | by_fate.get("expired", set())


# -- crash and restart -------------------------------------------------------

def test_bridge_sigkilled_mid_batch_20_times(core_harness):
    h = core_harness
    count = 30_000
    # Recovery comes from each new incarnation's resend. The one exception is
    # the first bridge: frozen before its HELLO left its socket, it dies
    # unannounced, and what it held waits for the safety timer (the first
    # incarnation the core sees triggers no resend; docs/PROTOCOL.md). A 2 s
    # floor keeps that case inside the test's waits.
    h.start_core(mode="block", count=count, ring_capacity=4096, retransmit_timeout="2s",
                 extra=["--drain-timeout", "60s"])
    for i in range(20):
        # Frozen after its 1st..3rd batch, before answering it: a kill mid-batch.
        bridge = h.start_bridge(metrics=False, extra=["--hook-stop-before-send", 1 + i % 3])
        bridge.wait_stopped(60)
        bridge.kill()
    h.start_bridge(metrics=False)
    # A bridge frozen before its HELLO left its socket dies unseen by the core
    # (SIGSTOP stops libzmq's I/O thread too): not every one of the 21 counts.
    s = assert_clean_block_run(h, h.wait_core_exit(90), count, min_incarnations=2)
    assert s["retransmits"] > 0


def test_rapid_restart_loop(core_harness):
    h = core_harness
    count = 20_000
    h.start_core(mode="block", count=count, ring_capacity=4096, **NO_TIMEOUT)
    for _ in range(10):
        h.start_bridge(metrics=False, wait_ready=False).kill()  # killed wherever it got to
    h.start_bridge(metrics=False)
    assert_clean_block_run(h, h.wait_core_exit(60), count)


def test_bridge_started_before_the_core(core_harness):
    h = core_harness
    bridge = h.start_bridge()  # the endpoint directory does not even exist yet
    count = 20_000
    h.start_core(mode="block", count=count, **NO_TIMEOUT)
    s = assert_clean_block_run(h, h.wait_core_exit(60), count)
    assert s["bridge_incarnations"] == 1 and bridge.alive()


def test_bridge_restarted_while_the_core_drains(core_harness):
    h = core_harness
    count = 20_000
    h.start_core(mode="block", count=count, ring_capacity=65536, **NO_TIMEOUT)
    h.wait_core_log("draining")  # everything admitted, producers done, no bridge yet
    bridge = h.start_bridge(metrics=False, extra=["--hook-stop-before-send", 2])
    bridge.wait_stopped(60)
    bridge.kill()
    h.start_bridge(metrics=False)
    assert_clean_block_run(h, h.wait_core_exit(60), count, min_incarnations=2)


def test_two_bridges_at_once_share_the_work_and_killing_one_loses_nothing(core_harness):
    rolling_restart(core_harness)


def rolling_restart(h, count=60_000, check_rejections=True):
    """The scenario and its checks, returning the summary; pytests/test_mutant_bridge.py runs it with a lying bridge.

    A rolling restart starts the new bridge before stopping the old one.
    The core's PUSH deals TXN frames to both; verdicts of the older
    incarnation are applied like the newer one's (counted as
    stale_incarnation). The killed one takes unanswered frames with it,
    which the core resends to the survivor, after newer frames it already
    answered. `check_rejections=False` leaves out the check that the core
    rejected no verdict.
    """
    h.start_core(mode="block", count=count, rate=20_000, ring_capacity=4096, retransmit_timeout="200ms",
                 extra=["--drain-timeout", "60s"])
    old = h.start_bridge()
    new = h.start_bridge(alongside=True)
    h.wait_bridge_records(2_000, proc=old)
    h.wait_bridge_records(2_000, proc=new)  # both get work
    old.kill()
    s = assert_clean_block_run(h, h.wait_core_exit(60), count, min_incarnations=2, check_rejections=check_rejections)
    assert s["stale_incarnation"] > 0, "the older bridge's verdicts were applied, not dropped"
    assert new.alive()
    return s


# -- stalls ------------------------------------------------------------------

def test_stall_shorter_than_the_dead_interval_fills_the_ring_with_back_pressure(core_harness):
    h = core_harness
    capacity = 4096
    # Open-ended runs (--duration, ended by SIGTERM) so that no phase races the end of the stream.
    # The core presumes a bridge dead after 3 of its heartbeats of silence: with a 2 s heartbeat, the
    # stall (until 4096 transactions at 20k/s fill the ring) is far shorter than that.
    h.start_core(mode="block", duration="60s", rate=20_000, ring_capacity=capacity, retransmit_timeout="20s")
    bridge = h.start_bridge(heartbeat="2s")
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    bridge.stall()
    depth = h.wait_core_metric("aegis_ring_depth", lambda v: v >= capacity)
    m = h.core_metrics()
    assert depth == capacity
    assert m.value("aegis_in_flight") > 0
    # Back-pressure: with the ring full the producer cannot run ahead of the verdicts.
    assert m.value("aegis_offered_total") - m.value("aegis_verdicts_total") <= capacity + 1
    assert m.value("aegis_dropped_total", 0.0, reason="ring_full") == 0
    bridge.resume()
    h.wait_core_metric("aegis_ring_depth", lambda v: v < capacity / 2)
    s = assert_clean_terminated_run(h, 2_000)
    assert s["retransmit_rounds"] == 0, "the stall was shorter than the dead interval: no resend"
    assert s["retransmits"] == 0
    assert s["duplicate_verdicts"] == 0 and s["bridge_incarnations"] == 1


def test_stall_longer_than_the_dead_interval_resends_once_without_double_verdicts(core_harness):
    h = core_harness
    h.start_core(mode="block", duration="60s", rate=20_000, ring_capacity=4096, retransmit_timeout="200ms")
    bridge = h.start_bridge()
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    bridge.stall()
    h.wait_core_metric("aegis_retransmits_total", lambda v: v > 0)  # it gave up waiting and resent
    bridge.resume()
    verdicts = h.core_metric("aegis_verdicts_total")
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= verdicts + 2_000)
    s = assert_clean_terminated_run(h, 4_000)
    assert s["retransmit_rounds"] >= 1
    assert s["silence_rewinds"] == 1, "one resend per silence, however long it lasts"
    assert s["bridge_incarnations"] == 1


def test_drop_mode_stall_until_the_ring_fills(core_harness):
    h = core_harness
    capacity = 1024
    bridge = h.start_bridge()  # first, so the stream is answered from its first payment
    h.start_core(mode="drop", duration="60s", rate=20_000, ring_capacity=capacity, retransmit_timeout="20s")
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    bridge.stall()
    h.wait_core_metric("aegis_dropped_total", lambda v: v >= 1_000, reason="ring_full")
    # Verdicts already on their way when the bridge froze may free a few
    # slots; once they are in, every slot holds what the stalled bridge owes.
    h.wait_core_metric("aegis_ring_depth", lambda v: v == capacity)
    h.wait_core_metric("aegis_in_flight", lambda v: v == capacity)
    bridge.resume()
    h.wait_core_metric("aegis_in_flight", lambda v: v < capacity / 2)
    s = assert_clean_terminated_run(h, 2_000)
    assert s["dropped"]["ring_full"] >= 1_000
    assert_drop_ledger_matches(h, s)


def test_ttl_expires_what_a_stalled_bridge_owes_and_ignores_its_late_verdicts(core_harness):
    # The core keeps sending to the frozen bridge (its connection is up) until
    # the send window is full: ~8k records that wait in the socket buffers and
    # the bridge's queue, and expire there. On SIGCONT the bridge answers them
    # all; those verdicts come too late and must change no fate.
    h = core_harness
    bridge = h.start_bridge()
    h.start_core(mode="drop", duration="60s", rate=20_000, ring_capacity=16384, retransmit_timeout="20s",
                 ttl="300ms")
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    bridge.stall()
    h.wait_core_metric("aegis_expired_total", lambda v: v >= 2_000)
    bridge.resume()
    verdicts = h.core_metric("aegis_verdicts_total")
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= verdicts + 2_000)  # fresh payments get verdicts again
    s = assert_clean_terminated_run(h, 4_000)
    assert s["expired"] >= 2_000
    assert s["late_verdicts"] > 0, "the resumed bridge answered payments that had expired meanwhile"
    assert s["accepted"] == s["verdicts"] + s["expired"]
    assert_drop_ledger_matches(h, s)


# -- core shutdown -----------------------------------------------------------

def test_core_sigterm_drains_and_writes_a_complete_summary(core_harness):
    h = core_harness
    h.start_core(mode="block", duration="60s", rate=20_000, ring_capacity=4096)
    h.start_bridge()
    # The core's count, not the bridge's: the bridge also answers resent frames.
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 5_000)
    h.core.terminate(timeout_s=60)
    s = h.summary()
    assert h.core.returncode == 0, s
    assert s["stopped_by_signal"] and s["drained"] and s["in_flight"] == 0 and s["lost"] == 0
    assert identity_holds(s) and s["verdicts"] >= 5_000
    assert s["offered"] == s["verdicts"] + dropped_total(s)
    counts = h.ledger().fate_counts()
    assert counts["verdict"] == s["verdicts"] and sum(counts.values()) == s["offered"]


def test_core_sigkill_is_survived_by_the_bridge_which_serves_the_next_epoch(core_harness):
    h = core_harness
    h.start_core(mode="block", duration="60s", rate=20_000)
    first_epoch = h.core_epoch()
    bridge = h.start_bridge()
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    h.core.kill()
    count = 10_000
    h.start_core(mode="block", count=count)  # same directory: stale socket files, free lock
    assert h.core_epoch() != first_epoch
    s = assert_clean_block_run(h, h.wait_core_exit(60), count)
    assert s["bridge_incarnations"] == 1, "the same bridge process served the new core"
    assert bridge.alive()
    m = h.bridge_metrics(bridge)
    assert m.value("aegis_bridge_epochs_seen_total") == 2
    assert m.value("aegis_bridge_core_info", epoch=f"{h.core_epoch():#x}") == 1.0


# -- failpoints --------------------------------------------------------------

def test_transport_failpoints_while_traffic_flows(core_harness):
    h = core_harness
    # Open-ended run (SIGTERM ends it), so every fault phase has traffic to hit.
    h.start_core(mode="block", duration="60s", rate=20_000, ring_capacity=4096, retransmit_timeout="200ms",
                 fiu=True)
    h.start_bridge()
    fiu = h.fiu()
    verdicts = h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    for site, probability in (("transport.send", 0.5), ("transport.recv", 0.3), ("transport.send_error", 0.2)):
        fiu.enable_random(site, probability)
        verdicts = h.wait_core_metric("aegis_verdicts_total", lambda v, base=verdicts: v >= base + 2_000)
        fiu.disable(site)
    assert h.core.terminate(timeout_s=60) == 0, h.summary()
    s = h.summary()
    assert s["lost"] == 0 and s["in_flight"] == 0 and s["drained"] and identity_holds(s)
    assert s["offered"] == s["verdicts"] + dropped_total(s) and dropped_total(s) <= 1, "at most the one closed"
    assert s["send_stalls"] > 0, "the send failpoint fired"
    counts = h.ledger().fate_counts()
    assert counts["verdict"] == s["verdicts"] and not h.ledger().duplicates()


# -- rogue input -------------------------------------------------------------

def frame(type_, count, epoch, incarnation, body=b"", version=p.VERSION, magic=p.MAGIC):
    head = struct.pack("<IBBHQQ", magic, version, type_, count, epoch, incarnation)
    return head + struct.pack("<Q", xxhash.xxh64(head + body).intdigest()) + body


def test_rogue_frames_on_the_verdict_endpoint_are_counted_and_change_nothing(core_harness):
    h = core_harness
    count = 30_000
    h.start_core(mode="block", count=count, rate=10_000, ring_capacity=4096, retransmit_timeout="200ms")
    bridge = h.start_bridge()
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= 2_000)
    epoch, inc = h.core_epoch(), bridge.incarnation  # a rogue impersonating the live bridge
    good = p.encode_hello(epoch, inc)
    seq1 = struct.pack("<QQfBBH", 1, 1, 0.5, 0, 0, 0)  # seq 1 is txn 1 and is verdicted by now
    rogue = h.rogue_peer()
    sent = {
        "truncated": [good[:31]],
        "bad_magic": [b"XXXX" + good[4:]],
        "bad_version": [frame(p.TYPE_HELLO, 0, epoch, inc, version=9)],
        "bad_type": [frame(7, 0, epoch, inc)],
        "bad_length": [frame(p.TYPE_VERDICT, 2, epoch, inc, seq1)],
        "bad_checksum": [good[:24] + b"\0" * 8 + good[32:]] * 2001,  # a flood
        "wrong_epoch": [frame(p.TYPE_VERDICT, 1, epoch ^ 1, inc, seq1)],
        "unexpected_type": [frame(p.TYPE_TXN, 0, epoch, 0)],
    }
    for frames in sent.values():
        for raw in frames:
            rogue.send(raw)
    rogue.send(frame(p.TYPE_VERDICT, 1, epoch, inc, struct.pack("<QQfBBH", 2**60, 1, 0.5, 0, 0, 0)))  # unknown seq
    rogue.send(frame(p.TYPE_VERDICT, 1, epoch, inc, seq1))  # a duplicate of a real verdict
    h.wait_core_metric("aegis_rejected_frames_total", lambda v: v >= 2001, reason="bad_checksum")
    rogue.send(b"\0" * (p.MAX_FRAME_BYTES + 1))  # libzmq drops the rogue's connection (ZMQ_MAXMSGSIZE)

    m = h.wait_core_metric("aegis_rejected_frames_total", lambda v: v >= 1, reason="unexpected_type") and \
        h.core_metrics()
    ok, output = promtool_check(m.text)
    assert ok in (True, None), f"promtool check metrics:\n{output}"
    # Exactly what the rogue sent, and nothing from the honest bridge: the
    # oversized frame never reaches the core's decoder (libzmq drops it).
    h.expect_rejections(**{reason: len(frames) for reason, frames in sent.items()}, unknown_seq=1)
    s = assert_clean_block_run(h, h.wait_core_exit(60), count)
    for reason, frames in sent.items():
        assert s["rejected_frames"][reason] == len(frames), (reason, s["rejected_frames"])
    # The rogue stopped before these scrapes, so the scraped counters are final.
    scraped = m.by_label("aegis_rejected_frames_total", "reason")
    assert {r: scraped[r] for r in sent} == {r: s["rejected_frames"][r] for r in sent}
    assert s["unknown_seq"] == 1 and s["duplicate_verdicts"] >= 1
    assert bridge.alive() and s["bridge_incarnations"] == 1
