"""BridgeCore's side of the differential property (sim/bridge_vectors_test.cpp).

    outs, final = answer(incarnation, heartbeat_ns, poison_ppm, events)

`events` is a list of (now_ns, frames): None for the passing of time (a
tick), else one wake-up's frames as bytes. BridgeCore is driven as the
shared vectors drive it (fixtures/bridge_vectors/generate.py): the offload
channel up from the start, the vector scorer, a fast model so a wake-up is
one chunk. `outs` holds what it sent for each event; `final` its counters:
(last epoch, read serial, duplicates skipped, records answered, bad frames).
"""

from __future__ import annotations

from collections.abc import Sequence

from aegis_bridge.core import BridgeCore, CoreConfig
from aegis_fixtures.vector_scorer import VectorScorer

UNSCORED_DECISION = 1  # bridge_rules::unscored_decision


def answer(incarnation: int, heartbeat_ns: int, poison_ppm: int,
           events: Sequence[tuple[int, Sequence[bytes] | None]]) -> tuple[list[list[bytes]], tuple[int, ...]]:
    core = BridgeCore(VectorScorer(poison_ppm), incarnation,
                      CoreConfig(heartbeat_ns=heartbeat_ns, unscored_decision=UNSCORED_DECISION))
    core.note_cost(1024, 1024 * 100)
    core.set_offload_up(True)
    outs: list[list[bytes]] = []
    for now_ns, frames in events:
        if frames is None:
            outs.append(core.tick(now_ns))
            continue
        core.receive(list(frames), now_ns)
        out: list[bytes] = []
        while core.busy:
            out += core.step(now_ns)
        outs.append(out)
    st = core.stats
    final = (st.current_epoch, st.read_serial, st.duplicates_skipped, st.verdict_records_sent,
             sum(st.bad_frames.values()))
    return outs, final
