"""Proves the Python decoder agrees with the shared protocol vectors (fixtures/protocol/*.json).

The vectors are packed independently of aegis_bridge.protocol (struct and
xxhash, from docs/PROTOCOL.md); the C++ core and the simulator run the same
files. For each valid vector the decoder must return every header field and
record field, and the encoder must reproduce the exact bytes from those
fields. For each rejected vector the decoder must name exactly the expected
reason. The VERDICT frames of verdict_checks.json decode, and each says
whether the core applies its one record or rejects it (bad_score,
bad_decision, bad_reserved): aegis_bridge.protocol.verdict_record_problems,
which the bridge's tests and fake core use as the core's rule, must agree.
A last test proves the committed files are what the generator writes now,
so nobody edits a vector by hand.
"""

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aegis_bridge import protocol as p

VECTOR_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "protocol"
TYPES = {"txn": p.TYPE_TXN, "hello": p.TYPE_HELLO, "verdict": p.TYPE_VERDICT}


def load_vectors():
    out = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["protocol_version"] == p.VERSION
        out += [pytest.param(v, id=f"{path.stem}:{v['name']}") for v in doc["vectors"]]
    return out


VECTORS = load_vectors()


def test_there_are_vectors_for_every_reason_and_type():
    expects = [v.values[0]["expect"] for v in VECTORS]
    assert {e["reason"] for e in expects if not e["valid"]} == set(p.REJECT_REASONS)
    assert {e["type"] for e in expects if e["valid"]} == set(TYPES)
    assert {e.get("record_reject") for e in expects if e["valid"]} == {None, *p.VERDICT_RECORD_REJECTS}


def records_from_json(type_, rows):
    if type_ == p.TYPE_TXN:
        arr = np.zeros(len(rows), dtype=p.TXN_DTYPE)
        for name in p.TXN_DTYPE.names:
            if name == "currency":
                arr[name] = [r[name].encode("latin-1") for r in rows]
            else:
                arr[name] = [r[name] for r in rows]
        return arr
    if type_ == p.TYPE_HELLO:
        arr = np.zeros(len(rows), dtype=p.HELLO_DTYPE)
        for name in p.HELLO_DTYPE.names:
            arr[name] = [r[name] for r in rows]
        return arr
    arr = np.zeros(len(rows), dtype=p.VERDICT_DTYPE)
    for name in ("seq", "txn_id", "decision", "flags", "reserved"):
        arr[name] = [r[name] for r in rows]
    # The exact bits: NaN payloads survive, and JSON has no NaN (score is null there).
    arr["score"].view("<u4")[:] = [int(r["score_bits"], 16) for r in rows]
    return arr


@pytest.mark.parametrize("vector", VECTORS)
def test_vector(vector):
    raw = bytes.fromhex(vector["hex"])
    expect = vector["expect"]
    if not expect["valid"]:
        with pytest.raises(p.FrameError) as e:
            p.decode_frame(raw)
        assert e.value.reason == expect["reason"], vector["note"]
        return
    f = p.decode_frame(raw)
    type_ = TYPES[expect["type"]]
    at_16 = expect["serial"] if type_ == p.TYPE_TXN else expect["incarnation"]
    assert (f.type, f.count, f.epoch, f.incarnation, f.checksum) == \
        (type_, expect["count"], expect["epoch"], at_16, expect["checksum"])
    if type_ == p.TYPE_TXN:
        assert f.serial == expect["serial"]
    want = records_from_json(type_, expect["records"])
    assert f.records.tobytes() == want.tobytes()
    if type_ == p.TYPE_VERDICT:
        bits = [f"0x{b:08x}" for b in f.records["score"].view("<u4")]
        assert bits == [r["score_bits"] for r in expect["records"]]
        problems = [None if c < 0 else p.VERDICT_RECORD_REJECTS[c] for c in p.verdict_record_problems(f.records)]
        if "record_reject" in expect:
            assert problems == [expect["record_reject"]], vector["note"]
        else:
            assert problems == [None] * f.count, "valid.json's verdicts are all applied"
    assert p.encode_frame(type_, f.epoch, f.incarnation, want) == raw, "the encoder reproduces the vector's bytes"


def test_committed_vectors_are_what_the_generator_writes():
    r = subprocess.run([sys.executable, str(VECTOR_DIR / "generate_vectors.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
