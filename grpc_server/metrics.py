"""Prometheus metrics of the query service, in a registry of its own (one per server,
so several servers in one test process do not collide)."""

from __future__ import annotations

import datetime as dt

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from grpc_server.backend import ServedRun

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
        self.slots = Gauge("airtime_served_slots", "Slots in the run being served",
                           registry=self.registry)
        self.swaps = Counter("airtime_run_swaps", "Times a newer run started being served",
                             registry=self.registry)
        self._http = None
        self._children: dict[tuple[str, str], tuple] = {}  # labels() lookups, once per pair

    def observe(self, method: str, code: str, seconds: float) -> None:
        children = self._children.get((method, code))
        if children is None:
            children = (self.requests.labels(method, code), self.latency.labels(method))
            self._children[(method, code)] = children
        children[0].inc()
        children[1].observe(seconds)

    def run_served(self, run: ServedRun) -> None:
        midnight = dt.datetime.combine(run.id.run_date, dt.time(), dt.UTC)
        self.run_date.set(midnight.timestamp())
        self.slots.set(run.record.forecast_rows)
        self.swaps.inc()

    def serve_http(self, port: int, addr: str = "0.0.0.0") -> int:
        """Expose /metrics on port (0 = a free one); returns the port bound."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._http = server
        return server.server_port

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
