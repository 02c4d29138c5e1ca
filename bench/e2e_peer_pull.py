"""The peer's receiver in the end-to-end throughput benchmark: a per-message pyzmq loop.

Usage:
    PYTHONPATH=src /usr/bin/python3 bench/e2e_peer_pull.py --endpoint ipc:///tmp/d/peer.sock
    (binds, prints 'ready' on stderr; bench/e2e_peer_push then connects and sends;
    prints one JSON line when "END" arrives)

What it is: the design the issue compares our protocol with. One message per
transaction, JSON-encoded; the loop receives it, decodes it and scores it with
the bridge's own logistic model (same features, same shipped weights), and
sends nothing back (no acknowledgements, so no reliability). The scoring is
plain Python floats rather than numpy: per message, a numpy call costs more
than the whole arithmetic, so this is the fastest honest per-message loop.

The clock starts at the first message and stops at END, so neither the
sender's start nor the connect time is counted against the peer. Without
acknowledgements, messages can be lost (libzmq 4.3.4 lost the last few
hundred over ipc here when the sender exited right after its last send, even
with ZMQ_LINGER -1, so e2e_peer_push now repeats END until it is stopped);
if END never comes, the loop ends 1 s after the last message and reports
what it received (`messages`, `end_seen`), and its rate covers only that.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import zmq

from aegis_bridge.model import load_model
from aegis_bridge.synthetic import HIGH_RISK_MCC, TRAVEL_MCC

_ANGLE_PER_HOUR = 2.0 * math.pi / 24.0


def make_scorer():
    """A per-message scorer equal to LogisticModel.score for one record."""
    model = load_model()
    w = [float(x) for x in model.weights]
    bias = float(model.bias)
    review, decline = model.review, model.decline
    high_risk, travel = frozenset(HIGH_RISK_MCC), frozenset(TRAVEL_MCC)
    assert len(w) == 9, "the shipped model has nine features"

    def score(t: dict) -> tuple[float, int]:
        hour = t["h"]
        channel = t["n"]
        mcc = t["m"]
        angle = hour * _ANGLE_PER_HOUR
        z = (bias
             + w[0] * math.log1p(max(t["a"], 0) * 0.01)
             + w[1] * (channel == 1)
             + w[2] * (channel == 2)
             + w[3] * (mcc in high_risk)
             + w[4] * (mcc in travel)
             + w[5] * math.sin(angle)
             + w[6] * math.cos(angle)
             + w[7] * (hour < 5)
             + w[8] * (t["c"] != "EUR"))
        p = 1.0 / (1.0 + math.exp(-z)) if z > -700.0 else 0.0
        return p, (p >= review) + (p >= decline)

    return score


def recv_first(pull):
    """The first message, however long the sender takes to start."""
    while True:
        try:
            return pull.recv()
        except zmq.Again:
            continue


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", required=True, help="endpoint to bind (the sender's PUSH connects once 'ready' is printed)")
    args = ap.parse_args(argv)

    score = make_scorer()
    ctx = zmq.Context(1)
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.bind(args.endpoint)
    print("ready", file=sys.stderr, flush=True)

    # The peer has no acknowledgements, so a message (END included) can be
    # lost; then the loop ends after idle_s without one and counts what came.
    idle_s = 1.0
    pull.setsockopt(zmq.RCVTIMEO, int(idle_s * 1000))
    recv, loads = pull.recv, json.loads
    msg = recv_first(pull)
    t0 = time.perf_counter()
    n = 0
    declined = 0
    end_seen = True
    while msg != b"END":
        _, decision = score(loads(msg))
        declined += decision == 2
        n += 1
        try:
            msg = recv()
        except zmq.Again:
            end_seen = False
            break
    seconds = time.perf_counter() - t0 - (0.0 if end_seen else idle_s)
    pull.close()
    ctx.term()
    assert n > 0, "the sender sent no messages"
    print(json.dumps({"messages": n, "seconds": seconds, "per_s": n / seconds, "declined": declined,
                      "end_seen": end_seen}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
