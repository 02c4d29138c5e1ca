"""Proves the bridge loop (aegis_bridge.bridge) keeps the protocol, against an in-process fake core.

The Bridge runs in a thread; FakeCore binds real ZeroMQ ipc sockets in a
per-test directory, like aegis-core. Each test waits on what the fake core
receives (a Poller on its verdict socket), never on time.

- HELLO at start with a non-zero incarnation, then repeated every heartbeat,
  carrying the last core epoch seen; none while the offload channel is not
  connected, and one at once whenever it (re)connects.
- Every TXN record gets one verdict, in order (same seqs and ids), carrying
  the TXN frame's epoch, the bridge's incarnation and the model's scores;
  the verdicts of one wake-up share VERDICT frames of up to MAX_RECORDS
  records, and a frame never mixes epochs.
- Batching: several queued frames are scored in one wake-up, at most
  batch_max at a time, and a lone frame is answered without waiting for more.
- Bad frames are counted by reason and skipped; good frames around them are
  still answered; frames of the wrong direction count as unexpected_type.
- A new epoch (a new core) is followed; frames are answered with their own epoch.
- A stop request wakes the loop at once, even while a send is blocked by
  back-pressure.
"""

import threading
import time

import numpy as np
import pytest
import zmq

from aegis_bridge import protocol as p
from aegis_bridge.bridge import Bridge, BridgeConfig
from aegis_fixtures.bridge_thread import SHIPPED_MODEL, RunningBridge
from aegis_fixtures.fake_core import FakeCore
from aegis_fixtures.waiting import wait_for

MODEL = SHIPPED_MODEL


def test_hello_at_start_then_every_heartbeat(fake_core, run_bridge):
    r = run_bridge(heartbeat_s=0.05)
    fake_core.wait_hellos(5)
    incarnations = {h.incarnation for h in fake_core.hellos}
    assert incarnations == {r.bridge.incarnation} and r.bridge.incarnation != 0
    assert all(h.epoch == 0 and h.count == 1 for h in fake_core.hellos), "no core epoch seen yet"
    status = np.concatenate([h.records for h in fake_core.hellos])
    assert (status["read_serial"] == 0).all() and (status["records_answered"] == 0).all()
    assert (status["heartbeat_ms"] == 50).all() and (status["reserved"] == 0).all()
    # The first HELLO may have queued before the connection. Arrival times
    # jitter with the test thread's scheduling, so judge the mean interval.
    t = fake_core.hello_times
    mean_gap = (t[-1] - t[1]) / (len(t) - 2)
    assert 0.04 < mean_gap < 2.0, f"heartbeats every 50 ms, got a mean of {mean_gap * 1000:.1f} ms"


def test_hello_waits_for_the_offload_connection_and_follows_each_reconnect(endpoint_dir):
    # A HELLO makes a core resend: it must not arrive before the bridge can
    # receive. The heartbeat is long, so only a (re)connect can send one.
    ctx = zmq.Context.instance()
    offload_ep, verdicts_ep = f"ipc://{endpoint_dir}/offload.sock", f"ipc://{endpoint_dir}/verdicts.sock"
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    monitor = pull.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    pull.bind(verdicts_ep)
    bridge = Bridge(BridgeConfig(offload=offload_ep, verdicts=verdicts_ep, heartbeat_s=30.0), MODEL)
    bridge.connect()
    thread = threading.Thread(target=bridge.run, name="bridge", daemon=True)
    thread.start()
    pushes = []
    try:
        assert monitor.poll(10_000), "the bridge's verdict connection did not come up"
        # Without the offload connection, nothing: a HELLO queued at start
        # would arrive right after the verdict handshake above.
        assert not pull.poll(300), "a HELLO arrived before the offload channel was connected"
        assert bridge.stats.hellos_sent == 0
        for connects in (1, 2):
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.bind(offload_ep)
            pushes.append(push)
            assert pull.poll(10_000), f"no HELLO within 10 s of offload connection {connects} (heartbeat is 30 s)"
            hello = p.decode_frame(pull.recv())
            assert hello.type == p.TYPE_HELLO and hello.incarnation == bridge.incarnation
            assert bridge.stats.offload_connects == connects
            push.close(linger=0)  # the bridge sees a disconnect and reconnects to the next bind
    finally:
        bridge.request_stop()
        thread.join(15)
        bridge.close()
        for s in (monitor, pull, *pushes):
            s.close(linger=0)
    assert not thread.is_alive()
    assert bridge.stats.hellos_sent == 2


def test_swapped_endpoints_are_reported_not_waited_out_in_silence(endpoint_dir, capsys):
    # The bridge's PULL on the core's PULL and its PUSH on the core's PUSH:
    # libzmq drops each connection before its handshake and never retries.
    core = FakeCore(endpoint_dir)
    swapped = Bridge(BridgeConfig(offload=core.verdicts_ep, verdicts=core.offload_ep), MODEL)
    swapped.connect()
    thread = threading.Thread(target=swapped.run, name="bridge", daemon=True)
    thread.start()
    try:
        wait_for(lambda: swapped.stats.handshake_failures >= 2, 10, "both channels' failed handshakes")
    finally:
        swapped.request_stop()
        thread.join(15)
        swapped.close()
        core.close()
    err = capsys.readouterr().err
    for flag, endpoint in (("--offload", core.verdicts_ep), ("--verdicts", core.offload_ep)):
        assert f"warning: {flag} {endpoint}: the peer closed the connection before the ZeroMQ handshake" in err, err
    assert err.count("are not swapped") == 2, "one warning per channel, not one per failure"
    assert swapped.stats.offload_connects == 0 and swapped.stats.hellos_sent == 0


def test_a_healthy_start_reports_no_failed_handshake(fake_core, run_bridge, capsys):
    r = run_bridge(heartbeat_s=0.05)
    fake_core.send_txns(10)
    fake_core.wait_verdict_records(10)
    assert r.stats.handshake_failures == 0 and r.stats.offload_connects == 1
    assert "warning" not in capsys.readouterr().err


def test_verdicts_answer_every_txn_record_in_order(fake_core, run_bridge):
    r = run_bridge()
    sent = fake_core.send_txns(3000, per_frame=256)
    fake_core.wait_verdict_records(3000)
    frames = fake_core.verdict_frames
    assert all(0 < f.count <= p.MAX_RECORDS for f in frames)
    assert len(frames) <= len(sent), "verdicts of frames taken together share VERDICT frames"
    assert all(f.epoch == fake_core.epoch and f.incarnation == r.bridge.incarnation for f in frames)
    got = fake_core.verdict_records()
    want = np.concatenate(sent)
    assert np.array_equal(got["seq"], want["seq"]) and np.array_equal(got["txn_id"], want["txn_id"])
    scores, decisions = MODEL.score(want)
    assert np.array_equal(got["score"], scores) and np.array_equal(got["decision"], decisions)
    # The loop counts a frame just after sending it, so the count may trail what arrived.
    wait_for(lambda: r.stats.verdict_records_sent == 3000, 30, "the bridge to count its sends")
    assert r.stats.records_scored == 3000


def test_hello_carries_the_core_epoch_once_seen(fake_core, run_bridge):
    run_bridge(heartbeat_s=0.05)
    fake_core.send_txns(10, per_frame=10)
    fake_core.wait_verdict_records(10)
    seen = len(fake_core.hellos)
    fake_core.wait_hellos(seen + 2)
    assert fake_core.hellos[-1].epoch == fake_core.epoch


def test_a_lone_frame_is_answered_without_waiting_for_a_batch(fake_core, run_bridge):
    run_bridge(batch_max=64, heartbeat_s=60.0)
    fake_core.send_txns(1, per_frame=1)
    # With a 60 s heartbeat the only thing that can wake the loop is the frame itself.
    fake_core.wait_verdict_records(1, timeout_s=20.0)


def test_queued_frames_are_batched_up_to_batch_max(endpoint_dir):
    core = FakeCore(endpoint_dir, send_hwm=1)  # a send returns only once earlier frames have moved on
    try:
        r = RunningBridge(core, start=False, batch_max=4)
        sent = core.send_txns(40 * 16, per_frame=16)  # queued before the loop runs
        r.thread.start()
        core.wait_verdict_records(640)
        # Each wake-up answers its (at most 4) frames in one VERDICT frame.
        assert all(f.count in (16, 32, 48, 64) for f in core.verdict_frames)
        # The loop counts a frame just after sending it, so the counts may trail what arrived.
        wait_for(lambda: r.stats.verdict_records_sent == 640, 30, "the bridge to count its sends")
        assert r.stats.batches >= 10, "never more than batch_max=4 frames per wake-up"
        assert r.stats.verdict_frames_sent == r.stats.batches
        assert np.array_equal(core.verdict_records()["seq"], np.concatenate(sent)["seq"])
        r.stop()
    finally:
        core.close()


def test_a_flood_is_scored_several_frames_per_wake_up(endpoint_dir):
    core = FakeCore(endpoint_dir, send_hwm=1)
    try:
        r = RunningBridge(core, start=False, batch_max=64)
        core.send_txns(40 * 16, per_frame=16)
        r.thread.start()
        core.wait_verdict_records(640)
        assert r.stats.batches < r.stats.txn_frames == 40, "queued frames share a wake-up"
        r.stop()
    finally:
        core.close()


BAD_FRAMES = {
    "truncated": b"AEGS",
    "bad_magic": b"XEGS" + p.encode_hello(1, 1)[4:],
    "bad_version": p.encode_hello(1, 1)[:4] + b"\x01" + p.encode_hello(1, 1)[5:],  # a v1 peer
    "bad_type": p.encode_hello(1, 1)[:5] + b"\x09" + p.encode_hello(1, 1)[6:],
    "bad_length": p.encode_hello(1, 1) + b"\0",
    "bad_checksum": p.encode_hello(1, 1)[:24] + b"\0" * 8 + p.encode_hello(1, 1)[32:],
}


def test_bad_frames_are_counted_by_reason_and_skipped(fake_core, run_bridge):
    r = run_bridge()
    good = fake_core.make_frames(6 * 10, per_frame=10)
    for (reason, raw), records in zip(BAD_FRAMES.items(), good):
        fake_core.send_records(records)
        fake_core.send_raw(raw)
    fake_core.send_raw(p.encode_hello(1, 2))  # valid, but not meant for the bridge
    fake_core.send_raw(p.encode_verdicts(1, 2, p.make_verdicts(good[0], np.zeros(10, np.float32),
                                                               np.zeros(10, np.uint8))))
    fake_core.wait_verdict_records(60)
    wait_for(lambda: sum(r.stats.bad_frames.values()) == 8, 30, "all bad frames counted",
             describe=lambda: dict(r.stats.bad_frames))
    assert dict(r.stats.bad_frames) == {**{k: 1 for k in BAD_FRAMES}, "unexpected_type": 2}
    assert np.array_equal(fake_core.verdict_records()["seq"], np.concatenate(good)["seq"])
    assert r.stats.frames_received == 6 + 6 + 2


def test_an_oversized_frame_is_counted_and_the_bridge_keeps_listening(fake_core, run_bridge):
    # The bridge sets no ZMQ_MAXMSGSIZE (PROTOCOL.md says why): libzmq would
    # drop its connection for good. It must see the frame, count it, and go on.
    r = run_bridge()
    big = fake_core.make_frames(p.MAX_RECORDS, p.MAX_RECORDS)[0]
    fake_core.send_raw(p.encode_txns(fake_core.epoch, fake_core.next_serial(), big) + b"\0")
    fake_core.send_txns(5, per_frame=5)
    fake_core.wait_verdict_records(5)
    assert dict(r.stats.bad_frames) == {"oversized": 1}
    assert fake_core.verdict_records()["seq"].tolist() == list(range(p.MAX_RECORDS + 1, p.MAX_RECORDS + 6))


def test_a_new_core_epoch_is_followed(fake_core, run_bridge):
    r = run_bridge(heartbeat_s=0.05)
    first = fake_core.send_txns(20, per_frame=10)
    fake_core.wait_verdict_records(20)
    fake_core.epoch = 0xABCDEF  # a new core process on the same endpoints
    fake_core.next_seq = 1
    second = fake_core.send_txns(20, per_frame=10)
    fake_core.wait_verdict_records(40)
    epochs = [f.epoch for f in fake_core.verdict_frames for _ in range(f.count)]
    assert epochs == [0x0E0C0E0C0E0C0E0C] * 20 + [0xABCDEF] * 20, "each verdict echoes its own TXN frame's epoch"
    assert r.stats.epochs_seen == 2 and r.stats.current_epoch == 0xABCDEF
    n = len(fake_core.hellos)
    fake_core.wait_hellos(n + 2)
    assert fake_core.hellos[-1].epoch == 0xABCDEF
    assert len(first) == len(second) == 2


def test_stop_wakes_an_idle_loop_at_once(fake_core, run_bridge):
    r = run_bridge(heartbeat_s=60.0)
    fake_core.wait_hellos(1)
    # Far below the 60 s heartbeat, with room for a loaded 2-core machine.
    assert r.stop() < 10.0, "the self-pipe, not the heartbeat timeout, ends the wait"


def test_stop_works_while_a_send_is_blocked_by_back_pressure(endpoint_dir):
    # Tiny high-water marks on both ends of the verdict channel, and a core
    # that never reads verdicts: after a few MB of kernel buffers the bridge
    # must wait in its send, and a stop request must still end it at once.
    core = FakeCore(endpoint_dir, recv_hwm=1)
    try:
        r = RunningBridge(core, send_hwm=1, heartbeat_s=60.0)
        frames = core.make_frames(1024 * 400, per_frame=1024)
        sent = 0
        while r.stats.send_waits == 0 and sent < len(frames):
            if core.push.poll(100, zmq.POLLOUT):
                core.push.send(p.encode_txns(core.epoch, sent + 1, frames[sent]))
                sent += 1
        wait_for(lambda: r.stats.send_waits > 0, 60, "the bridge to block in a send (10 MB of verdicts unread)")
        assert r.stop() < 10.0, "a stop request ends a blocked send long before the 60 s heartbeat"
    finally:
        core.close()
