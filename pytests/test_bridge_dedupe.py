"""Proves the bridge never scores or answers a seq twice within one incarnation and one core epoch.

The core resends records the bridge may already have answered (a rewind, a
timeout); over ipc:// between two live processes the first answer is on its
way, so a second would only be scored for nothing and counted by the core as
a duplicate verdict. Against the in-process FakeCore:

- a frame resent later, alone or mixed with new records, is skipped record
  by record: each seq is answered once, in order, and the skipped records
  are counted (`duplicates_skipped`), never scored;
- the same within one wake-up's batch (frames queued before the loop runs),
  and records out of order there (a rewind's resends after newer records)
  are each answered once;
- a new core epoch forgets the table: seq 1 of the new core is answered;
- two seqs sharing a table slot are both answered (a collision can only
  make a duplicate look new, never a new record look answered);
- each HELLO's status record says what was read and answered: read_serial is
  the last TXN frame serial of the echoed epoch, fully answered; the counts
  match the bridge's own; verdicts carry flags 0 and reserved 0.

A record's verdict arriving is the only synchronisation: a marker frame of
new records sent after a resend proves the resend was read (one ordered
connection), so no test waits on time.
"""

import numpy as np
import pytest

from aegis_bridge import protocol as p
from aegis_bridge.bridge import DEDUPE_SLOTS
from aegis_fixtures.bridge_thread import SHIPPED_MODEL, RunningBridge
from aegis_fixtures.fake_core import FakeCore
from aegis_fixtures.waiting import wait_for


def answered_seqs(core):
    return core.verdict_records()["seq"].tolist()


def wait_counted(r, records: int):
    # The loop counts a frame just after sending it, so its counters may trail what arrived.
    wait_for(lambda: r.stats.verdict_records_sent == records, 30, f"the bridge to count {records} verdict records",
             describe=lambda: r.stats.as_dict())


@pytest.mark.parametrize("per_frame", [10, 100], ids=["small-frames", "large-frames"])
def test_a_resent_frame_is_neither_scored_nor_answered_again(fake_core, run_bridge, per_frame):
    r = run_bridge()
    frames = fake_core.send_txns(3 * per_frame, per_frame=per_frame)
    fake_core.wait_verdict_records(3 * per_frame)
    fake_core.resend(frames[1])
    marker = fake_core.send_txns(per_frame, per_frame=per_frame)[0]  # after the resend on one ordered connection
    fake_core.wait_verdict_records(4 * per_frame)
    wait_counted(r, 4 * per_frame)
    assert answered_seqs(fake_core) == list(range(1, 4 * per_frame + 1)), "each seq answered once, in order"
    assert r.stats.duplicates_skipped == len(frames[1])
    assert r.stats.records_scored == 4 * per_frame, "the resent records were not scored again"
    assert fake_core.verdict_records()[-per_frame:]["txn_id"].tolist() == marker["txn_id"].tolist()


def test_a_resend_mixing_answered_and_new_records_answers_only_the_new(fake_core, run_bridge):
    r = run_bridge()
    fake_core.send_txns(200, per_frame=100)
    fake_core.wait_verdict_records(200)
    more = fake_core.make_frames(100, per_frame=100)[0]  # seqs 201..300, never sent
    both = np.concatenate([fake_core.sent_frames[1][2][50:], more])  # 151..200 answered, 201..300 new
    fake_core.send_records(both)
    fake_core.wait_verdict_records(300)
    wait_counted(r, 300)
    assert answered_seqs(fake_core) == list(range(1, 301))
    assert r.stats.duplicates_skipped == 50 and r.stats.records_scored == 300


def test_duplicates_within_one_batch_are_answered_once(endpoint_dir):
    core = FakeCore(endpoint_dir, send_hwm=1)
    try:
        r = RunningBridge(core, start=False, batch_max=64)
        a, b = core.make_frames(200, per_frame=100)
        for records in (a, b, a, b[:10], a[::-1]):  # queued before the loop runs: one batch
            core.send_records(records)
        c = core.send_txns(100, per_frame=100)[0]
        r.thread.start()
        core.wait_verdict_records(300)
        wait_counted(r, 300)
        assert answered_seqs(core) == list(range(1, 301))
        assert r.stats.duplicates_skipped == len(a) + 10 + len(a)
        assert core.verdict_records()[-100:]["seq"].tolist() == c["seq"].tolist()
        r.stop()
    finally:
        core.close()


def test_records_out_of_order_in_one_batch_are_all_answered_once(endpoint_dir):
    # A rewind resends old unanswered seqs after newer ones: not increasing, nothing seen.
    core = FakeCore(endpoint_dir, send_hwm=1)
    try:
        r = RunningBridge(core, start=False)
        a, b, c = core.make_frames(300, per_frame=100)
        for records in (b, c, a):
            core.send_records(records)
        r.thread.start()
        core.wait_verdict_records(300)
        wait_counted(r, 300)
        order = np.concatenate([b, c, a])["seq"].tolist()
        assert answered_seqs(core) == order, "each seq once, in the order the records came"
        assert r.stats.duplicates_skipped == 0 and r.stats.records_scored == 300
        r.stop()
    finally:
        core.close()


def test_a_new_epoch_forgets_what_was_answered(fake_core, run_bridge):
    r = run_bridge()
    fake_core.send_txns(100, per_frame=50)
    fake_core.wait_verdict_records(100)
    first_epoch = fake_core.epoch
    fake_core.epoch = 0x5EC0_0D0C_0DE5  # a new core: its seqs start at 1 again
    fake_core.next_seq = 1
    fake_core.send_txns(100, per_frame=50)
    fake_core.wait_verdict_records(200)
    wait_counted(r, 200)
    v = fake_core.verdict_records()
    assert v["seq"].tolist() == list(range(1, 101)) * 2
    epochs = [f.epoch for f in fake_core.verdict_frames for _ in range(f.count)]
    assert epochs == [first_epoch] * 100 + [fake_core.epoch] * 100
    assert r.stats.duplicates_skipped == 0 and r.stats.epochs_seen == 2


def test_seqs_sharing_a_slot_are_both_answered(fake_core, run_bridge):
    r = run_bridge()
    (one,) = fake_core.make_frames(1, per_frame=1)
    other = one.copy()
    other["seq"] += DEDUPE_SLOTS  # the same slot of the table
    other["txn_id"] += 1
    # One at a time, so each is its own batch: `one` again after `other` took its slot is answered again.
    # (Within one batch an exact repeat is found without the table, whatever the slots.)
    for n, records in enumerate((one, other, one), 1):
        fake_core.send_records(records)
        fake_core.wait_verdict_records(n)
    wait_counted(r, 3)
    assert answered_seqs(fake_core) == [int(one["seq"][0]), int(other["seq"][0]), int(one["seq"][0])]
    assert r.stats.duplicates_skipped == 0, "a collision makes a duplicate look new: scored twice, never lost"


def test_hello_reports_what_was_read_and_answered(fake_core, run_bridge):
    r = run_bridge(heartbeat_s=0.05)
    frames = fake_core.send_txns(300, per_frame=100)
    fake_core.resend(frames[0])
    fake_core.wait_verdict_records(300)
    last_serial = fake_core.serials[fake_core.epoch]
    assert last_serial == 4, "three frames and one resend"
    fake_core.wait(lambda: fake_core.hellos and fake_core.hellos[-1].records["read_serial"][0] == last_serial, 30,
                   f"a HELLO with read_serial {last_serial}")
    hello = fake_core.hellos[-1]
    status = hello.records[0]
    assert hello.epoch == fake_core.epoch and hello.incarnation == r.bridge.incarnation
    assert status["records_answered"] == 300 and status["duplicates_skipped"] == 100
    assert status["heartbeat_ms"] == 50 and status["reserved"] == 0
    assert r.stats.read_serial == last_serial
    # Serials count per epoch: a new core's first frame is serial 1 again.
    fake_core.epoch ^= 0xFF
    fake_core.next_seq = 1
    fake_core.send_txns(10, per_frame=10)
    fake_core.wait_verdict_records(310)
    fake_core.wait(lambda: fake_core.hellos[-1].epoch == fake_core.epoch, 30, "a HELLO echoing the new epoch")
    fake_core.wait_hellos(len(fake_core.hellos) + 1)
    assert fake_core.hellos[-1].records["read_serial"][0] == 1
    assert fake_core.hellos[-1].records["records_answered"][0] == 310


def test_normal_verdicts_carry_zero_flags_and_reserved_bytes(fake_core, run_bridge):
    run_bridge()
    sent = np.concatenate(fake_core.send_txns(2000, per_frame=500))
    fake_core.wait_verdict_records(2000)
    v = fake_core.verdict_records()
    assert (v["flags"] == 0).all() and (v["reserved"] == 0).all()
    scores, decisions = SHIPPED_MODEL.score(sent)
    assert np.array_equal(v["score"], scores) and np.array_equal(v["decision"], decisions)
    assert not fake_core.record_rejects, f"records the core would reject: {dict(fake_core.record_rejects)}"
    assert (p.verdict_record_problems(v) == -1).all()
