"""The simulator's side of `aegis-sim --bridge python`: the real BridgeCore, driven by sim/python_bridge.cpp.

The C++ shell (sim/python_bridge.cpp) plays bridge.py's part: sockets, the
poll loop, the clock and the model's cost all come from the simulated world.
This module only builds what the shell drives:

    core = new_core(incarnation, heartbeat_ns, score_chunk_ns, poison_ppm)
    core.set_offload_up(True)
    core.receive([raw, ...], now_ns)
    while core.busy:
        hellos, verdicts, records = step(core, now_ns)

Scoring is the shipped model (the bridge's default weights), wrapped so that
a transaction the world poisons makes the model raise, exactly where the C++
model bridge fails (sim/bridge_rules.cpp: poisoned()). Its cost is not
measured here: the shell sleeps the world's service time for the chunk and
reports it through note_cost.

`expected` remembers the score and decision the model gave each transaction,
so the runner can check that the verdict the core applied is the model's
answer for that very transaction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xxhash

from aegis_bridge import protocol as p
from aegis_bridge.core import BridgeCore, CoreConfig
from aegis_bridge.loading import load_scorer
from aegis_bridge.scoring import Decisions, ModelError, Scorer, Scores, TxnRecords

POISON_SEED = 0x9015  # bridge_rules.cpp: poisoned()
_TYPE_OFFSET = p.HEADER_DTYPE.fields["type"][1]

_model: Scorer | None = None
expected: dict[int, tuple[float, int]] = {}


def poisoned(txn_id: int, poison_ppm: int) -> bool:
    """The world's poisoned transactions, as bridge_rules::poisoned: XXH64 of the id's little-endian bytes."""
    if poison_ppm == 0:
        return False
    h = xxhash.xxh64_intdigest(int(txn_id).to_bytes(8, "little"), seed=POISON_SEED)
    return h % 1_000_000 < poison_ppm


class SimScorer:
    """The shipped model; raises ModelError on a call holding a poisoned transaction."""

    def __init__(self, model: Scorer, poison_ppm: int):
        self._model = model
        self._poison_ppm = poison_ppm

    @property
    def info(self) -> Any:
        return self._model.info

    def score(self, txns: TxnRecords, /) -> tuple[Scores, Decisions]:
        ids = txns["txn_id"]
        if self._poison_ppm and any(poisoned(int(t), self._poison_ppm) for t in ids):
            raise ModelError("the world poisoned a transaction of this call")
        scores, decisions = self._model.score(txns)
        for t, s, d in zip(ids.tolist(), scores.tolist(), decisions.tolist()):
            expected[t] = (s, d)
        return scores, decisions


def reset() -> None:
    """A new world: forget the expected verdicts of the last one."""
    expected.clear()


def new_core(incarnation: int, heartbeat_ns: int, score_chunk_ns: int, poison_ppm: int,
             mutant: str = "") -> BridgeCore:
    """One incarnation's BridgeCore, scoring with the shipped model; `mutant` one of core.MUTANTS or ""."""
    global _model
    if _model is None:
        _model = load_scorer(None).scorer
    # As bridge.py: a model that vouches for its output is not checked record by record.
    config = CoreConfig(heartbeat_ns=heartbeat_ns, score_chunk_ns=score_chunk_ns,
                        check_output=not getattr(_model, "output_in_contract", False), mutant=mutant)
    return BridgeCore(SimScorer(_model, poison_ppm), incarnation, config)


def step(core: BridgeCore, now_ns: int) -> tuple[list[bytes], list[bytes], int]:
    """core.step(now_ns), split into the HELLOs due before the chunk and its VERDICT frames; and its records."""
    hellos: list[bytes] = []
    verdicts: list[bytes] = []
    for raw in core.step(now_ns):
        (hellos if raw[_TYPE_OFFSET] == p.TYPE_HELLO else verdicts).append(raw)
    assert core.last_chunk is not None
    return hellos, verdicts, core.last_chunk.records


def expected_verdict(txn_id: int) -> tuple[float, int] | None:
    """The model's (score, decision) for a transaction it scored, or None."""
    return expected.get(txn_id)


def counters(core: BridgeCore) -> tuple[int, int, int]:
    """(bad frames, duplicates skipped, model errors) of one incarnation so far."""
    st = core.stats
    return sum(st.bad_frames.values()), st.duplicates_skipped, st.model_errors
