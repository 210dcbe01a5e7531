"""What every call goes through (grpc.aio): bearer-token check, access log line, metrics.

Handlers are wrapped in coroutines (or async generators) of the same kind as the ones
they wrap, so a stream that waits (health Watch, a StreamSlots whose reader is slow)
waits on the event loop and holds no thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable

import grpc

from grpc_server.auth import Tokens, bearer
from grpc_server.metrics import ServiceMetrics

access_log = logging.getLogger("grpc_server.access")

# Open without a token: the unary health check only. It answers a status word from
# memory, and callers that hold no token need it (grpcurl by hand, a load balancer's or
# mesh's gRPC health check). The kubelet needs nothing here: its probes are HTTP on the
# metrics port (server.py). Health Watch is a stream that lives as long as the client
# wants: it needs a token like every other stream.
AUTH_EXEMPT_METHODS = frozenset({"/grpc.health.v1.Health/Check"})

Finish = Callable[[str, grpc.aio.ServicerContext, float, "bool | None"], None]


class ServiceInterceptor:
    """Wraps each method handler once, where it is registered (`registrar`), rather than
    as a grpc.aio.ServerInterceptor: an aio interceptor costs a coroutine chain on every
    call, measured at 5-30% of a small query's throughput."""

    def __init__(self, *, tokens: Tokens | None = None, metrics: ServiceMetrics | None = None) -> None:
        self._tokens = tokens if tokens is not None and tokens.enabled else None
        self._metrics = metrics

    def registrar(self, server: grpc.aio.Server) -> Registrar:
        """What to register services with, in place of the server: handlers come wrapped."""
        return Registrar(server, self)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        check = None if self._tokens is None or method in AUTH_EXEMPT_METHODS else self._authorized
        return _wrap(handler, method, check, self._finish)

    def _authorized(self, context: grpc.aio.ServicerContext) -> bool:
        assert self._tokens is not None
        return self._tokens.accepts(bearer(context.invocation_metadata()))

    def _finish(self, method: str, context: grpc.aio.ServicerContext, started: float,
                failed: bool | None) -> None:
        """failed: False when the handler returned, True when it raised, None when it was
        cancelled (the client went away, or the server stopped)."""
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
        if access_log.isEnabledFor(logging.INFO):
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


async def _deny(context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


def _wrap(handler: grpc.RpcMethodHandler, method: str,
          check: Callable[[grpc.aio.ServicerContext], bool] | None, finish: Finish) -> grpc.RpcMethodHandler:
    serializers = dict(request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)
    if handler.unary_unary or handler.stream_unary:
        behavior = handler.unary_unary or handler.stream_unary

        async def unary(request, context):  # noqa: ANN001, ANN202
            started, failed = time.perf_counter(), True
            try:
                if check is not None and not check(context):
                    await _deny(context)
                response = behavior(request, context)
                if inspect.isawaitable(response):
                    response = await response
                failed = False
                return response
            except asyncio.CancelledError:
                failed = None
                raise
            finally:
                finish(method, context, started, failed)

        factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                   else grpc.stream_unary_rpc_method_handler)
        return factory(unary, **serializers)

    behavior = handler.unary_stream or handler.stream_stream
    factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
               else grpc.stream_stream_rpc_method_handler)
    if inspect.isasyncgenfunction(behavior):  # answers by yielding (reflection)

        async def generating(request, context):  # noqa: ANN001, ANN202
            started, failed = time.perf_counter(), True
            try:
                if check is not None and not check(context):
                    await _deny(context)
                async for response in behavior(request, context):
                    yield response
                failed = False
            except asyncio.CancelledError:
                failed = None
                raise
            finally:
                finish(method, context, started, failed)

        return factory(generating, **serializers)

    async def writing(request, context):  # noqa: ANN001, ANN202 - answers with context.write
        started, failed = time.perf_counter(), True
        try:
            if check is not None and not check(context):
                await _deny(context)
            done = behavior(request, context)
            if inspect.isawaitable(done):
                await done
            failed = False
        except asyncio.CancelledError:
            failed = None
            raise
        finally:
            finish(method, context, started, failed)

    return factory(writing, **serializers)
