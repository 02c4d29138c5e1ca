"""BridgeCore alone: the bridge's protocol rules with no sockets, no clock and no threads.

What it proves: fed TXN frames as bytes and the time as integer
nanoseconds, BridgeCore answers every fresh record once and in order, skips
duplicates (a resend, a resend mixed with new records, a duplicate within
one wake-up), answers records across seq gaps, forgets what it read when a
new core epoch appears and never mixes epochs in one VERDICT frame, counts
and skips malformed frames, answers the records the model fails on
`unscored` by bisection, and produces HELLOs exactly when due (only while
the offload channel is up, at once when it comes up, between chunks of a
long batch), each reporting `read_serial` as the rule says.

How: every test builds frames with the bridge's own codec, drives the core
with explicit times, and decodes what it returns. The model is the shared
vector scorer (fixtures/aegis_fixtures/vector_scorer.py), a pure function of
the txn ids, so the expected verdicts are computed independently.
"""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from aegis_bridge import core as core_module
from aegis_bridge import protocol as p
from aegis_bridge.core import BridgeCore, CoreConfig
from aegis_fixtures.vector_scorer import VectorScorer, poisoned

EPOCH = 0x1111_2222_3333_4444
OTHER_EPOCH = 0x5555_6666_7777_8888
INCARNATION = 0xB12D6E
MS = 1_000_000
HEARTBEAT_NS = 200 * MS


def make_core(poison_ppm: int = 0, cost_ns_per_record: int | None = 100, **config: int) -> BridgeCore:
    config.setdefault("heartbeat_ns", HEARTBEAT_NS)
    core = BridgeCore(VectorScorer(poison_ppm), INCARNATION, CoreConfig(**config))
    if cost_ns_per_record is not None:
        core.note_cost(1024, 1024 * cost_ns_per_record)  # a fast model: a wake-up is one chunk
    return core


def txns(seqs: list[int]) -> np.ndarray:
    t = np.zeros(len(seqs), dtype=p.TXN_DTYPE)
    t["seq"] = seqs
    t["txn_id"] = [1000 + 7 * s for s in seqs]
    t["amount_minor"] = 1234
    t["currency"] = b"EUR"
    return t


def txn_frame(serial: int, seqs: list[int], epoch: int = EPOCH) -> bytes:
    return p.encode_txns(epoch, serial, txns(seqs))


def serve(core: BridgeCore, raws: list[bytes], now_ns: int = 0) -> list[p.Frame]:
    """One wake-up: receive, then step until answered; the decoded frames out, in order."""
    core.receive(raws, now_ns)
    out: list[p.Frame] = []
    while core.busy:
        out += [p.decode_frame(raw) for raw in core.step(now_ns)]
    return out


def verdicts(frames: list[p.Frame]) -> list[tuple[int, int]]:
    """(seq, txn_id) of every VERDICT record, in order."""
    return [(int(r["seq"]), int(r["txn_id"])) for f in frames if f.type == p.TYPE_VERDICT for r in f.records]


def expected(seqs: list[int]) -> list[tuple[int, int]]:
    return [(s, 1000 + 7 * s) for s in seqs]


def hello_status(raw: bytes) -> dict[str, int]:
    f = p.decode_frame(raw)
    assert f.type == p.TYPE_HELLO
    r = f.records[0]
    return {"epoch": f.epoch, "incarnation": f.incarnation, **{k: int(r[k]) for k in p.HELLO_DTYPE.names or ()}}


def test_fresh_frames_are_answered_in_order_in_one_verdict_frame_per_epoch_run():
    core = make_core()
    out = serve(core, [txn_frame(1, [1, 2, 3]), txn_frame(2, [4, 5])])
    assert len(out) == 1 and out[0].type == p.TYPE_VERDICT, "consecutive frames of one epoch share a VERDICT frame"
    assert out[0].epoch == EPOCH and out[0].incarnation == INCARNATION
    assert verdicts(out) == expected([1, 2, 3, 4, 5])
    scores, decisions = VectorScorer().score(txns([1, 2, 3, 4, 5]))
    assert out[0].records["score"].tolist() == scores.tolist()
    assert out[0].records["decision"].tolist() == decisions.tolist()
    assert (out[0].records["flags"] == 0).all() and (out[0].records["reserved"] == 0).all()
    st = core.stats
    assert (st.read_serial, st.txn_frames, st.batches, st.records_scored, st.verdict_records_sent) == (2, 2, 1, 5, 5)


def test_a_resent_frame_is_skipped_and_read_serial_passes_it():
    core = make_core()
    serve(core, [txn_frame(1, [1, 2, 3])])
    out = serve(core, [txn_frame(2, [1, 2, 3])])
    assert out == [], "a duplicate is neither scored nor answered"
    assert core.stats.duplicates_skipped == 3 and core.stats.records_scored == 3
    assert core.stats.read_serial == 2, "a frame of duplicates only is read in full"


def test_a_resend_mixed_with_new_records_answers_only_the_new_in_order():
    core = make_core()
    serve(core, [txn_frame(1, [1, 2, 3, 4])])
    out = serve(core, [txn_frame(2, [3, 4, 5, 6]), txn_frame(3, [2, 7])])
    assert verdicts(out) == expected([5, 6, 7])
    assert core.stats.duplicates_skipped == 3 and core.stats.read_serial == 3


def test_a_duplicate_within_one_wake_up_is_answered_once():
    core = make_core()
    out = serve(core, [txn_frame(1, [5, 6, 7]), txn_frame(2, [6, 7, 8]), txn_frame(3, [5])])
    assert verdicts(out) == expected([5, 6, 7, 8])
    assert core.stats.duplicates_skipped == 3


def test_seq_gaps_are_answered_and_the_gap_is_answered_later():
    core = make_core()
    out = serve(core, [txn_frame(1, [1, 2, 3]), txn_frame(2, [10, 11])])
    out += serve(core, [txn_frame(3, [4, 5, 6, 7, 8, 9])])
    assert verdicts(out) == expected([1, 2, 3, 10, 11, 4, 5, 6, 7, 8, 9])
    assert core.stats.duplicates_skipped == 0


def test_a_new_epoch_forgets_what_was_read_and_never_shares_a_verdict_frame():
    core = make_core()
    serve(core, [txn_frame(1, [1, 2]), txn_frame(2, [3])])
    out = serve(core, [txn_frame(3, [4], EPOCH), txn_frame(1, [1, 2], OTHER_EPOCH), txn_frame(2, [3], OTHER_EPOCH)])
    assert [f.epoch for f in out] == [EPOCH, OTHER_EPOCH], "one VERDICT frame per epoch run, echoing its epoch"
    assert verdicts(out) == expected([4, 1, 2, 3]), "the new core's seqs 1..3 are new"
    st = core.stats
    assert st.epochs_seen == 2 and st.current_epoch == OTHER_EPOCH and st.read_serial == 2
    assert st.duplicates_skipped == 0
    # Back to the first epoch (a stale frame of the old core): it is a new epoch again, read from scratch.
    out = serve(core, [txn_frame(9, [4], EPOCH)])
    assert verdicts(out) == expected([4]) and core.stats.epochs_seen == 3 and core.stats.read_serial == 9


@pytest.mark.parametrize("raw, reason", [
    (b"", "truncated"),
    (b"\0" * 31, "truncated"),
    (b"\0" * (p.MAX_FRAME_BYTES + 1), "oversized"),
    (b"XXXX" + txn_frame(1, [1])[4:], "bad_magic"),
    (txn_frame(1, [1])[:4] + b"\x01" + txn_frame(1, [1])[5:], "bad_version"),
    (txn_frame(1, [1])[:-1], "bad_length"),
    (txn_frame(1, [1])[:-1] + b"\xff", "bad_checksum"),
    (p.encode_hello(EPOCH, 7), "unexpected_type"),
    (p.encode_verdicts(EPOCH, 7, np.zeros(1, dtype=p.VERDICT_DTYPE)), "unexpected_type"),
])
def test_malformed_frames_are_counted_by_reason_and_skipped(raw, reason):
    core = make_core()
    out = serve(core, [txn_frame(1, [1]), raw, txn_frame(2, [2])])
    assert verdicts(out) == expected([1, 2]), "the good frames around a bad one are answered"
    assert len(out) == 1, "a bad frame between two of one epoch does not split the run"
    assert dict(core.stats.bad_frames) == {reason: 1}
    assert core.stats.frames_received == 3 and core.stats.txn_frames == 2 and core.stats.read_serial == 2


def test_a_wake_up_of_bad_frames_only_leaves_nothing_to_do():
    core = make_core()
    assert core.receive([b"junk"], 0) == [] and not core.busy
    assert core.stats.batches == 0 and core.stats.bad_frames["truncated"] == 1


def test_records_the_model_fails_on_are_isolated_and_answered_unscored():
    seqs = list(range(1, 201))
    poison_ppm = 50_000
    bad = [s for s in seqs if poisoned(1000 + 7 * s, poison_ppm)]
    assert 0 < len(bad) < 50, "the share makes a few poison records among 200"
    core = make_core(poison_ppm=poison_ppm, unscored_decision=p.DECISION_DECLINE)
    out = serve(core, [txn_frame(1, seqs)])
    assert verdicts(out) == expected(seqs), "every record answered, in order"
    recs = np.concatenate([f.records for f in out])
    unscored = recs["flags"] == p.FLAG_UNSCORED
    assert recs["seq"][unscored].tolist() == bad
    assert (recs["score"][unscored] == 0).all() and (recs["decision"][unscored] == p.DECISION_DECLINE).all()
    good = txns([s for s in seqs if s not in bad])
    scores, _ = VectorScorer().score(good)
    assert recs["score"][~unscored].tolist() == scores.tolist()
    st = core.stats
    assert st.unscored == len(bad) and st.records_scored == 200 - len(bad) and st.model_errors >= len(bad)
    assert core.last_chunk is not None and not core.last_chunk.model_ok, "a failed first call is no cost sample"


def test_output_out_of_contract_is_answered_unscored():
    class Nan(VectorScorer):
        def score(self, t: np.ndarray, /) -> tuple[np.ndarray, np.ndarray]:
            s, d = super().score(t)
            s[::2] = np.nan
            return s, d

    core = BridgeCore(Nan(), INCARNATION)
    out = serve(core, [txn_frame(1, [1, 2, 3, 4])])
    assert out[0].records["flags"].tolist() == [1, 0, 1, 0] and core.stats.bad_scores == 2


def test_hello_only_while_the_offload_channel_is_up_and_at_once_when_it_comes_up():
    core = make_core()
    assert core.next_deadline_ns == 0, "due at start"
    assert core.tick(0) == [], "no HELLO before the offload channel is up"
    assert core.next_deadline_ns == HEARTBEAT_NS
    core.set_offload_up(True)
    assert core.next_deadline_ns == 0, "coming up makes a HELLO due at once"
    [hello] = core.tick(5 * MS)
    st = hello_status(hello)
    assert st == {"epoch": 0, "incarnation": INCARNATION, "read_serial": 0, "heartbeat_ms": 200, "reserved": 0,
                  "records_answered": 0, "duplicates_skipped": 0}
    assert core.next_deadline_ns == 5 * MS + HEARTBEAT_NS
    assert core.tick(5 * MS + HEARTBEAT_NS - 1) == [], "not due a nanosecond early"
    assert len(core.tick(5 * MS + HEARTBEAT_NS)) == 1
    core.set_offload_up(False)
    assert core.tick(10 * HEARTBEAT_NS) == [] and core.next_deadline_ns == 11 * HEARTBEAT_NS
    core.set_offload_up(True, announce=False)
    assert core.next_deadline_ns == 11 * HEARTBEAT_NS, "without announce the deadline stands"


def test_hello_reports_what_was_read_and_answered():
    core = make_core()
    core.set_offload_up(True)
    serve(core, [txn_frame(1, [1, 2, 3]), txn_frame(2, [4])], now_ns=1)
    serve(core, [txn_frame(3, [3, 4, 5])], now_ns=2)
    [hello] = core.tick(3)
    assert hello_status(hello) == {"epoch": EPOCH, "incarnation": INCARNATION, "read_serial": 3,
                                   "heartbeat_ms": 200, "reserved": 0, "records_answered": 5,
                                   "duplicates_skipped": 2}


def test_a_slow_model_is_answered_in_chunks_with_a_due_hello_between_them():
    core = make_core(cost_ns_per_record=None)
    core.note_cost(1000, 1000 * 5 * MS)  # 5 ms a record: a chunk of 20 ms holds 4 records
    core.set_offload_up(True)
    assert len(core.tick(0)) == 1
    core.receive([txn_frame(1, list(range(1, 6))), txn_frame(2, list(range(6, 11)))], 0)
    now = 0
    steps: list[list[p.Frame]] = []
    while core.busy:
        steps.append([p.decode_frame(raw) for raw in core.step(now)])
        assert core.last_chunk is not None
        now += core.last_chunk.records * 5 * MS  # the model's time, as a simulator would feed it
        core.note_cost(core.last_chunk.records, core.last_chunk.records * 5 * MS)
    assert [[len(f.records) for f in s if f.type == p.TYPE_VERDICT] for s in steps] == [[4], [4], [2]]
    # 50 ms of scoring against a 200 ms heartbeat: none due. Shorten the heartbeat to see one.
    assert all(f.type == p.TYPE_VERDICT for s in steps for f in s)
    core = make_core(cost_ns_per_record=None, heartbeat_ns=30 * MS)
    core.note_cost(1000, 1000 * 5 * MS)
    core.set_offload_up(True)
    core.tick(0)
    core.receive([txn_frame(1, list(range(1, 6))), txn_frame(2, list(range(6, 11)))], 0)
    now = 0
    out: list[list[p.Frame]] = []
    while core.busy:
        out.append([p.decode_frame(raw) for raw in core.step(now)])
        now += 20 * MS
    types = [[f.type for f in s] for s in out]
    assert types == [[p.TYPE_VERDICT], [p.TYPE_VERDICT], [p.TYPE_HELLO, p.TYPE_VERDICT]], \
        "the HELLO due at 30 ms leaves before the third chunk"
    hello = out[2][0]
    assert hello.records["read_serial"][0] == 1, "frame 1 (records 1..5) was answered in full by chunk two"
    assert hello.records["records_answered"][0] == 8


def test_verdict_frames_hold_at_most_max_records():
    core = make_core()
    seqs = list(range(1, 3 * p.MAX_RECORDS // 2 + 1))
    out = serve(core, [txn_frame(1, seqs[: p.MAX_RECORDS]), txn_frame(2, seqs[p.MAX_RECORDS:])])
    assert [len(f.records) for f in out] == [p.MAX_RECORDS, len(seqs) - p.MAX_RECORDS]
    assert verdicts(out) == expected(seqs)


def test_bad_configuration_and_incarnation_raise():
    with pytest.raises(ValueError, match="incarnation"):
        BridgeCore(VectorScorer(), 0)
    with pytest.raises(ValueError, match="heartbeat"):
        CoreConfig(heartbeat_ns=0)
    with pytest.raises(ValueError, match="fail-safe"):
        CoreConfig(unscored_decision=3)
    with pytest.raises(ValueError, match="chunk"):
        CoreConfig(score_chunk_ns=-1)
    with pytest.raises(ValueError, match="mutant"):
        CoreConfig(mutant="no_such_mutant")


def test_the_wrong_seq_on_resend_mutant_lies_once_per_resent_record_then_answers_honestly():
    # The built-in mutant that proves the real-process rejection check can
    # fail (docs/FAULTS.md): fresh records are answered honestly; a resent
    # one (at or below the highest seq answered before) first gets seq + 1
    # with its own txn_id, and is answered honestly when the core resends it again.
    core = BridgeCore(VectorScorer(), INCARNATION, CoreConfig(heartbeat_ns=HEARTBEAT_NS, mutant="wrong_seq_on_resend"))
    core.note_cost(1024, 1024 * 100)
    assert verdicts(serve(core, [txn_frame(1, [5, 6, 7])])) == expected([5, 6, 7])
    lied = verdicts(serve(core, [txn_frame(2, [1, 2]), txn_frame(3, [8])]))
    assert lied == [(2, 1000 + 7 * 1), (3, 1000 + 7 * 2), (8, 1000 + 7 * 8)], "resends lie, the fresh 8 does not"
    assert verdicts(serve(core, [txn_frame(4, [1, 2])])) == expected([1, 2]), "resent again: honest this time"
    assert serve(core, [txn_frame(5, [1, 2, 8])]) == [], "answered honestly: now a duplicate"
    # A new incarnation gets new frames, then the resend, in one wake-up: those are resends too.
    fresh = BridgeCore(VectorScorer(), INCARNATION + 1,
                       CoreConfig(heartbeat_ns=HEARTBEAT_NS, mutant="wrong_seq_on_resend"))
    fresh.note_cost(1024, 1024 * 100)
    assert verdicts(serve(fresh, [txn_frame(1, [5, 6]), txn_frame(2, [3])])) == [*expected([5, 6]), (4, 1000 + 7 * 3)]
    honest = make_core()
    serve(honest, [txn_frame(1, [5, 6, 7])])
    assert verdicts(serve(honest, [txn_frame(2, [1, 2])])) == expected([1, 2]), "the honest bridge, for contrast"


def test_the_core_performs_no_io_and_reads_no_clock():
    tree = ast.parse(inspect.getsource(core_module))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    forbidden = {"time", "zmq", "socket", "select", "os", "threading", "signal", "sys", "logging", "secrets"}
    assert not imported & forbidden, f"core.py imports {imported & forbidden}"
