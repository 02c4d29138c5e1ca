"""Proves the bridge's protocol codec (aegis_bridge.protocol) against docs/PROTOCOL.md.

- Round trips: every record type encodes and decodes field for field, at 0,
  1 and max_records records (HELLO: its one status record), and the header
  fields come back as written, a TXN frame's serial included.
- The core's per-record VERDICT checks (bad_score, bad_decision,
  bad_reserved, in that order) as verdict_record_problems states them.
- Malformed frames: each case the document lists (truncated, oversized, bad
  magic, bad version, unknown type, bad length, bad checksum) is rejected
  with exactly its reason, and the documented check order decides between
  two faults in one frame.
- Hypothesis: arbitrary bytes, and single-byte corruptions of valid frames,
  never raise anything but FrameError with a documented reason; any record
  array round-trips.
The dtypes are also checked against the byte offsets in the document, since
a wrong offset would decode every frame "successfully" into garbage.
"""

import struct

import numpy as np
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_bridge import protocol as p
from aegis_bridge.synthetic import make_txns


def txns(n, seed=1):
    return make_txns(np.random.default_rng(seed), n)


def verdicts(n):
    v = np.zeros(n, dtype=p.VERDICT_DTYPE)
    v["seq"] = np.arange(1, n + 1)
    v["txn_id"] = np.arange(100, 100 + n)
    v["score"] = np.linspace(0, 1, n, dtype=np.float32)
    v["decision"] = np.arange(n) % 3
    return v


def reason_of(raw):
    with pytest.raises(p.FrameError) as e:
        p.decode_frame(raw)
    return e.value.reason


def patched(raw, offset, value):
    b = bytearray(raw)
    b[offset] = value
    return bytes(b)


def test_dtype_offsets_match_the_document():
    txn_offsets = {"seq": 0, "txn_id": 8, "amount_minor": 16, "timestamp_ns": 24, "merchant_id": 32,
                   "card_fp": 40, "currency": 48, "channel": 51, "mcc": 52, "offload_ns": 56}
    assert {k: p.TXN_DTYPE.fields[k][1] for k in txn_offsets} == txn_offsets
    assert {k: p.VERDICT_DTYPE.fields[k][1] for k in p.VERDICT_DTYPE.names} == \
        {"seq": 0, "txn_id": 8, "score": 16, "decision": 20, "flags": 21, "reserved": 22}
    assert {k: p.HELLO_DTYPE.fields[k][1] for k in p.HELLO_DTYPE.names} == \
        {"read_serial": 0, "heartbeat_ms": 8, "reserved": 12, "records_answered": 16, "duplicates_skipped": 24}
    assert (p.VERDICT_DTYPE.itemsize, p.HELLO_DTYPE.itemsize, p.TXN_DTYPE.itemsize) == (24, 32, 64)
    assert p.VERSION == 2
    assert p.MAX_FRAME_BYTES == 65568
    assert struct.pack("<I", p.MAGIC) == b"AEGS"


@pytest.mark.parametrize("n", [0, 1, 7, p.MAX_RECORDS])
def test_txn_round_trip(n):
    sent = txns(n)
    raw = p.encode_txns(0xDEADBEEF, 0x0102030405060708, sent)
    assert len(raw) == p.HEADER_BYTES + 64 * n
    assert raw[16:24] == bytes.fromhex("0807060504030201"), "the serial at offset 16, little-endian"
    f = p.decode_frame(raw)
    assert (f.type, f.count, f.epoch, f.serial) == (p.TYPE_TXN, n, 0xDEADBEEF, 0x0102030405060708)
    assert f.records.dtype == p.TXN_DTYPE
    assert np.array_equal(f.records, sent)


@pytest.mark.parametrize("n", [0, 1, p.MAX_RECORDS])
def test_verdict_round_trip(n):
    sent = verdicts(n)
    f = p.decode_frame(p.encode_verdicts(2**64 - 1, 0x1234, sent))
    assert (f.type, f.count, f.epoch, f.incarnation) == (p.TYPE_VERDICT, n, 2**64 - 1, 0x1234)
    assert np.array_equal(f.records, sent)


def test_hello_round_trip_and_size():
    status = p.make_hello_status(read_serial=2**64 - 1, heartbeat_ms=250, records_answered=12345,
                                 duplicates_skipped=67)
    raw = p.encode_hello(7, 42, status)
    assert len(raw) == p.HEADER_BYTES + 32
    f = p.decode_frame(raw)
    assert (f.type, f.count, f.epoch, f.incarnation) == (p.TYPE_HELLO, 1, 7, 42)
    assert f.records.tobytes() == status.tobytes()
    r = f.records[0]
    assert (r["read_serial"], r["heartbeat_ms"], r["reserved"], r["records_answered"], r["duplicates_skipped"]) == \
        (2**64 - 1, 250, 0, 12345, 67)
    assert p.decode_frame(p.encode_hello(0, 1)).records["heartbeat_ms"][0] == p.DEFAULT_HEARTBEAT_MS


def test_only_txn_frames_have_a_serial():
    # Real checks, not asserts: they hold under `python -O` too.
    with pytest.raises(ValueError, match="only TXN frames carry a serial"):
        p.decode_frame(p.encode_hello(0, 42)).serial
    with pytest.raises(ValueError, match="exactly one status record"):
        p.encode_frame(p.TYPE_HELLO, 0, 42, np.zeros(2, p.HELLO_DTYPE))


@pytest.mark.parametrize("score,decision,flags,reserved,reason", [
    (0.25, 2, 0, 0, None), (0.0, 1, 1, 0, None), (1.0, 0, 0, 0, None), (-0.0, 1, 1, 0, None),
    (np.nan, 1, 0, 0, "bad_score"), (np.inf, 1, 0, 0, "bad_score"), (1.5, 1, 0, 0, "bad_score"),
    (-0.1, 1, 0, 0, "bad_score"), (0.3, 1, 1, 0, "bad_score"),
    (0.5, 3, 0, 0, "bad_decision"), (0.0, 3, 1, 0, "bad_decision"),
    (0.5, 1, 2, 0, "bad_reserved"), (0.0, 1, 3, 0, "bad_reserved"), (0.5, 1, 0, 1, "bad_reserved"),
    (np.nan, 3, 2, 1, "bad_score"), (0.5, 3, 0, 1, "bad_decision"),
])
def test_verdict_record_checks_follow_the_document_in_order(score, decision, flags, reserved, reason):
    v = np.zeros(1, p.VERDICT_DTYPE)
    v["score"], v["decision"], v["flags"], v["reserved"] = score, decision, flags, reserved
    (code,) = p.verdict_record_problems(v)
    assert (None if code < 0 else p.VERDICT_RECORD_REJECTS[code]) == reason


def test_checksum_covers_header_and_records_but_not_itself():
    raw = p.encode_txns(5, 1, txns(2))
    expected = xxhash.xxh64(raw[:24] + raw[32:]).intdigest()
    assert struct.unpack_from("<Q", raw, 24)[0] == expected == p.decode_frame(raw).checksum


def test_decoded_records_are_read_only_views():
    f = p.decode_frame(p.encode_txns(5, 1, txns(3)))
    with pytest.raises(ValueError):
        f.records["seq"][0] = 99


def test_make_verdicts_keeps_order_and_ids():
    t = txns(5)
    v = p.make_verdicts(t, np.full(5, 0.5, np.float32), np.ones(5, np.uint8))
    assert np.array_equal(v["seq"], t["seq"]) and np.array_equal(v["txn_id"], t["txn_id"])
    assert v.tobytes()[21:24] == b"\0\0\0", "flags and reserved bytes are zero"
    flags = np.array([0, 1, 0, 1, 0], np.uint8)
    v = p.make_verdicts(t, np.zeros(5, np.float32), np.ones(5, np.uint8), flags=flags)
    assert v["flags"].tolist() == flags.tolist() and (v["reserved"] == 0).all()


# -- every malformed case, by reason ----------------------------------------

GOOD = p.encode_txns(0x1122334455667788, 3, txns(2))


@pytest.mark.parametrize("raw", [b"", GOOD[:1], GOOD[:31]], ids=["empty", "1", "31"])
def test_truncated(raw):
    assert reason_of(raw) == "truncated"


def test_oversized():
    assert reason_of(b"\0" * (p.MAX_FRAME_BYTES + 1)) == "oversized"
    big = p.encode_txns(1, 1, txns(p.MAX_RECORDS))
    assert p.decode_frame(big).count == p.MAX_RECORDS, "exactly max_frame_bytes is fine"
    assert reason_of(big + b"\0") == "oversized"


def test_bad_magic():
    assert reason_of(patched(GOOD, 0, ord("X"))) == "bad_magic"
    assert reason_of(patched(GOOD, 3, 0)) == "bad_magic"


@pytest.mark.parametrize("version", [0, 1, 3, 255])
def test_bad_version(version):
    assert reason_of(patched(GOOD, 4, version)) == "bad_version"


@pytest.mark.parametrize("type_", [0, 4, 255])
def test_unknown_type(type_):
    assert reason_of(patched(GOOD, 5, type_)) == "bad_type"


def test_bad_length():
    assert reason_of(patched(GOOD, 6, 3)) == "bad_length", "count says 3, two records present"
    assert reason_of(patched(GOOD, 6, 1)) == "bad_length", "count says 1, two records present"
    assert reason_of(GOOD + b"\0") == "bad_length"
    assert reason_of(GOOD[:-1]) == "bad_length"
    assert reason_of(patched(GOOD, 5, p.TYPE_VERDICT)) == "bad_length", "128 bytes is not 2 verdicts"
    hello = p.encode_hello(1, 2)
    assert reason_of(patched(hello, 6, 0)) == "bad_length", "a HELLO carries exactly one status record"
    assert reason_of(patched(hello, 6, 2)) == "bad_length"
    assert reason_of(hello[:-1]) == "bad_length"
    body = p.make_hello_status().tobytes() * 2
    head = struct.pack("<IBBHQQ", p.MAGIC, p.VERSION, p.TYPE_HELLO, 2, 1, 2)
    two = head + struct.pack("<Q", xxhash.xxh64(head + body).intdigest()) + body
    assert reason_of(two) == "bad_length", "two status records, length consistent"


def test_count_above_max_records_is_bad_length_even_when_the_length_matches():
    v = verdicts(1)
    body = v.tobytes() * (p.MAX_RECORDS + 1)
    head = struct.pack("<IBBHQQ", p.MAGIC, p.VERSION, p.TYPE_VERDICT, p.MAX_RECORDS + 1, 1, 2)
    raw = head + struct.pack("<Q", xxhash.xxh64(head + body).intdigest()) + body
    assert len(raw) < p.MAX_FRAME_BYTES
    assert reason_of(raw) == "bad_length"


@pytest.mark.parametrize("offset", [8, 16, 24, 31, 32, 100, len(GOOD) - 1])
def test_bad_checksum_for_any_flipped_byte_outside_the_structural_fields(offset):
    assert reason_of(patched(GOOD, offset, GOOD[offset] ^ 0x01)) == "bad_checksum"


def test_check_order_names_the_first_failing_check():
    assert reason_of(b"XXXX" + GOOD[4:20]) == "truncated"
    assert reason_of(b"X" * (p.MAX_FRAME_BYTES + 1)) == "oversized"
    assert reason_of(patched(patched(GOOD, 0, 0), 4, 9)) == "bad_magic"
    assert reason_of(patched(patched(GOOD, 4, 9), 5, 9)) == "bad_version"
    assert reason_of(patched(GOOD, 5, 9)[:40]) == "bad_type"
    assert reason_of(patched(GOOD, 6, 3)[:-1] + b"\xff") == "bad_length"


def test_every_reason_is_documented_and_reachable():
    assert p.REJECT_REASONS == ("truncated", "oversized", "bad_magic", "bad_version", "bad_type",
                                "bad_length", "bad_checksum")
    with pytest.raises(AssertionError):
        p.FrameError("made_up")


# -- Hypothesis -------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_frame_error(raw):
    try:
        f = p.decode_frame(raw)
    except p.FrameError as e:
        assert e.reason in p.REJECT_REASONS
    else:
        # Random bytes decode only if they are a real frame, checksum included.
        assert p.encode_frame(f.type, f.epoch, f.incarnation, f.records) == raw


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255))
def test_any_single_byte_corruption_is_rejected(offset, xor):
    raw = patched(GOOD, offset, GOOD[offset] ^ xor)
    assert reason_of(raw) in p.REJECT_REASONS


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 8).flatmap(lambda k: st.binary(min_size=32 + 32 * k, max_size=32 + 32 * k)))
def test_header_shaped_garbage_with_a_valid_checksum_still_fails_structurally(raw):
    # Random bytes with a right magic, version, known type and checksum: only
    # the count/length rule is left to reject them, and it must be exact.
    b = bytearray(raw)
    b[0:5] = struct.pack("<IB", p.MAGIC, p.VERSION)
    b[5] = 1 + b[5] % 3
    b[24:32] = struct.pack("<Q", xxhash.xxh64(bytes(b[:24]) + bytes(b[32:])).intdigest())
    count = struct.unpack_from("<H", b, 6)[0]
    fits = count <= p.MAX_RECORDS and len(b) == 32 + count * p.RECORD_BYTES[b[5]] and not (b[5] == 2 and count != 1)
    try:
        f = p.decode_frame(bytes(b))
    except p.FrameError as e:
        assert e.reason == "bad_length" and not fits
    else:
        assert fits and f.count == count


txn_records = st.lists(
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1),
              st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
              st.binary(min_size=3, max_size=3), st.integers(0, 255), st.integers(0, 2**32 - 1),
              st.integers(-(2**63), 2**63 - 1)),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txn_records, st.integers(0, 2**64 - 1))
def test_any_txn_records_round_trip(rows, epoch):
    sent = np.array(rows, dtype=p.TXN_DTYPE) if rows else np.zeros(0, p.TXN_DTYPE)
    f = p.decode_frame(p.encode_txns(epoch, 1, sent))
    assert f.epoch == epoch and f.count == len(rows)
    assert f.records.tobytes() == sent.tobytes()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
                          st.floats(0, 1, width=32), st.integers(0, 2), st.integers(0, 1)), max_size=40),
       st.integers(0, 2**64 - 1), st.integers(1, 2**64 - 1))
def test_any_verdict_records_round_trip(rows, epoch, incarnation):
    sent = np.zeros(len(rows), dtype=p.VERDICT_DTYPE)
    if rows:
        cols = list(zip(*rows))
        for name, col in zip(("seq", "txn_id", "score", "decision", "flags"), cols):
            sent[name] = col
    f = p.decode_frame(p.encode_verdicts(epoch, incarnation, sent))
    assert (f.epoch, f.incarnation, f.count) == (epoch, incarnation, len(rows))
    assert f.records.tobytes() == sent.tobytes()
