"""The probe and metrics port: Prometheus's /metrics and the kubelet's /healthz and /readyz,
plaintext HTTP/1.1 served by aiohttp on the process's one event loop (grpc_server/loop.py),
beside gRPC and the HTTP/JSON gateway. A connection is a coroutine and a few KiB, never a
thread: the former http.server port held one thread per connection, and its timeout was per
recv, so 200 clients trickling a byte a second held 200 threads for 100 s.

Every connection is under a deadline of its own, whatever its pace (`_Deadline`):
- REQUEST_SECONDS from a request's first byte to its answer, reading the request line and
  headers included;
- IDLE_SECONDS with no request under way (after the connection opens, or after an answer,
  whose writing it also bounds): keep-alive.
Then the connection is aborted. aiohttp has no such bound of its own in most of the versions
pyproject allows: its `keepalive_timeout` ("Number of seconds before closing Keep-Alive
connection", docs/web_reference.rst) closes a connection only while it waits for a next
request, and through 3.14.3 that timer started after the first answer, so a first request
trickled a byte at a time was never cut (web_protocol.py, `RequestHandler.connection_made`,
`start` and `_process_keepalive`, on the 3.14 branch of https://github.com/aio-libs/aiohttp).
3.14.5 also arms it when a connection opens ("protection against a dead connection that
doesn't send a request at all", aio-libs/aiohttp#13681), but that is the keep-alive timer
standing in for a request deadline, it never bounds the writing of an answer nobody reads
(the timer closes nothing while a request is being handled), and the slow-request timeout
aiohttp once had was dropped in 3.0 (CHANGES.rst, aio-libs/aiohttp#2500). So the deadline is a
thin asyncio.Protocol around aiohttp's: aiohttp.web.Server "serves a protocol factory role
for asyncio.loop.create_server()" (https://docs.aiohttp.org/en/stable/web_lowlevel.html), and
the wrapper only forwards the protocol's callbacks: the deadline relies on nothing inside
aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

# A probe or a scrape sends its request in one segment and is answered in microseconds: a few
# seconds is generous for either, and short enough that slow clients cannot pile up.
REQUEST_SECONDS = 5.0
# Kubelet probes do not keep connections alive; a scrape every 15-60 s reconnects anyway.
IDLE_SECONDS = 5.0
# The gateway's line limit (http.py); fewer headers: a probe or a scrape sends under ten.
MAX_LINE_BYTES = 8 * 1024  # the request line and each header
MAX_HEADERS = 32
TEXT = "text/plain; charset=utf-8"


class _Deadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind a deadline that always runs: armed for
    IDLE_SECONDS when the connection opens and when a request is answered, for
    REQUEST_SECONDS by the first byte that arrives while idle. Only a complete request,
    answered, re-arms it for longer than the bytes already sent, so no pace keeps a
    connection open. Abort, not close: close() would wait to flush an answer to a client
    that never reads it."""

    def __init__(self, inner: asyncio.Protocol, connections: dict[asyncio.BaseTransport, _Deadline]) -> None:
        self._inner = inner
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._busy = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._connections[transport] = self
        self._arm(IDLE_SECONDS)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._busy:
            self._busy = True
            self._arm(REQUEST_SECONDS)
        self._inner.data_received(data)

    def answered(self) -> None:
        """The handler has its answer: back to idle (the answer's writing and the next
        request's start get IDLE_SECONDS)."""
        self._busy = False
        self._arm(IDLE_SECONDS)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._connections.pop(self.transport, None)
        self._inner.connection_lost(exc)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _arm(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(seconds, self.abort)


class _ServerLog(logging.LoggerAdapter):
    """aiohttp logs a malformed request (a line or header over the limits, not HTTP at all)
    with logger.exception: a traceback at ERROR for the client's mistake, as many as an
    attacker opens connections. Those are one DEBUG line here; anything else (a bug in a
    handler) keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.debug(f"{msg}: %d %r", *args, exc_info.code, exc_info.message, **kwargs)
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)


class ProbeServer:
    """The probe port, serving on the running loop: /metrics, and each path of `checks`."""

    def __init__(self, registry: CollectorRegistry, checks: Mapping[str, Callable[[], bool]]) -> None:
        self._registry = registry
        self._checks = dict(checks)
        self._connections: dict[asyncio.BaseTransport, _Deadline] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: a free port) and return the port. A taken port raises
        OSError before anything is served."""
        web_server = web.Server(
            self._answer, access_log=None, logger=_ServerLog(log, {}),
            # aiohttp's own keep-alive agrees with the deadline. lingering_time=0: no reading
            # of a body sent with a GET after its answer ("Use 0 to disable lingering",
            # web_reference.rst), the connection closes with the answer instead
            keepalive_timeout=IDLE_SECONDS, lingering_time=0,
            max_line_size=MAX_LINE_BYTES, max_field_size=MAX_LINE_BYTES, max_headers=MAX_HEADERS)
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Deadline(web_server(), self._connections), host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and drop every connection: probes and scrapes have nothing to
        finish that a retry would not redo."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections.values()):
            connection.abort()
        await self._server.wait_closed()
        self._server = None

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return self._response(request)
        finally:
            connection = self._connections.get(request.transport)  # type: ignore[arg-type]
            if connection is not None:
                connection.answered()

    def _response(self, request: web.BaseRequest) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"})
        path = request.rel_url.raw_path
        if path == "/metrics":
            encoder, content_type = choose_encoder(request.headers.get("Accept"))
            return web.Response(body=encoder(self._registry), headers={"Content-Type": content_type})
        check = self._checks.get(path)
        if check is None:
            return web.Response(status=404, body=b"not found\n", headers={"Content-Type": TEXT})
        ok = check()  # on the loop: a check answers from memory (threading.Event and the like)
        return web.Response(status=200 if ok else 503, body=b"ok\n" if ok else b"unavailable\n",
                            headers={"Content-Type": TEXT})
