"""The canary's Prometheus metrics (official ``prometheus_client``) and its HTTP endpoints.

``/metrics`` is the Prometheus text format, built at scrape time from the
checker's snapshot (a custom collector: the checker stays pure and counts in
plain integers). ``/healthz`` answers 200 when every region's producer and
consumer are connected and the checker loop is alive, 503 otherwise, with a
JSON body saying why.

Naming follows Prometheus conventions: one prefix, counters end in
``_total``, times are in seconds, sizes in messages, and every per-pair series
has an ``origin`` (where the message was published) and a ``region`` (where it
is delivered) label. :data:`METRICS` is the table the README shows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from geo_recon.canary.checker import CanarySnapshot

PREFIX = "geo_recon_canary"


@dataclass(frozen=True, slots=True)
class MetricDoc:
    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


#: Every series the canary exports (without the prefix), as the README lists them.
METRICS = (
    MetricDoc("sent_total", "counter", ("origin",), "Sends the canary invoked in the origin region."),
    MetricDoc("acked_total", "counter", ("origin",), "Sends acknowledged by the origin region (expected everywhere)."),
    MetricDoc("failed_total", "counter", ("origin",), "Sends refused, timed out or of unknown outcome (never expected)."),
    MetricDoc("delivered_total", "counter", ("origin", "region"), "First deliveries in region of origin's messages."),
    MetricDoc("lost_total", "counter", ("origin", "region"),
              "Acked messages not delivered in region within the deadline."),
    MetricDoc("late_total", "counter", ("origin", "region"),
              "Deliveries after the message was counted lost (or beyond the canary's memory)."),
    MetricDoc("duplicated_total", "counter", ("origin", "region"), "Deliveries of a message stored again (another msg_id)."),
    MetricDoc("redelivered_total", "counter", ("origin", "region"), "Deliveries of the same msg_id again (not a violation)."),
    MetricDoc("reordered_total", "counter", ("origin", "region"),
              "First deliveries below a seq already delivered from the same producer."),
    MetricDoc("unexpected_total", "counter", ("origin", "region"),
              "Deliveries of messages this canary never sent (another canary, or lost state)."),
    MetricDoc("lag_seconds", "histogram", ("origin", "region"), "Ack in origin to first delivery in region."),
    MetricDoc("pending_messages", "gauge", ("origin", "region"), "Acked, not yet delivered in region, within the deadline."),
    MetricDoc("oldest_pending_seconds", "gauge", ("origin", "region"),
              "Age of the oldest of them: the replication lag as it stands now (0 when none)."),
    MetricDoc("exposure_messages", "gauge", ("origin",),
              "Acked in origin, not yet delivered in any other region: the RPO if origin died now."),
    MetricDoc("exposure_oldest_seconds", "gauge", ("origin",), "Age of the oldest exposed message (0 when none)."),
    MetricDoc("last_ack_timestamp_seconds", "gauge", ("origin",), "When origin last acknowledged a canary send."),
    MetricDoc("last_delivery_timestamp_seconds", "gauge", ("origin", "region"),
              "When region last delivered a message of origin."),
    MetricDoc("region_up", "gauge", ("region",), "1 when the canary's producer and consumer in region are connected."),
    MetricDoc("deadline_seconds", "gauge", (), "The loss deadline the canary applies."),
    MetricDoc("state_messages", "gauge", (), "Messages the checker holds (bounded by rate x (deadline + horizon))."),
    MetricDoc("checkpoint_timestamp_seconds", "gauge", (), "When the state was last checkpointed (0: never)."),
)


@dataclass(frozen=True, slots=True)
class CanaryView:
    """What a scrape shows: the checker's snapshot plus the runner's connection state."""

    snapshot: CanarySnapshot
    region_up: dict[str, bool]
    checkpoint_ns: int | None


class CanaryCollector(Collector):
    """Builds every family from one :class:`CanaryView` per scrape."""

    def __init__(self, view: Callable[[], CanaryView]) -> None:
        self._view = view

    def describe(self) -> Iterable[Metric]:
        return []  # families are built per scrape; nothing to pre-register

    def collect(self) -> Iterable[Metric]:
        return families(self._view())


def families(view: CanaryView) -> list[Metric]:
    """Every metric family for one view (pure: unit tests read it without a server)."""
    snap = view.snapshot
    out: list[Metric] = []

    def name(short: str) -> str:
        return f"{PREFIX}_{short}"

    docs = {m.name: m.help for m in METRICS}
    for short, attr in (("sent_total", "sent"), ("acked_total", "acked"), ("failed_total", "failed")):
        fam = CounterMetricFamily(name(short.removesuffix("_total")), docs[short], labels=["origin"])
        for o in snap.origins:
            fam.add_metric([o.origin], getattr(o, attr))
        out.append(fam)
    for counter in ("delivered", "lost", "late", "duplicated", "redelivered", "reordered", "unexpected"):
        fam = CounterMetricFamily(name(counter), docs[f"{counter}_total"], labels=["origin", "region"])
        for p in snap.pairs:
            fam.add_metric([p.origin, p.region], getattr(p, counter))
        out.append(fam)
    hist = HistogramMetricFamily(name("lag_seconds"), docs["lag_seconds"], labels=["origin", "region"])
    for p in snap.pairs:
        cumulative, buckets = 0, []
        for bound, n in zip(p.lag.buckets_s, p.lag.counts):
            cumulative += n
            buckets.append((_le(bound), cumulative))
        buckets.append(("+Inf", p.lag.count))
        hist.add_metric([p.origin, p.region], buckets, p.lag.sum_s)
    out.append(hist)
    pair_gauges = (("pending_messages", lambda p: p.pending), ("oldest_pending_seconds", lambda p: p.oldest_pending_s),
                   ("last_delivery_timestamp_seconds",
                    lambda p: None if p.last_delivery_ns is None else p.last_delivery_ns / 1e9))
    for short, value in pair_gauges:
        fam = GaugeMetricFamily(name(short), docs[short], labels=["origin", "region"])
        for p in snap.pairs:
            v = value(p)
            if v is not None:
                fam.add_metric([p.origin, p.region], v)
        out.append(fam)
    origin_gauges = (("exposure_messages", lambda o: o.exposure), ("exposure_oldest_seconds", lambda o: o.exposure_oldest_s),
                     ("last_ack_timestamp_seconds", lambda o: None if o.last_ack_ns is None else o.last_ack_ns / 1e9))
    for short, value in origin_gauges:
        fam = GaugeMetricFamily(name(short), docs[short], labels=["origin"])
        for o in snap.origins:
            v = value(o)
            if v is not None:
                fam.add_metric([o.origin], v)
        out.append(fam)
    up = GaugeMetricFamily(name("region_up"), docs["region_up"], labels=["region"])
    for region in snap.regions:
        up.add_metric([region], 1.0 if view.region_up.get(region) else 0.0)
    out.append(up)
    out.append(GaugeMetricFamily(name("deadline_seconds"), docs["deadline_seconds"], value=snap.deadline_s))
    out.append(GaugeMetricFamily(name("state_messages"), docs["state_messages"], value=snap.live))
    out.append(GaugeMetricFamily(name("checkpoint_timestamp_seconds"), docs["checkpoint_timestamp_seconds"],
                                 value=(view.checkpoint_ns or 0) / 1e9))
    return out


def _le(bound: float) -> str:
    return repr(float(bound))


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # scrapes every few seconds would flood the canary's log


class MetricsServer:
    """``/metrics`` and ``/healthz`` on ``host:port`` in a background thread."""

    def __init__(self, host: str, port: int, *, view: Callable[[], CanaryView],
                 health: Callable[[], tuple[bool, dict[str, Any]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(CanaryCollector(view))
        ProcessCollector(namespace=PREFIX, registry=self.registry)  # its own RSS and CPU: flat memory is visible
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict, start_response: Callable) -> list[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics_app(environ, start_response)
            if path in ("/healthz", "/health"):
                ok, body = health()
                start_response("200 OK" if ok else "503 Service Unavailable",
                               [("Content-Type", "application/json")])
                return [json.dumps({"status": "ok" if ok else "unhealthy", **body}).encode()]
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"the canary serves /metrics and /healthz\n"]

        try:
            self._server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        except OSError as exc:
            from geo_recon.errors import EnvironmentProblem

            raise EnvironmentProblem(f"canary: cannot listen on {host}:{port} for /metrics: {exc.strerror}") from None
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="canary-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
