"""Prometheus exposition of the bridge's counters (python3-prometheus-client).

Usage:
    server = serve_metrics(bridge, port)     # 127.0.0.1 only; port 0 picks one
    server.port                              # the port actually bound
    server.shutdown()

A collector reads `bridge.stats` when scraped instead of the loop updating
prometheus Counter objects, so the loop pays nothing per frame. Each bridge
gets its own registry, so several bridges can live in one test process.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler, make_wsgi_app

from .protocol import REJECT_REASONS

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


class _StatsCollector:
    def __init__(self, bridge):
        self._bridge = bridge

    def collect(self):
        stats = self._bridge.stats
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
        # An epoch is a 64-bit id, which a float sample would round: a label keeps it exact.
        yield InfoMetricFamily("aegis_bridge_core", "The last core epoch seen (0x0 if none).",
                               value={"epoch": f"{stats.current_epoch:#x}"})
        yield InfoMetricFamily("aegis_bridge", "This bridge process.",
                               value={"incarnation": f"{self._bridge.incarnation:#018x}",
                                      "model": getattr(self._bridge.model, "name", "unknown")})


class MetricsServer:
    def __init__(self, httpd):
        self._httpd = httpd
        self.port = httpd.server_port
        self._thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def serve_metrics(bridge, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_StatsCollector(bridge))
    httpd = make_server(addr, port, make_wsgi_app(registry), ThreadingWSGIServer, handler_class=_SilentHandler)
    return MetricsServer(httpd)
