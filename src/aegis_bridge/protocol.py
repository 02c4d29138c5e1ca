"""Aegis offload protocol v1: pure encode/decode functions (docs/PROTOCOL.md).

Usage:
    frame = decode_frame(raw)              # raises FrameError(reason) if bad
    if frame.type == TYPE_TXN:
        txns = frame.records               # numpy array of TXN_DTYPE, read-only
    raw = encode_verdicts(frame.epoch, incarnation, verdicts)
    raw = encode_hello(last_epoch, incarnation)

Nothing here does I/O or keeps state, so the same functions serve the bridge,
the tests, the protocol test-vector generator and the benchmarks. Records are
never looped over in Python: a frame's records are one `np.frombuffer` view.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import xxhash

MAGIC = 0x53474541  # the bytes "AEGS" read as a little-endian u32
VERSION = 1

TYPE_TXN = 1
TYPE_HELLO = 2
TYPE_VERDICT = 3

HEADER_BYTES = 32
MAX_RECORDS = 1024
TXN_RECORD_BYTES = 64
VERDICT_RECORD_BYTES = 24
MAX_FRAME_BYTES = HEADER_BYTES + MAX_RECORDS * TXN_RECORD_BYTES  # 65568

DECISION_APPROVE = 0
DECISION_REVIEW = 1
DECISION_DECLINE = 2

# The rejection reasons in the order the checks run (PROTOCOL.md pins the
# order so that every decoder names the same reason for the same bytes).
REJECT_REASONS = (
    "truncated",
    "oversized",
    "bad_magic",
    "bad_version",
    "bad_type",
    "bad_length",
    "bad_checksum",
)

# The header without its checksum is hashed, so it is packed apart from it.
_HEAD = struct.Struct("<IBBHQQ")  # magic, version, type, count, epoch, incarnation
_CHECKSUM = struct.Struct("<Q")
_CHECKSUM_OFFSET = 24
assert _HEAD.size == _CHECKSUM_OFFSET, "header fields before the checksum must be 24 bytes"
assert _HEAD.size + _CHECKSUM.size == HEADER_BYTES, "the header is 32 bytes"

HEADER_DTYPE = np.dtype(
    [
        ("magic", "<u4"),
        ("version", "u1"),
        ("type", "u1"),
        ("count", "<u2"),
        ("epoch", "<u8"),
        ("incarnation", "<u8"),
        ("checksum", "<u8"),
    ]
)

TXN_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("txn_id", "<u8"),
        ("amount_minor", "<i8"),
        ("timestamp_ns", "<i8"),
        ("merchant_id", "<u8"),
        ("card_fp", "<u8"),
        ("currency", "S3"),
        ("channel", "u1"),
        ("mcc", "<u4"),
        ("offload_ns", "<i8"),
    ]
)

VERDICT_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("txn_id", "<u8"),
        ("score", "<f4"),
        ("decision", "u1"),
        ("reserved", "V3"),
    ]
)

# Layout facts: a mismatch here would silently misread every record.
assert HEADER_DTYPE.itemsize == HEADER_BYTES, "header dtype must be 32 bytes"
assert TXN_DTYPE.itemsize == TXN_RECORD_BYTES, "TXN dtype must be 64 packed bytes"
assert TXN_DTYPE.fields["mcc"][1] == 52 and TXN_DTYPE.fields["offload_ns"][1] == 56
assert VERDICT_DTYPE.itemsize == VERDICT_RECORD_BYTES, "VERDICT dtype must be 24 bytes"
assert VERDICT_DTYPE.fields["decision"][1] == 20

RECORD_BYTES = {TYPE_TXN: TXN_RECORD_BYTES, TYPE_HELLO: 0, TYPE_VERDICT: VERDICT_RECORD_BYTES}
RECORD_DTYPE = {TYPE_TXN: TXN_DTYPE, TYPE_VERDICT: VERDICT_DTYPE}
TYPE_NAMES = {TYPE_TXN: "txn", TYPE_HELLO: "hello", TYPE_VERDICT: "verdict"}


class FrameError(ValueError):
    """A frame failed validation; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REJECT_REASONS, f"unknown rejection reason {reason!r}"
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Frame:
    """A decoded, validated frame. `records` views the input buffer (read-only)."""

    type: int
    count: int
    epoch: int
    incarnation: int
    checksum: int
    records: np.ndarray | None  # None for HELLO


def checksum(head24, body) -> int:
    """XXH64 (seed 0) of the 24 header bytes before the checksum, then the records."""
    h = xxhash.xxh64(head24)
    h.update(body)
    return h.intdigest()


def decode_frame(buf) -> Frame:
    """Validates one whole frame and returns it; raises FrameError otherwise.

    The checks run in the documented order. Only FrameError escapes, whatever
    the input bytes (the Hypothesis test in pytests/ holds this to account).
    """
    view = memoryview(buf).cast("B")
    n = len(view)
    if n < HEADER_BYTES:
        raise FrameError("truncated", f"{n} bytes < {HEADER_BYTES}")
    if n > MAX_FRAME_BYTES:
        raise FrameError("oversized", f"{n} bytes > {MAX_FRAME_BYTES}")
    magic, version, type_, count, epoch, incarnation = _HEAD.unpack_from(view, 0)
    if magic != MAGIC:
        raise FrameError("bad_magic", f"0x{magic:08x}")
    if version != VERSION:
        raise FrameError("bad_version", str(version))
    record_bytes = RECORD_BYTES.get(type_)
    if record_bytes is None:
        raise FrameError("bad_type", str(type_))
    if count > MAX_RECORDS:
        raise FrameError("bad_length", f"count {count} > {MAX_RECORDS}")
    if type_ == TYPE_HELLO and count != 0:
        raise FrameError("bad_length", f"HELLO with count {count}")
    if n != HEADER_BYTES + count * record_bytes:
        raise FrameError("bad_length", f"{n} bytes for {count} records of {record_bytes}")
    (stored,) = _CHECKSUM.unpack_from(view, _CHECKSUM_OFFSET)
    computed = checksum(view[:_CHECKSUM_OFFSET], view[HEADER_BYTES:])
    if stored != computed:
        raise FrameError("bad_checksum", f"stored 0x{stored:016x} computed 0x{computed:016x}")
    records = None
    if type_ != TYPE_HELLO:
        records = np.frombuffer(view, dtype=RECORD_DTYPE[type_], count=count, offset=HEADER_BYTES)
        assert len(records) == count
    return Frame(type_, count, epoch, incarnation, stored, records)


def encode_frame(type_: int, epoch: int, incarnation: int, records: np.ndarray | None = None) -> bytes:
    """Builds one frame. `records` must already have the type's dtype."""
    assert type_ in RECORD_BYTES, f"unknown frame type {type_}"
    if type_ == TYPE_HELLO:
        assert records is None or len(records) == 0, "HELLO carries no records"
        body = b""
        count = 0
    else:
        assert records is not None and records.dtype == RECORD_DTYPE[type_], "records need the type's dtype"
        count = len(records)
        body = np.ascontiguousarray(records).tobytes()
    assert count <= MAX_RECORDS, f"at most {MAX_RECORDS} records per frame"
    head = _HEAD.pack(MAGIC, VERSION, type_, count, epoch, incarnation)
    raw = b"".join((head, _CHECKSUM.pack(checksum(head, body)), body))
    assert len(raw) == HEADER_BYTES + count * RECORD_BYTES[type_]
    return raw


def encode_txns(epoch: int, txns: np.ndarray) -> bytes:
    """A TXN frame as the core sends it (incarnation 0). Used by tests and tools."""
    return encode_frame(TYPE_TXN, epoch, 0, txns)


def encode_hello(last_epoch: int, incarnation: int) -> bytes:
    """A HELLO: the bridge's incarnation and the last core epoch it saw (0 if none)."""
    assert incarnation != 0, "an incarnation is never 0"
    return encode_frame(TYPE_HELLO, last_epoch, incarnation)


def encode_verdicts(epoch: int, incarnation: int, verdicts: np.ndarray) -> bytes:
    """A VERDICT frame answering a TXN frame of `epoch`."""
    assert incarnation != 0, "an incarnation is never 0"
    return encode_frame(TYPE_VERDICT, epoch, incarnation, verdicts)


def make_verdicts(txns: np.ndarray, scores: np.ndarray, decisions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Verdict records for `txns` in the same order, built column-wise.

    `out`, if given, is a VERDICT_DTYPE array of exactly len(txns) records whose
    `reserved` bytes are zero (a slice of a zeroed buffer reused between
    batches: only the other fields are written here).
    """
    assert len(txns) == len(scores) == len(decisions), "one score and decision per TXN"
    if out is None:
        out = np.zeros(len(txns), dtype=VERDICT_DTYPE)
    assert out.dtype == VERDICT_DTYPE and len(out) == len(txns), "out holds one verdict per TXN"
    out["seq"] = txns["seq"]
    out["txn_id"] = txns["txn_id"]
    out["score"] = scores
    out["decision"] = decisions
    return out
