"""Prometheus exposition of the bridge's counters and timings (python3-prometheus-client).

Usage:
    server = serve_metrics(bridge, port)     # 127.0.0.1 only; port 0 picks one
    server.port                              # the port actually bound
    server.shutdown()

A collector reads `bridge.stats` and `bridge.timings` when scraped instead of
the loop updating prometheus_client objects, so the loop pays nothing per
frame for counters and one cheap histogram observation per model call
(aegis_bridge.histogram). Each bridge gets its own registry, so several
bridges can live in one test process. Only prometheus_client's public API is
used; the HTTP server is the standard library's, with request logging off.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily,
                                    Metric)
from prometheus_client.registry import Collector

from .histogram import Histogram
from .protocol import REJECT_REASONS

if TYPE_CHECKING:
    from .bridge import Bridge

_COUNTERS = (
    ("frames_received", "Frames received on the offload channel, good or bad."),
    ("txn_frames", "Valid TXN frames received."),
    ("records_scored", "TXN records scored."),
    ("verdict_frames_sent", "VERDICT frames sent."),
    ("verdict_records_sent", "VERDICT records sent."),
    ("hellos_sent", "HELLO frames sent (start and heartbeat)."),
    ("hellos_dropped", "HELLO frames dropped because the verdict pipe was full."),
    ("offload_connects", "Offload channel connections established (handshakes), the first included."),
    ("handshake_failures", "Connections (either channel) the peer closed before the ZeroMQ handshake completed."),
    ("send_waits", "Times a VERDICT send had to wait for the verdict pipe."),
    ("batches", "Wake-ups that scored at least one TXN frame."),
    ("epochs_seen", "Distinct core epochs seen (core starts)."),
    ("duplicates_skipped", "TXN records skipped, already answered by this incarnation in this core epoch."),
    ("unscored", "Records answered unscored (the model failed on them) with the fail-safe decision."),
    ("model_errors", "Exceptions the model raised (each call of a bisection that raised counts)."),
    ("bad_scores", "Records whose model output the core would reject (NaN, outside [0, 1], decision above 2)."),
)

# (attribute of BridgeTimings, metric name, help): one histogram each, observed per model call.
_HISTOGRAMS = (
    ("queued_s", "aegis_bridge_queue_duration_seconds",
     "Per model call: from taking its wake-up's first frame off the offload socket to the model call's start."),
    ("scoring_s", "aegis_bridge_score_duration_seconds",
     "Per model call: time in the model (with the bisection after a model error)."),
    ("records", "aegis_bridge_batch_records", "Per model call: records scored in that call."),
)


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    buckets, total = h.snapshot()
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)


class _StatsCollector(Collector):
    def __init__(self, bridge: Bridge):
        self._bridge = bridge

    def collect(self) -> Iterator[Metric]:
        bridge = self._bridge
        stats = bridge.stats
        for name, doc in _COUNTERS:
            yield CounterMetricFamily(f"aegis_bridge_{name}", doc, value=getattr(stats, name))
        yield GaugeMetricFamily("aegis_bridge_read_serial", "Highest TXN frame serial of the current core epoch "
                                "read and fully answered (what the HELLO reports).", value=stats.read_serial)
        bad = CounterMetricFamily("aegis_bridge_bad_frames", "Frames skipped, by reason.", labels=["reason"])
        # Every documented reason is exported, zero or not, so dashboards and
        # tests see the series before the first bad frame.
        for reason in (*REJECT_REASONS, "unexpected_type"):
            bad.add_metric([reason], stats.bad_frames.get(reason, 0))
        yield bad
        for attr, name, doc in _HISTOGRAMS:
            yield _histogram(name, doc, getattr(bridge.timings, attr))
        # An epoch is a 64-bit id, which a float sample would round: a label keeps it exact.
        yield InfoMetricFamily("aegis_bridge_core", "The last core epoch seen (0x0 if none).",
                               value={"epoch": f"{stats.current_epoch:#x}"})
        info = bridge.model_info
        yield InfoMetricFamily("aegis_bridge", "This bridge process.",
                               value={"incarnation": f"{bridge.incarnation:#018x}", "model": info.name})
        yield InfoMetricFamily("aegis_bridge_model", "The model this bridge serves: its metadata's name and "
                               "version, and the runtime that loaded it.",
                               value={"name": info.name, "version": info.version, "runtime": bridge.runtime})


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on the bridge's stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """A scrape that stalls (a slow client) must not hold up the next one."""

    daemon_threads = True


class MetricsServer:
    def __init__(self, httpd: WSGIServer):
        self._httpd = httpd
        self.port: int = httpd.server_port
        self._thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve_metrics(bridge: Bridge, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_StatsCollector(bridge))
    httpd = make_server(addr, port, make_wsgi_app(registry), _ThreadingWSGIServer, handler_class=_QuietHandler)
    return MetricsServer(httpd)
