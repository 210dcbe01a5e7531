"""What every call goes through: bearer-token check, access log line, metrics."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable

import grpc

from grpc_server.metrics import ServiceMetrics

access_log = logging.getLogger("grpc_server.access")

# Kubernetes probes carry no token: health checking stays open
AUTH_EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


class ServiceInterceptor(grpc.ServerInterceptor):
    def __init__(self, *, tokens: Iterable[str] = (), metrics: ServiceMetrics | None = None) -> None:
        self._tokens = [t.encode() for t in tokens if t]
        self._metrics = metrics
        # wrapped handlers, built once per (method, allowed): this runs on every call
        self._handlers: dict[tuple[str, bool], grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, details):  # noqa: ANN001, ANN201 - grpc's signature
        method = details.method
        allowed = (not self._tokens or method.startswith(AUTH_EXEMPT_PREFIXES)
                   or self._authorized(details.invocation_metadata))
        wrapped = self._handlers.get((method, allowed))
        if wrapped is None:
            handler = continuation(details)
            if handler is None:
                return None
            wrapped = self._handlers[(method, allowed)] = _wrap(handler, method, allowed, self._finish)
        return wrapped

    def _authorized(self, metadata) -> bool:  # noqa: ANN001 - sequence of (key, value)
        given = b""
        for key, value in metadata or ():
            if key == "authorization":
                text = value if isinstance(value, str) else value.decode(errors="replace")
                if text.startswith("Bearer "):
                    given = text[len("Bearer "):].strip().encode()
        if not given:
            return False
        # compare with every token, without stopping early: the time taken says nothing
        ok = False
        for token in self._tokens:
            ok |= hmac.compare_digest(token, given)
        return ok

    def _finish(self, method: str, context: grpc.ServicerContext, started: float,
                failed: bool) -> None:
        seconds = time.perf_counter() - started
        code = context.code()
        if code is None and failed:
            # a stream the client abandoned ends in GeneratorExit, not in an error
            code = grpc.StatusCode.CANCELLED if not context.is_active() else grpc.StatusCode.UNKNOWN
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


def _deny(context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


def _wrap(handler: grpc.RpcMethodHandler, method: str, allowed: bool,
          finish: Callable[[str, grpc.ServicerContext, float, bool], None]) -> grpc.RpcMethodHandler:
    if handler.unary_unary or handler.stream_unary:
        behavior = handler.unary_unary or handler.stream_unary

        def unary(request, context):  # noqa: ANN001, ANN202
            started, failed = time.perf_counter(), True
            try:
                if not allowed:
                    _deny(context)
                response = behavior(request, context)
                failed = False
                return response
            finally:
                finish(method, context, started, failed)

        factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary
                   else grpc.stream_unary_rpc_method_handler)
        return factory(unary, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)

    behavior = handler.unary_stream or handler.stream_stream

    def streaming(request, context):  # noqa: ANN001, ANN202
        started, failed = time.perf_counter(), True
        try:
            if not allowed:
                _deny(context)
            yield from behavior(request, context)
            failed = False
        finally:
            finish(method, context, started, failed)

    factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream
               else grpc.stream_stream_rpc_method_handler)
    return factory(streaming, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)
