"""The query service process: `create_server` builds it, `serve` runs it until SIGTERM.

`python -m grpc_server.server [--port P]` (or `airtime serve`) serves the latest published
run of the warehouse named by the AIRTIME_* settings.

The server is grpc.aio on one event loop thread (`event_loop`), so no call holds a thread:
a slow reader or an idle health Watch is a suspended coroutine (docs/query-service.md,
"Under load and attack"). `SyncServer` and `Health` keep the synchronous API that `serve`,
the CLI and the tests use.

Kubernetes probes the process over plain HTTP on the metrics port (`/healthz`, `/readyz`), not
with native gRPC probes on the gRPC port: the kubelet's gRPC probe takes no TLS parameters
("Built-in probes do not support any authentication parameters (like -tls)",
https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#define-a-grpc-liveness-probe;
KEP-2727: "the kubelet probe will not allow use of client certificates nor verify the
certificate on the container", https://github.com/kubernetes/enhancements/tree/master/keps/sig-node/2727-grpc-probe),
so with AIRTIME_TLS_CERT_FILE set a gRPC probe would fail its handshake and get the pod killed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from airtime import entrypoint
from airtime.errors import ConfigError
from airtime.resources import open_warehouse, publication_store
from airtime.settings import Settings
from airtime.v1 import forecast_service_pb2 as pb
from airtime.warehouse import Warehouse
from grpc_server import http, servicer
from grpc_server.auth import Tokens
from grpc_server.backend import ForecastBackend, ServedRun, open_backend
from grpc_server.interceptors import Admission, AdmissionLimits, ServiceInterceptor
from grpc_server.ledger_metrics import LedgerMetrics
from grpc_server.loop import event_loop, on_loop
from grpc_server.metrics import ServiceMetrics
from grpc_server.queries import Limits
from grpc_server.servicer import ForecastServicer

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ForecastService"].full_name
# A gRPC health name for probes that can only speak gRPC (Cloud Run's, on an h2c port):
# SERVING once the first look at the ledger is done, as /readyz, so traffic waits for the
# latest run to load but a first deploy with nothing published still starts.
READINESS_HEALTH_NAME = "airtime.readiness"
MAX_RECEIVE_BYTES = 1 * 1024 * 1024  # requests are a few dozen bytes
MAX_SEND_BYTES = 32 * 1024 * 1024  # a max-size page is well under this
# past the drain budget: how long `stop` waits for the cut-off servers to let go
STOP_SLACK_SECONDS = 2.0
# Threads for backends that wait on I/O (the warehouse backend: a query per request).
# The snapshot backend answers on the event loop itself: a few microseconds of CPU a call.
DEFAULT_WAREHOUSE_THREADS = 16
# The snapshot backend's threads: requests naming an older run (a ledger read, maybe a load)
PINNED_RUN_THREADS = 2
# HTTP paths of the kubelet's probes on the metrics port (charts/airtime/templates/deployment.yaml)
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
# Connection hygiene (grpc core channel arguments, https://grpc.github.io/grpc/core/group__grpc__arg__keys.html)
KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_time_ms", 60_000),  # ping a quiet client every minute...
    ("grpc.keepalive_timeout_ms", 20_000),  # ...and drop its connection when no answer in 20 s
    ("grpc.keepalive_permit_without_calls", 1),
    # clients may ping at most every 30 s; more often twice: GOAWAY "too_many_pings"
    ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.max_connection_idle_ms", 300_000),  # a connection with no call for 5 min is closed
)

class SyncServer:
    """A started-later grpc.aio server with grpc.Server's synchronous start/stop."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.aio = server

    def start(self) -> None:
        on_loop(self.aio.start())

    def stop(self, grace: float | None) -> threading.Event:
        """Stop taking calls; the event is set once running calls ended (grace seconds
        at most; None: cancel them now)."""
        done = threading.Event()
        future = asyncio.run_coroutine_threadsafe(self.aio.stop(grace), event_loop())
        future.add_done_callback(lambda _f: done.set())
        return done

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return on_loop(self.aio.wait_for_termination(timeout), None)


class Health:
    """The aio health servicer, set from synchronous code (the poller's thread)."""

    def __init__(self, servicer: AioHealthServicer) -> None:
        self.servicer = servicer

    def set(self, name: str, status: int) -> None:
        on_loop(self.servicer.set(name, status))

    def enter_graceful_shutdown(self) -> None:
        on_loop(self.servicer.enter_graceful_shutdown())


@dataclass
class Service:
    server: SyncServer
    port: int
    backend: ForecastBackend
    health: Health
    metrics: ServiceMetrics
    executor: futures.ThreadPoolExecutor | None = None
    admission: Admission | None = None
    # what the HTTP/JSON gateway calls and checks: the gRPC servicer and its tokens
    forecast: ForecastServicer | None = None
    tokens: Tokens | None = None
    # the pipeline's gauges, read from the ledger (grpc_server/ledger_metrics.py)
    ledger_metrics: LedgerMetrics | None = None
    http: http.HttpServer | None = None
    started: threading.Event = field(default_factory=threading.Event)
    # the first look at the ledger is over: a run is loaded, or none is published yet
    checked: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)

    def live(self) -> bool:
        """Liveness and startup: the process is up and its gRPC server started. Never
        whether a run is published: a restart cannot publish one."""
        return self.started.is_set()

    def ready(self) -> bool:
        """Readiness: able to answer, not draining. With no run published yet the pod is
        still ready (queries answer UNAVAILABLE, the ForecastService health says
        NOT_SERVING): otherwise `helm --wait` could never finish a first install."""
        return (self.started.is_set() and self.checked.is_set() and not self.draining.is_set()
                and not (self.admission is not None and self.admission.saturated()))

    def start_http(self, settings: Settings, port: int, host: str | None = None) -> int:
        """Serve the HTTP/JSON routes of the proto's google.api.http rules on port (0: a
        free one; give a host with it), from the same servicer, tokens and TLS settings as
        gRPC, on the same event loop; the health paths of the probes are open there too.
        host None: every interface, IPv4 and IPv6 (asyncio sets IPV6_V6ONLY on a "::"
        socket, so "::" alone would refuse IPv4). Returns the port."""
        assert self.forecast is not None, "built without a servicer"
        gateway = http.HttpGateway(self.forecast, self.tokens, metrics=self.metrics,
                                   checks={LIVENESS_PATH: self.live, READINESS_PATH: self.ready})
        self.http = on_loop(http.start_http(gateway, host, port, http.tls_context(settings),
                                            shutdown_seconds=drain_phase(settings.server_drain_seconds)))
        return self.http.port

    def stop(self, grace: float | None = None) -> None:
        """Drain and stop, within `grace` seconds in all whatever clients do (None: cancel
        running calls now): readiness fails at once, both ports stop taking calls at once
        and running calls share what is left; then polling stops."""
        self.draining.set()  # /readyz fails: the endpoints controller stops sending calls
        if self.admission is not None:
            self.admission.draining = True  # a call that got in but has no request yet ends
        self.health.enter_graceful_shutdown()  # gRPC health says NOT_SERVING while draining
        budget = 0.0 if grace is None else grace
        on_loop(self._drain(grace), budget + STOP_SLACK_SECONDS)
        self.backend.close()
        if self.ledger_metrics is not None:
            self.ledger_metrics.close()
        self.metrics.close()
        if self.executor is not None:
            self.executor.shutdown(wait=False)

    async def _drain(self, grace: float | None) -> None:
        """Both servers stop at once. grpc.aio's stop(grace) waits for running calls up
        to grace, then cancels them (`grpc_server_cancel_all_calls`) and waits for them to
        end (AioServer.shutdown in grpc/_cython/_cygrpc/aio/server.pyx.pxi); aiohttp waits
        up to its shutdown_timeout for handlers, then as long again for the cancelled
        ones (aiohttp/web_protocol.py RequestHandler.shutdown), so each gets a phase of
        the budget (drain_phase) and whatever is left after it is cut off here."""
        stops = [asyncio.ensure_future(self.server.aio.stop(None if grace is None else drain_phase(grace)))]
        if self.http is not None:
            stops.append(asyncio.ensure_future(self.http.stop()))
            self.http = None
        _done, late = await asyncio.wait(stops, timeout=grace or STOP_SLACK_SECONDS)
        for task in late:
            log.warning("a server was still draining when the drain budget ran out; cutting it off")
            task.cancel()
        await asyncio.gather(*stops, return_exceptions=True)


def drain_phase(budget: float) -> float:
    """The calls' share of a drain budget: what is left is for cancelling the calls still
    running and for the process to exit (grpc and aiohttp both wait once more for the
    calls they cancel)."""
    return max(0.0, budget * 0.6)


def load_tokens(settings: Settings) -> Tokens:
    """The bearer tokens the settings configure (ConfigError when configured but empty)."""
    return Tokens.from_settings(settings)


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


def server_options(settings: Settings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ("grpc.so_reuseport", 0),  # port 0 must mean a port of our own
        ("grpc.max_concurrent_streams", settings.server_max_streams_per_connection),
        # a connection must finish its (TLS and) HTTP/2 preface and settings within this
        # (GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, grpc's default 120 s)
        ("grpc.server_handshake_timeout_ms", int(settings.server_handshake_seconds * 1000)),
        # connections end after an age (+-10% jitter, grpc's), so the clients of a
        # ClusterIP Service, which balances connections and not calls, spread again
        # over the replicas, new ones included (docs/query-service.md)
        ("grpc.max_connection_age_ms", int(settings.server_max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms", int(settings.server_max_connection_age_grace_seconds * 1000)),
        *KEEPALIVE_OPTIONS,
    ]


def backstop_calls(limits: AdmissionLimits) -> int:
    """grpc's maximum_concurrent_rpcs: room for every admitted and every waiting call, and
    as many again for calls being refused (each ends within a loop iteration or two)."""
    return 2 * (limits.max_calls + limits.max_waiting)


def build_service(address: str, *, settings: Settings, backend: ForecastBackend | None = None,
                  metrics: ServiceMetrics | None = None, max_workers: int | None = None,
                  poll: bool = True, ledger: Warehouse | None = None) -> Service:
    """Everything wired, not yet serving (call service.server.start()). With poll, the
    backend starts polling the ledger (first load included) in the background, and so do
    the ledger's metrics; without, the caller drives backend.refresh() (and
    service.ledger_metrics.refresh()). max_workers: threads for a backend that waits on
    I/O (the snapshot backend needs none). ledger: where the pipeline's metrics are read
    (default: the warehouse the backend is opened on; none with a backend given)."""
    tokens = load_tokens(settings)  # fail closed before anything listens
    credentials = _credentials(settings)
    if backend is None:
        ledger = ledger or open_warehouse(settings)
        backend = open_backend(settings, ledger, publication_store(settings))
    metrics = metrics or ServiceMetrics()
    ledger_metrics = LedgerMetrics(
        ledger, timezone=settings.timezone, deadline=settings.publish_deadline,
        interval=settings.ledger_metrics_seconds, bytes_billed_limit=settings.bq_bytes_billed_alert_per_day,
    ).register(metrics.registry)
    if getattr(backend, "blocking", True):
        threads = max_workers or DEFAULT_WAREHOUSE_THREADS
    else:
        threads = PINNED_RUN_THREADS
    executor = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc")
    limits = Limits(settings.max_range_days, settings.default_page_size, settings.max_page_size)
    forecast = ForecastServicer(backend, limits, stream_idle_seconds=settings.server_stream_idle_seconds,
                                executor=executor)

    admission = Admission(AdmissionLimits(max_calls=settings.server_max_concurrent_calls,
                                          max_waiting=settings.server_max_waiting_calls,
                                          receive_seconds=settings.server_receive_seconds), metrics)

    async def build() -> tuple[grpc.aio.Server, AioHealthServicer, int]:
        # grpc's own limit counts a call from its HEADERS, before any token is seen: it is
        # only a backstop here, above what admission lets in (interceptors.py)
        server = grpc.aio.server(options=server_options(settings),
                                 maximum_concurrent_rpcs=backstop_calls(admission.limits))
        # every service is registered through the wrapper: auth, admission, access log, metrics
        registrar = ServiceInterceptor(tokens=tokens, metrics=metrics, admission=admission).registrar(server)
        servicer.add_to_server(forecast, registrar)
        health_servicer = AioHealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
        # nothing to answer from until a run is loaded; not ready until the ledger is read
        for name in ("", SERVICE_NAME, READINESS_HEALTH_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection.aio.ReflectionServicer(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)), registrar)
        try:
            if credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, credentials)
        except RuntimeError:  # recent grpc raises where older versions returned 0
            port = 0
        return server, health_servicer, port

    server, health_servicer, port = on_loop(build())
    if port == 0:
        if executor is not None:
            executor.shutdown(wait=False)
        raise ConfigError(f"cannot listen for gRPC on {address}: the port is taken or not allowed")
    health_facade = Health(health_servicer)

    def serving(run: ServedRun | None = None) -> None:
        for name in ("", SERVICE_NAME):
            health_facade.set(name, health_pb2.HealthCheckResponse.SERVING)
        if run is not None:
            metrics.run_served(run)

    backend.add_listener(serving)
    if backend.ready():
        serving(backend.served())
    if poll:
        backend.start()
        ledger_metrics.start()
    service = Service(SyncServer(server), port, backend, health_facade, metrics, executor, admission,
                      forecast=forecast, tokens=tokens, ledger_metrics=ledger_metrics)
    metrics.ready.set_function(lambda: float(service.ready()))  # memory only: scrapes run on the loop
    return service


def create_server(address: str, *, settings: Settings, backend: ForecastBackend | None = None,
                  metrics: ServiceMetrics | None = None, max_workers: int | None = None,
                  poll: bool = True) -> tuple[SyncServer, int]:
    """The server (not started; start() and stop(grace).wait() as grpc.Server's) and the
    port it is bound to (address may say port 0)."""
    service = build_service(address, settings=settings, backend=backend, metrics=metrics,
                            max_workers=max_workers, poll=poll)
    return service.server, service.port


def check_port_free(port: int, name: str, flag: str) -> None:
    """ConfigError in one line when the port cannot be listened on (taken, privileged).
    For the gRPC port this runs before grpc binds: grpc's C core logs its own error lines
    on stderr before Python sees the failure."""
    if port == 0:
        return
    try:
        try:  # the wildcard both servers bind: [::] (dual stack), or 0.0.0.0 without IPv6
            probe, host = socket.socket(socket.AF_INET6), "::"
        except OSError:
            probe, host = socket.socket(socket.AF_INET), "0.0.0.0"
        with probe:
            if probe.family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            # as grpc and http.server do: a port left in TIME_WAIT by a restart is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on the {name} port {port}: {exc.strerror} ({flag})") from None


def _first_check(service: Service) -> None:
    """Look at the ledger once (loading the latest run, if any), then start polling."""
    try:
        service.backend.refresh()
    except Exception:  # noqa: BLE001 - the poller retries; queries answer UNAVAILABLE meanwhile
        log.warning("first look at the ledger failed; retrying every poll", exc_info=True)
    finally:
        service.checked.set()
        # after a drain began the health servicer ignores this: it stays NOT_SERVING
        service.health.set(READINESS_HEALTH_NAME, health_pb2.HealthCheckResponse.SERVING)
    service.backend.start()
    if service.ledger_metrics is not None:
        service.ledger_metrics.start()


def serve(settings: Settings, port: int | None = None, http_port: int | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then drain running calls and stop. With http_port,
    the HTTP/JSON routes too (grpc_server/http.py)."""
    port = settings.server_port if port is None else port
    check_port_free(port, "gRPC", "AIRTIME_SERVER_PORT or --port")
    if http_port:
        check_port_free(http_port, "HTTP", "--http-port")
    if settings.metrics_port:
        check_port_free(settings.metrics_port, "metrics", "AIRTIME_METRICS_PORT or --metrics-port")
    service = build_service(f"[::]:{port}", settings=settings,
                            max_workers=settings.server_threads, poll=False)
    try:
        if settings.metrics_port:
            try:
                service.metrics.serve_http(settings.metrics_port, checks={
                    LIVENESS_PATH: service.live, READINESS_PATH: service.ready})
            except OSError as exc:  # taken since the check above
                raise ConfigError(f"cannot listen on the metrics port {settings.metrics_port}:"
                                  f" {exc.strerror} (AIRTIME_METRICS_PORT or --metrics-port)") from None
        service.server.start()
        if http_port is not None:
            try:
                http_port = service.start_http(settings, http_port)
            except OSError as exc:  # taken since the check above
                raise ConfigError(f"cannot listen on the HTTP port {http_port}: {exc.strerror}"
                                  " (--http-port)") from None
    except BaseException:
        service.stop(None)
        raise
    service.started.set()
    threading.Thread(target=_first_check, args=(service,), name="first-check", daemon=True).start()
    log.info("serving airtime.v1.ForecastService on port %d (%s backend)", service.port,
             settings.server_backend, extra={"port": service.port})
    if http_port is not None:
        log.info("serving its HTTP/JSON routes on port %d", http_port, extra={"http_port": http_port})
    stopping = threading.Event()

    def on_signal(signum: int, _frame) -> None:  # noqa: ANN001
        service.draining.set()  # readiness fails now, not at the main thread's next wake-up
        log.info("signal %d: draining calls for up to %.0fs", signum, settings.server_drain_seconds)
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        service.stop(settings.server_drain_seconds)
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grpc_server.server",
                                     description="Serve the published forecast over gRPC.")
    parser.add_argument("--port", type=int, default=None, help="default: AIRTIME_SERVER_PORT (50051)")
    parser.add_argument("--http-port", type=int, default=None,
                        help="also serve the HTTP/JSON routes of the proto's google.api.http rules")

    def body(settings: Settings, args: argparse.Namespace) -> int:
        serve(settings, args.port, http_port=args.http_port)
        return 0

    return entrypoint.run(parser, body, argv)


if __name__ == "__main__":
    sys.exit(main())
