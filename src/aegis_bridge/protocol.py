"""Aegis offload protocol v2: pure encode/decode functions (docs/PROTOCOL.md).

Usage:
    frame = decode_frame(raw)              # raises FrameError(reason) if bad
    if frame.type == TYPE_TXN:
        txns = frame.records               # numpy array of TXN_DTYPE, read-only
        frame.serial                       # the core's TXN frame serial (1, 2, ... per epoch)
    raw = encode_verdicts(frame.epoch, incarnation, verdicts)
    raw = encode_hello(last_epoch, incarnation, make_hello_status(read_serial, heartbeat_ms, ...))
    problems = verdict_record_problems(verdicts)   # what the core would reject, per record

Nothing here does I/O or keeps state, so the same functions serve the bridge,
the tests, the protocol test-vector generator and the benchmarks. Records are
never looped over in Python: a frame's records are one `np.frombuffer` view.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from typing import Any, Union

import numpy as np
import numpy.typing as npt
import xxhash

MAGIC = 0x53474541  # the bytes "AEGS" read as a little-endian u32
VERSION = 2

TYPE_TXN = 1
TYPE_HELLO = 2
TYPE_VERDICT = 3

HEADER_BYTES = 32
MAX_RECORDS = 1024
TXN_RECORD_BYTES = 64
HELLO_RECORD_BYTES = 32
VERDICT_RECORD_BYTES = 24
MAX_FRAME_BYTES = HEADER_BYTES + MAX_RECORDS * TXN_RECORD_BYTES  # 65568

DECISION_APPROVE = 0
DECISION_REVIEW = 1
DECISION_DECLINE = 2
DECISIONS = {"approve": DECISION_APPROVE, "review": DECISION_REVIEW, "decline": DECISION_DECLINE}

# VERDICT record flags. Bit 0: the model failed on this record; its decision
# is the bridge's fail-safe and its score 0. Every other bit is zero.
FLAG_UNSCORED = 0x01

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

# Reasons the core rejects one VERDICT record of a valid frame (counted per
# record, never applied), in the order it checks them.
VERDICT_RECORD_REJECTS = ("bad_score", "bad_decision", "bad_reserved")

# The header without its checksum is hashed, so it is packed apart from it.
# The u64 at offset 16 is the bridge's incarnation in HELLO and VERDICT
# frames and the core's TXN frame serial in TXN frames.
_HEAD = struct.Struct("<IBBHQQ")  # magic, version, type, count, epoch, incarnation or serial
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

# HELLO's one status record: what this bridge incarnation has done so far.
HELLO_DTYPE = np.dtype(
    [
        ("read_serial", "<u8"),         # highest TXN serial of the echoed epoch read and fully answered
        ("heartbeat_ms", "<u4"),        # the bridge's heartbeat interval, >= 1
        ("reserved", "<u4"),            # zero
        ("records_answered", "<u8"),    # verdict records queued by this incarnation, all epochs
        ("duplicates_skipped", "<u8"),  # TXN records skipped as already answered by this incarnation
    ]
)

VERDICT_DTYPE = np.dtype(
    [
        ("seq", "<u8"),
        ("txn_id", "<u8"),
        ("score", "<f4"),
        ("decision", "u1"),
        ("flags", "u1"),
        ("reserved", "<u2"),
    ]
)

# Layout facts: a mismatch here would silently misread every record.
assert TXN_DTYPE.fields is not None and VERDICT_DTYPE.fields is not None and HELLO_DTYPE.fields is not None
assert HEADER_DTYPE.itemsize == HEADER_BYTES, "header dtype must be 32 bytes"
assert TXN_DTYPE.itemsize == TXN_RECORD_BYTES, "TXN dtype must be 64 packed bytes"
assert TXN_DTYPE.fields["mcc"][1] == 52 and TXN_DTYPE.fields["offload_ns"][1] == 56
assert VERDICT_DTYPE.itemsize == VERDICT_RECORD_BYTES, "VERDICT dtype must be 24 bytes"
assert VERDICT_DTYPE.fields["decision"][1] == 20 and VERDICT_DTYPE.fields["flags"][1] == 21
assert VERDICT_DTYPE.fields["reserved"][1] == 22
assert HELLO_DTYPE.itemsize == HELLO_RECORD_BYTES, "HELLO status record must be 32 bytes"
assert HELLO_DTYPE.fields["records_answered"][1] == 16 and HELLO_DTYPE.fields["duplicates_skipped"][1] == 24

Records = npt.NDArray[np.void]  # records of one of the dtypes above
Buffer = Union[bytes, bytearray, memoryview]

RECORD_BYTES = {TYPE_TXN: TXN_RECORD_BYTES, TYPE_HELLO: HELLO_RECORD_BYTES, TYPE_VERDICT: VERDICT_RECORD_BYTES}
RECORD_DTYPE = {TYPE_TXN: TXN_DTYPE, TYPE_HELLO: HELLO_DTYPE, TYPE_VERDICT: VERDICT_DTYPE}
TYPE_NAMES = {TYPE_TXN: "txn", TYPE_HELLO: "hello", TYPE_VERDICT: "verdict"}


class FrameError(ValueError):
    """A frame failed validation; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        assert reason in REJECT_REASONS, f"unknown rejection reason {reason!r}"
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Frame:
    """A decoded, validated frame. `records` views the input buffer (read-only).

    `incarnation` is the header's u64 at offset 16 whatever the type; in a
    TXN frame that field is the core's frame serial, also named `serial`.
    """

    type: int
    count: int
    epoch: int
    incarnation: int
    checksum: int
    records: Records  # HELLO: its one status record

    @property
    def serial(self) -> int:
        if self.type != TYPE_TXN:
            raise ValueError(f"only TXN frames carry a serial, this is a {TYPE_NAMES[self.type]} frame")
        return self.incarnation


def checksum(head24: Buffer, body: Buffer) -> int:
    """XXH64 (seed 0) of the 24 header bytes before the checksum, then the records."""
    h = xxhash.xxh64(head24)
    h.update(body)
    return h.intdigest()


def decode_frame(buf: Buffer) -> Frame:
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
    if type_ == TYPE_HELLO and count != 1:
        raise FrameError("bad_length", f"HELLO with count {count} (exactly 1 status record)")
    if n != HEADER_BYTES + count * record_bytes:
        raise FrameError("bad_length", f"{n} bytes for {count} records of {record_bytes}")
    (stored,) = _CHECKSUM.unpack_from(view, _CHECKSUM_OFFSET)
    computed = checksum(view[:_CHECKSUM_OFFSET], view[HEADER_BYTES:])
    if stored != computed:
        raise FrameError("bad_checksum", f"stored 0x{stored:016x} computed 0x{computed:016x}")
    records = np.frombuffer(view, dtype=RECORD_DTYPE[type_], count=count, offset=HEADER_BYTES)
    assert len(records) == count
    return Frame(type_, count, epoch, incarnation, stored, records)


def encode_frame(type_: int, epoch: int, incarnation: int, records: Records) -> bytes:
    """Builds one frame. `records` must already have the type's dtype.

    `incarnation` is whatever goes at offset 16: the serial for a TXN frame.
    """
    if type_ not in RECORD_BYTES:
        raise ValueError(f"unknown frame type {type_}")
    if records is None or records.dtype != RECORD_DTYPE[type_]:
        raise TypeError(f"{TYPE_NAMES[type_]} records need dtype {RECORD_DTYPE[type_]}")
    count = len(records)
    if type_ == TYPE_HELLO and count != 1:
        raise ValueError(f"a HELLO carries exactly one status record, got {count}")
    if count > MAX_RECORDS:
        raise ValueError(f"at most {MAX_RECORDS} records per frame, got {count}")
    body = np.ascontiguousarray(records).tobytes()
    head = _HEAD.pack(MAGIC, VERSION, type_, count, epoch, incarnation)
    raw = b"".join((head, _CHECKSUM.pack(checksum(head, body)), body))
    assert len(raw) == HEADER_BYTES + count * RECORD_BYTES[type_]
    return raw


def encode_txns(epoch: int, serial: int, txns: Records) -> bytes:
    """A TXN frame as the core sends it: `serial` is its frame serial in `epoch`. For tests and tools."""
    return encode_frame(TYPE_TXN, epoch, serial, txns)


DEFAULT_HEARTBEAT_MS = 200


def make_hello_status(read_serial: int = 0, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS, records_answered: int = 0,
                      duplicates_skipped: int = 0) -> Records:
    """HELLO's one status record (reserved zero)."""
    if heartbeat_ms < 1:
        raise ValueError(f"a heartbeat interval is at least 1 ms, got {heartbeat_ms}")
    status = np.zeros(1, dtype=HELLO_DTYPE)
    status["read_serial"] = read_serial
    status["heartbeat_ms"] = heartbeat_ms
    status["records_answered"] = records_answered
    status["duplicates_skipped"] = duplicates_skipped
    return status


def encode_hello(last_epoch: int, incarnation: int, status: Records | None = None) -> bytes:
    """A HELLO: the bridge's incarnation, the last core epoch it saw (0 if none) and its status record.

    Without `status`, a status of a bridge that has read nothing (tests).
    """
    if incarnation == 0:
        raise ValueError("an incarnation is never 0")
    if status is None:
        status = make_hello_status()
    return encode_frame(TYPE_HELLO, last_epoch, incarnation, status)


def encode_verdicts(epoch: int, incarnation: int, verdicts: Records) -> bytes:
    """A VERDICT frame answering a TXN frame of `epoch`."""
    if incarnation == 0:
        raise ValueError("an incarnation is never 0")
    return encode_frame(TYPE_VERDICT, epoch, incarnation, verdicts)


def make_verdicts(txns: Records, scores: npt.NDArray[Any], decisions: npt.NDArray[Any], out: Records | None = None,
                  flags: npt.NDArray[np.uint8] | None = None) -> Records:
    """Verdict records for `txns` in the same order, built column-wise.

    `out`, if given, is a VERDICT_DTYPE array of exactly len(txns) records whose
    `reserved` bytes are zero, and whose `flags` are zero unless `flags` is
    given (a slice of a zeroed buffer reused between batches: only the other
    fields are written here, so the hot path pays no pass for them).
    """
    if not len(txns) == len(scores) == len(decisions):
        raise ValueError(f"one score and decision per TXN: {len(txns)} records, {len(scores)} scores, "
                         f"{len(decisions)} decisions")
    if out is None:
        out = np.zeros(len(txns), dtype=VERDICT_DTYPE)
    if out.dtype != VERDICT_DTYPE or len(out) != len(txns):
        raise ValueError(f"out holds one VERDICT_DTYPE record per TXN: {len(out)} of {out.dtype} for {len(txns)}")
    out["seq"] = txns["seq"]
    out["txn_id"] = txns["txn_id"]
    out["score"] = scores
    out["decision"] = decisions
    if flags is not None:
        if len(flags) != len(txns):
            raise ValueError(f"one flags byte per TXN: {len(flags)} for {len(txns)}")
        out["flags"] = flags
    return out


def verdict_record_problems(verdicts: Records) -> npt.NDArray[np.int8]:
    """Per record, the reason the core rejects it (an index into VERDICT_RECORD_REJECTS, 0-based) or -1.

    The core's rule (docs/PROTOCOL.md), checked in this order: `bad_score`
    (not finite, outside [0, 1], or unscored with a score other than 0),
    `bad_decision` (above 2), `bad_reserved` (a flag other than bit 0, or
    non-zero reserved bytes). The bridge uses the same test on model output.
    """
    if verdicts.dtype != VERDICT_DTYPE:
        raise TypeError(f"VERDICT records need dtype VERDICT_DTYPE, got {verdicts.dtype}")
    score = verdicts["score"]
    flags = verdicts["flags"]
    with np.errstate(invalid="ignore"):
        in_range = (score >= 0) & (score <= 1)  # False for NaN
    bad_score = ~in_range | (((flags & FLAG_UNSCORED) != 0) & (score != 0))
    bad_decision = verdicts["decision"] > DECISION_DECLINE
    bad_reserved = ((flags & ~np.uint8(FLAG_UNSCORED)) != 0) | (verdicts["reserved"] != 0)
    out = np.full(len(verdicts), -1, dtype=np.int8)
    out[bad_reserved] = 2
    out[bad_decision] = 1
    out[bad_score] = 0
    return out
