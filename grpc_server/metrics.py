"""Prometheus metrics of the query service, in a registry of its own (one per server,
so several servers in one test process do not collide), and the plaintext HTTP port that
serves them beside the kubelet's health checks (`serve_http`; the server is grpc_server/probes.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from grpc_server.backend import ServedRun
from grpc_server.loop import on_loop
from grpc_server.probes import ProbeServer

# sub-millisecond buckets: a snapshot answer takes well under one
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "airtime_grpc_requests", "gRPC requests answered, by method and status code",
            ["method", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "airtime_grpc_request_seconds", "gRPC request handling time, by method",
            ["method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.run_date = Gauge(
            "airtime_served_run_date_seconds", "Run date being served, as a Unix time",
            registry=self.registry,
        )
        self.published_at = Gauge(
            "airtime_served_published_at_seconds", "When the run being served was published, as a Unix time",
            registry=self.registry,
        )
        self.slots = Gauge("airtime_served_slots", "Slots in the run being served",
                           registry=self.registry)
        self.swaps = Counter("airtime_run_swaps", "Times a newer run started being served",
                             registry=self.registry)
        # the HTTP/JSON routes (grpc_server/http.py), by the rule's path template, never the
        # path itself: program codes and probes of unknown paths would grow the labels forever
        self.http_requests = Counter(
            "airtime_http_requests", "HTTP/JSON requests answered, by route template and HTTP status",
            ["route", "status"], registry=self.registry,
        )
        self.http_latency = Histogram(
            "airtime_http_request_seconds", "HTTP/JSON request handling time, by route template",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        # calls refused before any work for the server's own limits (interceptors.Admission):
        # by reason, so an attack that holds or floods the call slots shows on a graph
        self.refused = Counter(
            "airtime_grpc_refused", "gRPC calls refused for a server limit before any work, by reason",
            ["reason"], registry=self.registry,
        )
        self.calls_in_flight = Gauge(
            "airtime_grpc_calls_in_flight", "gRPC calls admitted and not yet answered",
            registry=self.registry,
        )
        self.calls_waiting = Gauge(
            "airtime_grpc_calls_waiting", "gRPC calls whose request message has not arrived yet",
            registry=self.registry,
        )
        # what /readyz answers, for alerting: kube-state-metrics is not in Managed Prometheus
        self.ready = Gauge("airtime_server_ready", "1 while this replica is ready (what /readyz answers)",
                           registry=self.registry)
        self._http: ProbeServer | None = None
        # labels() lookups, once per (kind, name, code)
        self._children: dict[tuple[str, str, str], tuple] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        """A gRPC call answered: its full method name and status code name."""
        self._observe("grpc", self.requests, self.latency, method, code, seconds)

    def observe_http(self, route: str, status: int, seconds: float) -> None:
        """An HTTP/JSON call answered: its route template (grpc_server/http.py) and status."""
        self._observe("http", self.http_requests, self.http_latency, route, str(status), seconds)

    def _observe(self, kind: str, counter: Counter, histogram: Histogram, name: str, code: str,
                 seconds: float) -> None:
        key = (kind, name, code)
        children = self._children.get(key)
        if children is None:
            children = (counter.labels(name, code), histogram.labels(name))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def run_served(self, run: ServedRun) -> None:
        midnight = dt.datetime.combine(run.id.run_date, dt.time(), dt.UTC)
        self.run_date.set(midnight.timestamp())
        if run.record.published_at is not None:
            self.published_at.set(run.record.published_at.timestamp())
        self.slots.set(run.record.forecast_rows)
        self.swaps.inc()

    def serve_http(self, port: int, addr: str = "0.0.0.0", *,
                   checks: Mapping[str, Callable[[], bool]] | None = None) -> int:
        """Expose /metrics, and each path of `checks` (200 when its check says True, else
        503), on port (0 = a free one), served on the process's event loop; returns the port
        bound. A taken port raises OSError before anything is served. The checks run on the
        loop: they answer from memory."""
        server = ProbeServer(self.registry, checks or {})
        on_loop(server.start(addr, port))
        self._http = server
        return server.port

    def close(self) -> None:
        """Stop serving the port (from any thread but the event loop's)."""
        if self._http is not None:
            on_loop(self._http.stop())
            self._http = None
