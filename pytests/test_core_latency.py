"""aegis-core's latency accounting against the real bridge.

What it proves: `--latency-warmup D` leaves exactly the payments due in the
first D of the schedule out of `latency_us` and nothing else: they are still
offered, verdicted and in the ledger, and every later verdicted payment is
in the percentiles. The schedule is exact (payment k is due at
start + (k-1)/rate), so the excluded count is known in advance.
"""

from __future__ import annotations


def test_latency_warmup_leaves_out_exactly_the_early_payments(core_harness):
    h = core_harness
    h.start_core(mode="block", duration="1s", rate=5000, extra=["--latency-warmup", "500ms", "--start-after-hello"])
    h.start_bridge()
    rc = h.wait_core_exit(60)
    s = h.summary()
    assert rc == 0, f"exit {rc}; summary {s}"
    # 1 s at 5000/s: ids 1..5000; due before start + 500 ms: ids 1..2500.
    assert s["offered"] == s["verdicts"] == 5000 and s["lost"] == 0
    assert s["latency_warmup_s"] == 0.5
    assert s["latency_us"]["count"] == s["verdicts"] - 2500
    assert h.ledger().fate_counts() == {"verdict": 5000}


def test_without_warmup_every_verdict_is_in_the_percentiles(core_harness):
    h = core_harness
    h.start_core(mode="block", count=3000, rate=5000, extra=["--start-after-hello"])
    h.start_bridge()
    rc = h.wait_core_exit(60)
    s = h.summary()
    assert rc == 0, f"exit {rc}; summary {s}"
    assert s["latency_warmup_s"] == 0
    assert s["latency_us"]["count"] == s["verdicts"] == 3000
