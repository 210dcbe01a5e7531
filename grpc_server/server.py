"""The query service process: `create_server` builds it, `serve` runs it until SIGTERM.

`python -m grpc_server.server [--port P]` (or `airtime serve`) serves the latest published
run of the warehouse named by the AIRTIME_* settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from airtime import entrypoint
from airtime.errors import ConfigError
from airtime.resources import open_warehouse
from airtime.settings import Settings
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server.backend import ForecastBackend, ServedRun, WarehouseBackend, open_backend
from grpc_server.interceptors import ServiceInterceptor
from grpc_server.metrics import ServiceMetrics
from grpc_server.queries import Limits
from grpc_server.servicer import ForecastServicer

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ForecastService"].full_name
MAX_RECEIVE_BYTES = 1 * 1024 * 1024  # requests are a few dozen bytes
MAX_SEND_BYTES = 32 * 1024 * 1024  # a max-size page is well under this
SHUTDOWN_GRACE_SECONDS = 10.0
# Snapshot answers are pure CPU under one GIL: a few threads keep the tail latency low
# (16 threads measured ~1.6x the p99 of 2-4 at 8 concurrent clients), while still
# leaving threads for streams, which hold theirs until the client has read everything.
# Warehouse answers mostly wait on I/O, so that backend gets more.
DEFAULT_THREADS = {"snapshot": 4, "warehouse": 16}


@dataclass
class Service:
    server: grpc.Server
    port: int
    backend: ForecastBackend
    health: health.HealthServicer
    metrics: ServiceMetrics

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let running ones finish (up to grace seconds), stop polling."""
        self.health.enter_graceful_shutdown()  # probes see NOT_SERVING while draining
        self.server.stop(grace).wait()
        self.backend.close()
        self.metrics.close()


def load_tokens(settings: Settings) -> list[str]:
    tokens = [t.strip() for t in (settings.tokens or "").split(",") if t.strip()]
    if settings.tokens_file is not None:
        try:
            lines = settings.tokens_file.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read tokens file {settings.tokens_file}: {exc}") from exc
        tokens += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return tokens


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both AIRTIME_TLS_CERT_FILE and AIRTIME_TLS_KEY_FILE")
    try:
        return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    except OSError as exc:
        raise ConfigError(f"cannot read TLS certificate or key: {exc}") from exc


def build_service(address: str, *, settings: Settings, backend: ForecastBackend | None = None,
                  metrics: ServiceMetrics | None = None, max_workers: int | None = None,
                  poll: bool = True) -> Service:
    """Everything wired, not yet serving (call service.server.start()). With poll, the
    backend starts polling the ledger (first load included) in the background; without,
    the caller drives backend.refresh()."""
    if backend is None:
        backend = open_backend(settings, open_warehouse(settings))
    metrics = metrics or ServiceMetrics()
    if max_workers is None:
        max_workers = DEFAULT_THREADS["warehouse" if isinstance(backend, WarehouseBackend) else "snapshot"]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=[ServiceInterceptor(tokens=load_tokens(settings), metrics=metrics)],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            ("grpc.so_reuseport", 0),  # port 0 must mean a port of our own
        ],
    )
    limits = Limits(settings.max_range_days, settings.default_page_size, settings.max_page_size)
    pb_grpc.add_ForecastServiceServicer_to_server(ForecastServicer(backend, limits), server)

    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    def serving(run: ServedRun | None = None) -> None:
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        if run is not None:
            metrics.run_served(run)

    for name in ("", SERVICE_NAME):  # nothing to answer from until a run is loaded
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    backend.add_listener(serving)
    if backend.ready():
        serving(backend.served())

    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    credentials = _credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise ConfigError(f"cannot listen on {address}")
    if poll:
        backend.start()
    return Service(server, port, backend, health_servicer, metrics)


def create_server(address: str, *, settings: Settings, backend: ForecastBackend | None = None,
                  metrics: ServiceMetrics | None = None, max_workers: int | None = None,
                  poll: bool = True) -> tuple[grpc.Server, int]:
    """The server (not started) and the port it is bound to (address may say port 0)."""
    service = build_service(address, settings=settings, backend=backend, metrics=metrics,
                            max_workers=max_workers, poll=poll)
    return service.server, service.port


def serve(settings: Settings, port: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then drain running calls and stop."""
    service = build_service(f"[::]:{settings.server_port if port is None else port}",
                            settings=settings, max_workers=settings.server_threads)
    if settings.metrics_port:
        service.metrics.serve_http(settings.metrics_port)
    service.server.start()
    log.info("serving airtime.v1.ForecastService on port %d (%s backend)", service.port,
             settings.server_backend, extra={"port": service.port})
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:  # noqa: ANN001
        log.info("signal %d: draining calls for up to %.0fs", signum, SHUTDOWN_GRACE_SECONDS)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.stop(SHUTDOWN_GRACE_SECONDS)
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grpc_server.server",
                                     description="Serve the published forecast over gRPC.")
    parser.add_argument("--port", type=int, default=None, help="default: AIRTIME_SERVER_PORT (50051)")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        serve(settings, args.port)
        return 0

    return entrypoint.run(parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
