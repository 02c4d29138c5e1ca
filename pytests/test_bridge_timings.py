"""Proves the bridge's timing histograms measure what their names say: queued before scoring, scoring, records per call.

- aegis_bridge.histogram.Histogram: a value equal to a bound counts in that
  bound's bucket (Prometheus' `le`), larger ones in +Inf; the snapshot is
  cumulative and ends with +Inf == count; the sum is the sum.
- In the loop (in-process bridge, fake core, a model costing 1 ms per
  record): one TXN frame of 200 records is scored in chunks of about 20 ms
  of model time, one observation per chunk (model call) in each histogram,
  never one per record. The records per call add up to 200. Queued time
  runs from taking the frame off the socket to each call's start, so later
  chunks wait for the earlier ones: the queued total is several times the
  scoring total (0 + 1 + ... + (k-1) chunks against k), and the first
  chunk waited almost nothing. A queued time measured from each chunk's own
  start, or once per wake-up, fails this.
"""

import numpy as np

from aegis_bridge.histogram import RECORDS_BUCKETS, SECONDS_BUCKETS, Histogram
from aegis_fixtures.bridge_thread import SHIPPED_MODEL
from aegis_fixtures.slow_model import spend
from aegis_fixtures.waiting import wait_for


def test_histogram_buckets_are_le_and_cumulative():
    h = Histogram((1.0, 2.0, 5.0))
    for v in (0.5, 1.0, 1.5, 2.0, 5.0, 7.0, 7.0):
        h.observe(v)
    buckets, total = h.snapshot()
    assert buckets == [("1.0", 2), ("2.0", 4), ("5.0", 5), ("+Inf", 7)]
    assert total == 24.0 and h.count == 7


def test_default_buckets_cover_the_bridges_range():
    assert SECONDS_BUCKETS[0] <= 10e-6 and SECONDS_BUCKETS[-1] >= 5.0, "10 us (small batch) to seconds (backlog)"
    assert RECORDS_BUCKETS[0] == 1 and RECORDS_BUCKETS[-1] == 64 * 1024, "1 record to --batch-max 64 full frames"


class SlowModel:
    """The shipped model after a busy-wait of cost_s per record."""

    def __init__(self, cost_s):
        self.cost_s = cost_s
        self.info = SHIPPED_MODEL.info

    def score(self, txns):
        spend(self.cost_s * len(txns))
        return SHIPPED_MODEL.score(txns)


def test_queued_and_scoring_time_are_observed_once_per_model_call(fake_core, run_bridge):
    records = 200
    r = run_bridge(model=SlowModel(1e-3), score_chunk_s=0.02)
    fake_core.wait_hellos(1)
    t = r.bridge.timings
    warm = (t.queued_s.count, t.scoring_s.count, t.records.count)
    assert warm == (0, 0, 0), "the warm-up is not observed"
    fake_core.send_txns(records, per_frame=records)  # one frame: one wake-up, several chunks
    fake_core.wait_verdict_records(records, timeout_s=60)
    wait_for(lambda: r.stats.verdict_records_sent == records, 30, "the bridge to count every verdict sent")
    calls = t.records.count
    assert calls >= 4, f"{calls} model calls for 0.2 s of model time in 20 ms chunks"
    assert t.queued_s.count == t.scoring_s.count == calls, "one observation per model call in each"
    assert r.stats.batches == 1 and r.stats.verdict_frames_sent >= calls
    # The later chunks waited for the earlier ones.
    assert t.queued_s.total >= 1.5 * t.scoring_s.total, (t.queued_s.total, t.scoring_s.total)
    assert 0.15 <= t.scoring_s.total < 10.0, "about 200 records x 1 ms in the model"
    first_bucket_10ms = next(i for i, b in enumerate(SECONDS_BUCKETS) if b >= 0.01)
    buckets, _ = t.queued_s.snapshot()
    assert buckets[first_bucket_10ms][1] >= 1, "the first chunk waited less than 10 ms"
    assert np.isclose(t.records.total, records)
