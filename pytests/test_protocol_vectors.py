"""Proves the Python decoder agrees with the shared protocol vectors (fixtures/protocol/*.json).

The vectors are packed independently of aegis_bridge.protocol (struct and
xxhash, from docs/PROTOCOL.md); the C++ core and the simulator run the same
files. For each valid vector the decoder must return every header field and
record field, and the encoder must reproduce the exact bytes from those
fields. For each rejected vector the decoder must name exactly the expected
reason. A last test proves the committed files are what the generator writes
now, so nobody edits a vector by hand.
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


def records_from_json(type_, rows):
    if type_ == p.TYPE_TXN:
        arr = np.zeros(len(rows), dtype=p.TXN_DTYPE)
        for name in p.TXN_DTYPE.names:
            if name == "currency":
                arr[name] = [r[name].encode("latin-1") for r in rows]
            else:
                arr[name] = [r[name] for r in rows]
        return arr
    arr = np.zeros(len(rows), dtype=p.VERDICT_DTYPE)
    for name in ("seq", "txn_id", "decision"):
        arr[name] = [r[name] for r in rows]
    arr["score"] = np.array([struct.unpack("<f", struct.pack("<I", int(r["score_bits"], 16)))[0] for r in rows],
                            dtype=np.float32)
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
    assert (f.type, f.count, f.epoch, f.incarnation, f.checksum) == \
        (type_, expect["count"], expect["epoch"], expect["incarnation"], expect["checksum"])
    if type_ == p.TYPE_HELLO:
        assert f.records is None and expect["records"] == []
        assert p.encode_frame(type_, f.epoch, f.incarnation) == raw
        return
    want = records_from_json(type_, expect["records"])
    assert f.records.tobytes() == want.tobytes()
    if type_ == p.TYPE_VERDICT:
        bits = [f"0x{b:08x}" for b in f.records["score"].view("<u4")]
        assert bits == [r["score_bits"] for r in expect["records"]]
    assert p.encode_frame(type_, f.epoch, f.incarnation, want) == raw, "the encoder reproduces the vector's bytes"


def test_committed_vectors_are_what_the_generator_writes():
    r = subprocess.run([sys.executable, str(VECTOR_DIR / "generate_vectors.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
