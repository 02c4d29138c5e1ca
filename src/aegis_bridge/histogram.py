"""A histogram cheap enough for the bridge's loop: a bisect and two additions per observation.

Usage:
    h = Histogram(SECONDS_BUCKETS)
    h.observe(0.00042)                      # the loop thread only
    buckets, total = h.snapshot()           # [("1e-05", 0), ..., ("+Inf", n)], sum: any thread, at scrape

prometheus_client's Histogram takes a lock and walks its buckets in Python
on every observe (~1.4 us on this VM); the bridge observes three values per
model call, and at a few microseconds per call for small batches that would
show. Here an observation is a C bisect into a tuple and a list increment
(~0.33 us; with the two perf_counter calls, ~1.2 us per model call).
The loop thread is the only writer; a scrape reads the counts and the sum
without a lock, so a scrape racing an observation may see the new count
without the new sum (never a count going down): Prometheus tolerates that.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Seconds: 10 us (a small batch of the shipped model) to 5 s (a slow model's backlog).
SECONDS_BUCKETS = (1e-05, 2.5e-05, 5e-05, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Records per model call: 1 to 65536 (--batch-max 64 frames of 1024 records).
RECORDS_BUCKETS = tuple(float(1 << i) for i in range(17))


class Histogram:
    """Counts of observations at or below each bound (plus +Inf), and their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]):
        if len(bounds) < 1 or not all(a < b for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"histogram bounds must be at least one and increase strictly, got {list(bounds)}")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, as Prometheus' `le` (less or equal) wants.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> tuple[list[tuple[str, int]], float]:
        """Cumulative (le, count) pairs ending with ("+Inf", count), and the sum."""
        total = self.total
        counts = list(self.counts)  # one copy: the cumulative counts below never decrease
        buckets = []
        running = 0
        for bound, n in zip((*(repr(b) for b in self.bounds), "+Inf"), counts):
            running += n
            buckets.append((bound, running))
        assert buckets[-1][0] == "+Inf" and len(buckets) == len(self.bounds) + 1
        return buckets, total
