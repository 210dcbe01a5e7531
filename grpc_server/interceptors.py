"""What every call goes through (grpc.aio): bearer-token check, admission, access log, metrics.

No capacity before a token. grpc.aio calls a handler whose request is a single message
only once that message has arrived (`_handle_unary_unary_rpc` and `_handle_unary_stream_rpc`
await `_receive_message` before anything else; grpc/grpc
src/python/grpcio/grpc/_cython/_cygrpc/aio/server.pyx.pxi), while a handler whose request is
a stream is called as soon as the call's HEADERS are in (`_handle_stream_unary_rpc`,
`_handle_stream_stream_rpc` hand it a `_MessageReceiver` and read nothing). So every
method is registered here as request-streaming, whatever its proto says: on the wire a
unary request is the same length-prefixed message, and the wrapper decides in this order,
from the metadata alone and before reading a byte of the body:
1. the token: a call without a valid one ends UNAUTHENTICATED at once, holding nothing
   (and costing no access-log line: a flood of them would be a bill, see below);
2. the request message, read under a deadline (`receive_seconds`) among a bounded set of
   waiting calls: past `max_waiting` the oldest waiting call is dropped, so a client that
   opens streams and withholds their messages can hold waiting places, never the calls of
   others; a body that is no valid message is INVALID_ARGUMENT, from our own parse;
3. a call slot (`max_calls` answered at once, our own count, not grpc's
   `maximum_concurrent_rpcs`, which counts a call from its HEADERS:
   `_ConcurrentRpcLimiter.check_before_request_call` runs when the call is requested,
   same file): past it RESOURCE_EXHAUSTED, and readiness reports the pod saturated.
Refusals, for a limit or for want of a token, are counted (`airtime_grpc_refused_total{reason}`,
and `airtime_grpc_requests_total` by code as every call) and logged at most once per
`REFUSAL_LOG_SECONDS` per reason, with how many were left unsaid: one access-log line per
refused call would let anyone write the log (and its bill) as fast as they can send HEADERS.

Handlers are wrapped in coroutines (or async generators) of the same kind as the ones
they wrap, so a stream that waits (health Watch, a StreamSlots whose reader is slow)
waits on the event loop and holds no thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from grpc_server.auth import Tokens, bearer
from grpc_server.metrics import ServiceMetrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("grpc_server.access")

# Open without a token: the unary health check only. It answers a status word from
# memory, and callers that hold no token need it (grpcurl by hand, a load balancer's or
# mesh's gRPC health check). The kubelet needs nothing here: its probes are HTTP on the
# metrics port (server.py). Health Watch is a stream that lives as long as the client
# wants: it needs a token like every other stream.
AUTH_EXEMPT_METHODS = frozenset({"/grpc.health.v1.Health/Check"})

REFUSAL_LOG_SECONDS = 10.0  # one log line per reason and period, however many refusals
SATURATION_SECONDS = 5.0  # readiness fails while calls were refused for slots this recently

# reasons of airtime_grpc_refused_total
BUSY = "busy"  # every call slot taken
RECEIVE_TIMEOUT = "receive_timeout"  # the request message did not arrive in time
CROWDED_OUT = "crowded_out"  # dropped from a full set of calls waiting for their message
DRAINING = "draining"  # the server is shutting down
UNAUTHENTICATED = "unauthenticated"  # no valid token: refused as the headers arrive

Finish = Callable[[str, grpc.aio.ServicerContext, float, "bool | None"], None]


@dataclass(frozen=True)
class AdmissionLimits:
    max_calls: int = 1000
    max_waiting: int = 1000
    receive_seconds: float = 10.0


class Refused(Exception):
    """A call refused before any work: its status and the reason counted."""

    def __init__(self, reason: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.reason, self.code, self.details = reason, code, details


class Admission:
    """The call slots and the waiting room (see the module's docstring). Runs on the
    event loop only: no lock."""

    def __init__(self, limits: AdmissionLimits = AdmissionLimits(),
                 metrics: ServiceMetrics | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._metrics = metrics
        self._clock = clock
        self.in_flight = 0
        # calls waiting for their request message, oldest first (dicts keep insertion order)
        self._waiting: dict[int, asyncio.Timeout] = {}
        self._crowded: set[int] = set()
        self._last_busy = float("-inf")
        self._logged: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}
        self.draining = False
        if metrics is not None:  # read at scrape time: nothing to do per call
            metrics.calls_in_flight.set_function(lambda: self.in_flight)
            metrics.calls_waiting.set_function(lambda: len(self._waiting))

    # -- readiness -----------------------------------------------------------------------

    def saturated(self) -> bool:
        """Every slot taken now, or a call refused for want of one in the last few
        seconds: readiness fails, so the Service stops sending this pod new calls."""
        return (self.in_flight >= self.limits.max_calls
                or self._clock() - self._last_busy < SATURATION_SECONDS)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # -- the request message -------------------------------------------------------------

    async def receive(self, requests: AsyncIterator[bytes], key: int) -> bytes | None:
        """The call's one request message (raw bytes; None when the client sent none),
        or Refused when it does not come in time or the call was crowded out."""
        if self.draining:
            raise self._refuse(DRAINING, grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        try:
            async with asyncio.timeout(self.limits.receive_seconds) as deadline:
                self._waiting[key] = deadline
                if len(self._waiting) > self.limits.max_waiting:
                    self._crowd_out_oldest()
                try:
                    return await anext(requests)
                except StopAsyncIteration:
                    return None
        except TimeoutError:
            if key in self._crowded:
                raise self._refuse(CROWDED_OUT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   "too many calls are waiting for their request message") from None
            raise self._refuse(RECEIVE_TIMEOUT, grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"the request message did not arrive within {self.limits.receive_seconds:g}s"
                               ) from None
        finally:
            self._waiting.pop(key, None)
            self._crowded.discard(key)

    def _crowd_out_oldest(self) -> None:
        oldest = next(iter(self._waiting))
        self._crowded.add(oldest)
        # its `asyncio.timeout` fires on the next loop iteration: TimeoutError in its task
        self._waiting.pop(oldest).reschedule(asyncio.get_running_loop().time())

    # -- call slots ----------------------------------------------------------------------

    def enter(self) -> None:
        """Take a call slot, or Refused."""
        if self.in_flight >= self.limits.max_calls:
            self._last_busy = self._clock()
            raise self._refuse(BUSY, grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"the server is answering {self.limits.max_calls} calls already; retry with backoff")
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    # -- refusals ------------------------------------------------------------------------

    def unauthenticated(self) -> Refused:
        return self._refuse(UNAUTHENTICATED, grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

    def _refuse(self, reason: str, code: grpc.StatusCode, details: str) -> Refused:
        if self._metrics is not None:
            self._metrics.refused.labels(reason).inc()
        now = self._clock()
        if now - self._logged.get(reason, float("-inf")) >= REFUSAL_LOG_SECONDS:
            unsaid = self._unsaid.pop(reason, 0)
            self._logged[reason] = now
            log.warning("call refused (%s): %s%s", reason, details,
                        f" ({unsaid} more since the last line)" if unsaid else "",
                        extra={"reason": reason, "refused_unlogged": unsaid})
        else:
            self._unsaid[reason] = self._unsaid.get(reason, 0) + 1
        return Refused(reason, code, details)


class ServiceInterceptor:
    """Wraps each method handler once, where it is registered (`registrar`), rather than
    as a grpc.aio.ServerInterceptor: an aio interceptor costs a coroutine chain on every
    call, measured at 5-30% of a small query's throughput."""

    def __init__(self, *, tokens: Tokens | None = None, metrics: ServiceMetrics | None = None,
                 admission: Admission | None = None) -> None:
        self._tokens = tokens if tokens is not None and tokens.enabled else None
        self._metrics = metrics
        self.admission = admission or Admission(metrics=metrics)

    def registrar(self, server: grpc.aio.Server) -> Registrar:
        """What to register services with, in place of the server: handlers come wrapped."""
        return Registrar(server, self)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        check = None if self._tokens is None or method in AUTH_EXEMPT_METHODS else self._authorized
        return _wrap(handler, method, check, self.admission, self._finish)

    def _authorized(self, context: grpc.aio.ServicerContext) -> bool:
        assert self._tokens is not None
        return self._tokens.accepts(bearer(context.invocation_metadata()))

    def _finish(self, method: str, context: grpc.aio.ServicerContext, started: float,
                failed: bool | None, refused: Refused | None = None) -> None:
        """failed: False when the handler returned, True when it raised, None when it was
        cancelled (the client went away, or the server stopped). A call refused for a
        limit or without a token is counted but not access-logged: Admission logs those,
        rate-limited."""
        seconds = time.perf_counter() - started
        code = context.code()
        if code is None and failed is None:
            code = grpc.StatusCode.CANCELLED
        elif code is None and failed:
            code = grpc.StatusCode.CANCELLED if context.cancelled() else grpc.StatusCode.UNKNOWN
        elif code is None:
            code = grpc.StatusCode.OK
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        if self._metrics is not None:
            self._metrics.observe(method, name, seconds)
        if refused is None and access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "%s %s %.2fms", method, name, seconds * 1000,
                # field names of airtime.logs' JSON lines
                extra={"method": method, "code": name,
                       "duration_ms": round(seconds * 1000, 3), "peer": context.peer()},
            )


class Registrar:
    """Stands for the server in generated `add_*Servicer_to_server` functions."""

    def __init__(self, server: grpc.aio.Server, wrapper: ServiceInterceptor) -> None:
        self._server = server
        self._wrapper = wrapper

    def _wrapped(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> dict:
        return {name: self._wrapper.wrap(f"/{service}/{name}", handler) for name, handler in handlers.items()}

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(service, self._wrapped(service, handlers))

    def add_generic_rpc_handlers(self, generic_handlers) -> None:  # noqa: ANN001
        for generic in generic_handlers:
            # grpc's method_handlers_generic_handler: its service name and handlers are known
            service, handlers = generic.service_name(), generic._method_handlers  # noqa: SLF001
            self._server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(service, self._wrapped(service, handlers)),))


class _Call:
    """One call's way through the checks, shared by the handler shapes below."""

    __slots__ = ("admitted", "failed", "refused", "started")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.failed: bool | None = True
        self.refused: Refused | None = None
        self.admitted = False


def _wrap(handler: grpc.RpcMethodHandler, method: str,
          check: Callable[[grpc.aio.ServicerContext], bool] | None, admission: Admission,
          finish: Callable[..., None]) -> grpc.RpcMethodHandler:
    """The handler, re-registered request-streaming (see the module's docstring)."""
    parse = handler.request_deserializer
    streaming_request = handler.request_streaming
    serializer = handler.response_serializer

    async def admit(call: _Call, requests: AsyncIterator, context: grpc.aio.ServicerContext):  # noqa: ANN202
        """The request (or the request stream), once the call may hold a slot."""
        if check is not None and not check(context):
            call.refused = admission.unauthenticated()
            await context.abort(call.refused.code, call.refused.details)
        if streaming_request:
            request = _parsed(requests, parse)
        else:
            try:
                raw = await admission.receive(requests, id(call))
            except Refused as refused:
                call.refused = refused
                await context.abort(refused.code, refused.details)
            if raw is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call carries no request message")
            try:
                request = parse(raw) if parse is not None else raw
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"the request is not a valid {method.rsplit('/', 1)[-1]} request: {exc}")
        try:
            admission.enter()
        except Refused as refused:
            call.refused = refused
            await context.abort(refused.code, refused.details)
        call.admitted = True
        return request

    def done(call: _Call, context: grpc.aio.ServicerContext) -> None:
        if call.admitted:
            admission.leave()
        finish(method, context, call.started, call.failed, call.refused)

    if not handler.response_streaming:
        behavior = handler.unary_unary or handler.stream_unary

        async def unary(requests, context):  # noqa: ANN001, ANN202
            call = _Call()
            try:
                request = await admit(call, requests, context)
                response = behavior(request, context)
                if inspect.isawaitable(response):
                    response = await response
                call.failed = False
                return response
            except asyncio.CancelledError:
                call.failed = None
                raise
            finally:
                done(call, context)

        return grpc.stream_unary_rpc_method_handler(unary, response_serializer=serializer)

    behavior = handler.unary_stream or handler.stream_stream
    if inspect.isasyncgenfunction(behavior):  # answers by yielding (reflection)

        async def generating(requests, context):  # noqa: ANN001, ANN202
            call = _Call()
            try:
                request = await admit(call, requests, context)
                async for response in behavior(request, context):
                    yield response
                call.failed = False
            except asyncio.CancelledError:
                call.failed = None
                raise
            finally:
                done(call, context)

        return grpc.stream_stream_rpc_method_handler(generating, response_serializer=serializer)

    async def writing(requests, context):  # noqa: ANN001, ANN202 - answers with context.write
        call = _Call()
        try:
            request = await admit(call, requests, context)
            finished = behavior(request, context)
            if inspect.isawaitable(finished):
                await finished
            call.failed = False
        except asyncio.CancelledError:
            call.failed = None
            raise
        finally:
            done(call, context)

    return grpc.stream_stream_rpc_method_handler(writing, response_serializer=serializer)


async def _parsed(requests: AsyncIterator[bytes], parse: Callable[[bytes], object] | None) -> AsyncIterator:
    """A request stream's messages, parsed (the handler was registered without a
    deserializer, like every other)."""
    async for raw in requests:
        yield parse(raw) if parse is not None else raw
