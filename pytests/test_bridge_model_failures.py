"""Proves a failing or slow model never kills the bridge, never costs a verdict, and never hides it from the core.

Against the in-process FakeCore, with test models wrapping the shipped one:

- poison records (the model raises whenever a batch holds one): the batch is
  bisected; each poison record gets an `unscored` verdict (flag bit 0, score
  0, the configured fail-safe decision), every other record its own score,
  all in TXN order; `unscored`, `model_errors` and `records_scored` add up,
  and the number of model calls stays within the bisection's bound;
- a model that raises on everything, even at warm-up: every record is
  answered unscored, and the bridge keeps running and heartbeating;
- a model returning output the core would reject (NaN, a score outside
  [0, 1], decision 3, a wrong length): those records are answered unscored
  instead, so the core never rejects one of our verdicts;
- a slow model (milliseconds per record): one TXN frame is answered in
  chunks as they are scored, HELLOs keep coming while the bridge works, and
  their read_serial does not pass the frame until its last record is
  answered.

The fake core checks every verdict record as the real core does
(`record_rejects`); the only waits are for verdicts to arrive.
"""

import math
import time

import numpy as np
import pytest

from aegis_bridge import protocol as p
from aegis_fixtures.bridge_thread import SHIPPED_MODEL
from aegis_fixtures.slow_model import spend
from aegis_fixtures.waiting import wait_for

POISON_EVERY = 7  # txn_id % 7 == 0 is poison


class PoisonModel:
    """The shipped model, raising whenever a batch holds a record with txn_id % every == 0."""

    name = "test-poison"

    def __init__(self, every=POISON_EVERY):
        self.every = every
        self.calls = 0

    def score(self, txns):
        self.calls += 1
        if (txns["txn_id"] % self.every == 0).any():
            raise ValueError("poison")
        return SHIPPED_MODEL.score(txns)


class SlowModel:
    """The shipped model, after a busy-wait of cost_s per record."""

    name = "test-slow"

    def __init__(self, cost_s):
        self.cost_s = cost_s

    def score(self, txns):
        spend(self.cost_s * len(txns))
        return SHIPPED_MODEL.score(txns)


class BrokenModel:
    name = "test-broken"

    def score(self, txns):
        raise RuntimeError("model server unreachable")


class BadOutputModel:
    """The shipped model, but chosen records get a score or decision the core would reject."""

    name = "test-bad-output"

    def score(self, txns):
        scores, decisions = SHIPPED_MODEL.score(txns)
        scores, decisions = scores.copy(), decisions.copy()
        tid = txns["txn_id"]
        scores[tid % 11 == 0] = np.nan
        scores[tid % 11 == 1] = 1.5
        scores[tid % 11 == 2] = -0.25
        decisions[tid % 11 == 3] = 3
        return scores, decisions


class WrongLengthModel:
    name = "test-wrong-length"

    def score(self, txns):
        scores, decisions = SHIPPED_MODEL.score(txns)
        return scores[:-1], decisions[:-1]  # one short: every call is a failure, single records too


def wait_counted(r, records: int):
    wait_for(lambda: r.stats.verdict_records_sent == records, 30, f"the bridge to count {records} verdict records",
             describe=lambda: r.stats.as_dict())


def test_poison_records_are_isolated_and_answered_unscored_with_the_fail_safe(fake_core, run_bridge):
    model = PoisonModel()
    r = run_bridge(model=model, unscored_decision=p.DECISION_DECLINE)
    sent = np.concatenate(fake_core.send_txns(3000, per_frame=500))
    fake_core.wait_verdict_records(len(sent))
    wait_counted(r, len(sent))
    v = fake_core.verdict_records()
    assert np.array_equal(v["seq"], sent["seq"]) and np.array_equal(v["txn_id"], sent["txn_id"]), "TXN order kept"
    poison = sent["txn_id"] % POISON_EVERY == 0
    k = int(poison.sum())
    assert k > 0
    assert (v["flags"][poison] == p.FLAG_UNSCORED).all() and (v["flags"][~poison] == 0).all()
    assert (v["score"][poison] == 0).all() and (v["decision"][poison] == p.DECISION_DECLINE).all()
    scores, decisions = SHIPPED_MODEL.score(sent[~poison])
    assert np.array_equal(v["score"][~poison], scores) and np.array_equal(v["decision"][~poison], decisions)
    assert (v["reserved"] == 0).all() and not fake_core.record_rejects, dict(fake_core.record_rejects)
    st = r.stats
    assert st.unscored == k and st.records_scored == len(sent) - k and st.bad_scores == 0
    # Bisection: a failing batch of n records with k poison ones costs at
    # most 2 calls per failing node, k failing nodes per level, log2(n) levels.
    depth = math.ceil(math.log2(len(sent)))
    assert k <= st.model_errors <= st.batches + 2 * k * depth, st.as_dict()
    assert model.calls <= 3 * st.batches + 2 * k * depth + 3, "warm-up (3 calls) + per batch + bisection"


def test_a_model_that_always_raises_costs_no_verdict_and_not_the_bridge(fake_core, run_bridge):
    r = run_bridge(model=BrokenModel(), heartbeat_s=0.05)
    sent = np.concatenate(fake_core.send_txns(100, per_frame=25))
    fake_core.wait_verdict_records(100)
    v = fake_core.verdict_records()
    assert np.array_equal(v["seq"], sent["seq"])
    assert (v["flags"] == p.FLAG_UNSCORED).all() and (v["decision"] == p.DECISION_REVIEW).all(), "default: review"
    assert (v["score"] == 0).all() and not fake_core.record_rejects
    hellos = len(fake_core.hellos)
    fake_core.wait_hellos(hellos + 2)  # still alive and heartbeating
    wait_counted(r, 100)
    assert r.stats.unscored == 100 and r.stats.records_scored == 0 and r.stats.model_errors >= 100
    assert r.thread.is_alive()


def test_model_output_the_core_would_reject_is_answered_unscored(fake_core, run_bridge):
    r = run_bridge(model=BadOutputModel())
    sent = np.concatenate(fake_core.send_txns(1100, per_frame=100))
    fake_core.wait_verdict_records(len(sent))
    wait_counted(r, len(sent))
    v = fake_core.verdict_records()
    bad = sent["txn_id"] % 11 <= 3
    assert (v["flags"][bad] == p.FLAG_UNSCORED).all() and (v["flags"][~bad] == 0).all()
    assert (v["decision"][bad] == p.DECISION_REVIEW).all() and (v["score"][bad] == 0).all()
    assert not fake_core.record_rejects, f"the core would reject: {dict(fake_core.record_rejects)}"
    assert r.stats.bad_scores == r.stats.unscored == int(bad.sum()) and r.stats.model_errors == 0


def test_a_model_returning_the_wrong_number_of_scores_is_a_model_error(fake_core, run_bridge):
    r = run_bridge(model=WrongLengthModel(), unscored_decision=p.DECISION_APPROVE)
    fake_core.send_txns(40, per_frame=40)
    fake_core.wait_verdict_records(40)
    v = fake_core.verdict_records()
    assert (v["flags"] == p.FLAG_UNSCORED).all() and (v["decision"] == p.DECISION_APPROVE).all()
    wait_counted(r, 40)
    assert r.stats.model_errors >= 40 and r.stats.unscored == 40


@pytest.mark.parametrize("cost_s", [2e-3])
def test_a_slow_model_answers_a_frame_in_chunks_and_keeps_heartbeating(fake_core, run_bridge, cost_s):
    chunk_s, heartbeat_s, records = 0.02, 0.05, 200
    model_s = cost_s * records  # 0.4 s of model time for one frame
    r = run_bridge(model=SlowModel(cost_s), score_chunk_s=chunk_s, heartbeat_s=heartbeat_s)
    fake_core.wait_hellos(1)
    hellos_before = len(fake_core.hellos)
    fake_core.send_txns(records, per_frame=records)  # one TXN frame, serial 1
    fake_core.wait_verdict_records(records, timeout_s=30 + 10 * model_s)
    fake_core.wait_hellos(len(fake_core.hellos) + 1)
    arrivals = fake_core.arrivals
    verdict_at = [i for i, f in enumerate(arrivals) if f.type == p.TYPE_VERDICT]
    during = [f for f in arrivals[verdict_at[0]:verdict_at[-1]] if f.type == p.TYPE_HELLO]
    # Chunks of about chunk_s of model time: at least half as many VERDICT frames as model_s / chunk_s.
    assert len(verdict_at) >= model_s / chunk_s / 2, f"{len(verdict_at)} VERDICT frames for {model_s:g}s of scoring"
    # A HELLO every heartbeat while scoring: at least half of model_s / heartbeat_s between the first and last.
    assert len(during) >= model_s / heartbeat_s / 2 - 1, f"{len(during)} HELLOs in {model_s:g}s of scoring"
    assert all(h.records["read_serial"][0] == 0 for h in during), "read_serial passed a frame not fully answered"
    after = [f for f in arrivals[verdict_at[-1]:] if f.type == p.TYPE_HELLO]
    assert after and after[-1].records["read_serial"][0] == 1
    assert len(fake_core.hellos) > hellos_before
    assert np.array_equal(fake_core.verdict_records()["seq"], np.arange(1, records + 1))


class PausingModel:
    """The shipped model; its first call of many records stands still for pause_s, as a bridge
    stopped by SIGSTOP in the middle of scoring does."""

    name = "test-pausing"

    def __init__(self, pause_s):
        self.pause_s = pause_s
        self.paused = False

    def score(self, txns):
        if not self.paused and len(txns) >= 64:
            self.paused = True
            time.sleep(self.pause_s)  # the pause is the fault itself
        return SHIPPED_MODEL.score(txns)


def test_one_paused_model_call_does_not_shrink_the_chunks_for_good(fake_core, run_bridge):
    # The bridge sizes its chunks from the model's measured cost per record. One call that stood
    # still for 2 s (a SIGSTOP) made a fast model look like several ms a record; the chunks shrank
    # to a record or two, calls that small were never sampled again, and the bridge answered a
    # record or two per model call and per VERDICT frame for good.
    chunk_s, pause_s, frames, first = 0.02, 2.0, 16, 64
    r = run_bridge(model=PausingModel(pause_s), score_chunk_s=chunk_s)
    fake_core.wait_hellos(1)
    fake_core.send_txns(first, per_frame=first)  # the paused call: 2 s for 64 records
    fake_core.wait_verdict_records(first, timeout_s=30)
    before = sum(1 for f in fake_core.arrivals if f.type == p.TYPE_VERDICT)
    fake_core.send_txns(frames * p.MAX_RECORDS, per_frame=p.MAX_RECORDS)
    fake_core.wait_verdict_records(first + frames * p.MAX_RECORDS, timeout_s=60)
    after = sum(1 for f in fake_core.arrivals if f.type == p.TYPE_VERDICT) - before
    # Back to whole frames within a few dozen calls (each small call lowers the estimate by a quarter).
    assert after <= frames + 64, (f"{after} VERDICT frames for {frames} full TXN frames after one paused call: "
                                  f"the chunks never grew back (cost estimate {r.bridge._cost_per_record_s!r} s/record)")
