"""HTTP/JSON beside gRPC (`airtime serve --http-port`), transcoded from the proto's own rules.

Nothing here names a route or a field: every route comes from the `google.api.http` option
of a ForecastService method (read from the generated descriptor, the same rules that go to
Cloud Endpoints in proto/airtime_descriptor.pb), and the request is built, and the answer
printed, with protobuf's standard JSON mapping. The call then goes to the very servicer
methods gRPC calls, so the HTTP surface cannot drift from what ESPv2 transcodes in
production. What is followed, from google/api/http.proto (googleapis-common-protos):
- path variables are single fields, percent-decoded; every other field is a query
  parameter named by its field path; repeated primitives repeat the parameter;
- a server stream is one JSON array of its messages, as Envoy's gRPC-JSON transcoder (ESPv2)
  sends it ("it returns an array of messages for stream response parameters",
  https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/grpc_json_transcoder_filter);
- answers in lowerCamelCase, default values left out: the transcoder's default print
  options (`preserve_proto_field_names`, `always_print_primitive_fields` false, same page).
A query parameter that is no field of the request is a 400 naming it. Envoy's transcoder
does not transcode such a request at all unless its `ignored_query_parameters` /
`ignore_unknown_query_parameters` options say so (fields of
envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder; the default restated
in https://www.alibabacloud.com/help/en/asm/user-guide/asmgrpcjsontranscoder-crd-description):
either way the typo is not silently dropped.

Errors are the `google.rpc.Status` of the gRPC call, as JSON (`code`, `message`, `details`
with `@type`), under the HTTP status Google maps each code to (HTTP_STATUS below).

aiohttp because the gRPC server is grpc.aio: both serve from the one event loop of the
process (server.event_loop), a snapshot answer costs no thread on either, and aiohttp is the
asyncio HTTP server with the longest record (aio-libs, maintained since 2013).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from google.api import annotations_pb2
from google.protobuf import json_format, message
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.rpc import code_pb2, error_details_pb2, status_pb2

from airtime.logs import escape
from airtime.query_rules import InvalidQueryError
from airtime.settings import Settings
from airtime.v1 import forecast_service_pb2 as pb
from grpc_server.auth import Tokens, bearer
from grpc_server.errors import status_of as _status_of
from grpc_server.metrics import ServiceMetrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("grpc_server.access")

SERVICE = pb.DESCRIPTOR.services_by_name["ForecastService"]

# gRPC code -> HTTP status, as google/rpc/code.proto's "HTTP Mapping" comments say
# (googleapis-common-protos 1.76, google/rpc/code.proto lines 35-184;
# https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto).
# tests/unit/test_http_rules.py reads that file and checks this table against it.
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}

# Limits. Requests are GETs of a few hundred bytes: anything past these is not ours.
MAX_BODY_BYTES = 64 * 1024
MAX_LINE_BYTES = 8 * 1024  # request line (the URL with its query) and each header
MAX_HEADERS = 64
KEEPALIVE_SECONDS = 75.0  # an idle keep-alive connection is closed after this
UNARY_TIMEOUT_SECONDS = 30.0  # a unary answer not ready by then: 504 DEADLINE_EXCEEDED
SHUTDOWN_GRACE_SECONDS = 10.0  # running calls' time to finish at stop (the gRPC server's)
JSON_TYPE = "application/json"

_SCALAR_PARSERS: dict[int, Callable[[str], object]] = {
    FieldDescriptor.TYPE_STRING: str,
    FieldDescriptor.TYPE_INT32: int, FieldDescriptor.TYPE_INT64: int,
    FieldDescriptor.TYPE_SINT32: int, FieldDescriptor.TYPE_SINT64: int,
    FieldDescriptor.TYPE_SFIXED32: int, FieldDescriptor.TYPE_SFIXED64: int,
    FieldDescriptor.TYPE_UINT32: int, FieldDescriptor.TYPE_UINT64: int,
    FieldDescriptor.TYPE_FIXED32: int, FieldDescriptor.TYPE_FIXED64: int,
    FieldDescriptor.TYPE_DOUBLE: float, FieldDescriptor.TYPE_FLOAT: float,
}


# -- the routes, from the rules ----------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str  # GET, POST, ...
    template: str  # the rule's path template, e.g. /v1/programs/{program_code}/slots
    pattern: re.Pattern[str]  # matches the raw (still percent-encoded) path
    variables: tuple[str, ...]  # field path of each group of pattern, in order
    rpc: MethodDescriptor
    body: str  # the rule's `body`: "" (none), "*" or a field

    @property
    def request_class(self) -> type[message.Message]:
        return getattr(pb, self.rpc.input_type.name)

    @property
    def response_class(self) -> type[message.Message]:
        return getattr(pb, self.rpc.output_type.name)


def http_rules(method: MethodDescriptor) -> list[Any]:
    """The method's google.api.http rule and its additional_bindings (none: [])."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule = options.Extensions[annotations_pb2.http]
    return [rule, *rule.additional_bindings]


def rule_verb_and_path(rule: Any) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), getattr(rule, kind)


_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?:=([^}]*))?\}")


def _segments_regex(segments: str) -> str:
    parts = []
    for segment in segments.split("/"):
        if segment == "*":
            parts.append("[^/]+")
        elif segment == "**":
            parts.append(".+")
        else:
            parts.append(re.escape(segment))
    return "/".join(parts)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A path template (http.proto's "Path template syntax") as a regex over the raw path,
    with one group per variable, and the variables' field paths."""
    if not template.startswith("/"):
        raise ValueError(f"path template {template!r} does not start with /")
    body, verb = template, ""
    last = template.rsplit("/", 1)[1]
    if ":" in last and "}" not in last.split(":", 1)[1]:  # a `:verb` after the last segment
        body, verb = template[: len(template) - len(last)] + last.split(":", 1)[0], last.split(":", 1)[1]
    regex, variables, position = "", [], 0
    for found in _VARIABLE.finditer(body):
        regex += _segments_regex(body[position:found.start()])
        variables.append(found.group(1))
        regex += f"({_segments_regex(found.group(2) or '*')})"
        position = found.end()
    regex += _segments_regex(body[position:])
    if verb:
        regex += re.escape(":" + verb)
    return re.compile(regex), tuple(variables)


def service_routes(service: ServiceDescriptor = SERVICE) -> list[Route]:
    routes = []
    for method in service.methods:
        for rule in http_rules(method):
            verb, template = rule_verb_and_path(rule)
            pattern, variables = compile_template(template)
            routes.append(Route(verb, template, pattern, variables, method, rule.body))
    return routes


# -- requests: path and query into the request message ----------------------------------

def _field(msg_descriptor, path: str) -> list[FieldDescriptor] | None:  # noqa: ANN001
    """The chain of fields of a field path (by proto or JSON name), or None."""
    chain, descriptor = [], msg_descriptor
    for name in path.split("."):
        if descriptor is None:
            return None
        field = descriptor.fields_by_name.get(name) or next(
            (f for f in descriptor.fields if f.json_name == name), None)
        if field is None:
            return None
        chain.append(field)
        descriptor = field.message_type
    return chain


def _set(request: message.Message, path: str, text: str, violations: list[tuple[str, str]]) -> None:
    """Set the field at path from its text, as the transcoder does for a query parameter or
    path variable (primitive fields and repeated primitives only, http.proto)."""
    chain = _field(request.DESCRIPTOR, path)
    if chain is None:
        violations.append((path, "no such field in the request"))
        return
    target = request
    for field in chain[:-1]:
        if field.is_repeated:
            violations.append((path, "a repeated message cannot be set from a URL"))
            return
        target = getattr(target, field.name)
    field = chain[-1]
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        violations.append((path, "a message field cannot be set from a single URL parameter"))
        return
    if text == "" and field.type != FieldDescriptor.TYPE_STRING:
        return  # `?page_size=`: not given
    try:
        value = _parse_scalar(field, text)
    except ValueError:
        violations.append((path, f"{text[:40]!r} is not a valid {_type_name(field)}"))
        return
    if field.is_repeated:
        getattr(target, field.name).append(value)
        return
    try:
        setattr(target, field.name, value)
    except (ValueError, TypeError):  # out of the field's range (int32 overflow, ...)
        violations.append((path, f"{text[:40]!r} is out of range for {_type_name(field)}"))


def _type_name(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return f"{field.enum_type.full_name} name"
    names = {v: k for k, v in vars(FieldDescriptor).items() if k.startswith("TYPE_")}
    return names.get(field.type, "value").removeprefix("TYPE_").lower()


def _parse_scalar(field: FieldDescriptor, text: str) -> object:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text not in ("true", "false"):
            raise ValueError(text)
        return text == "true"
    if field.type == FieldDescriptor.TYPE_ENUM:
        value = field.enum_type.values_by_name.get(text)
        if value is not None:
            return value.number
        return int(text)
    if field.type == FieldDescriptor.TYPE_BYTES:
        # the JSON mapping's bytes: base64, either alphabet
        return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    parser = _SCALAR_PARSERS.get(field.type)
    if parser is None:
        raise ValueError(text)
    return parser(text)


def build_request(route: Route, match: re.Match[str], query: Mapping[str, str] | Any) -> message.Message:
    """The request message of an HTTP call; InvalidQueryError naming every bad parameter."""
    request = route.request_class()
    violations: list[tuple[str, str]] = []
    bound = set(route.variables)
    for name, raw in zip(route.variables, match.groups(), strict=True):
        _set(request, name, urllib.parse.unquote(raw), violations)
    seen: set[str] = set()
    for name, value in query.items():
        if name in bound:
            violations.append((name, "is in the URL path already"))
            continue
        chain = _field(request.DESCRIPTOR, name)
        if name in seen and chain is not None and not chain[-1].is_repeated:
            violations.append((name, "given more than once"))
            continue
        seen.add(name)
        _set(request, name, value, violations)
    if violations:
        raise InvalidQueryError(violations)
    return request


# -- the servicer's context, for HTTP ----------------------------------------------------

class _Aborted(Exception):
    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


class HttpCall:
    """What the servicer methods use of grpc.aio.ServicerContext (abort, write, metadata),
    for one HTTP request: an abort raises _Aborted with the google.rpc.Status; a server
    stream's messages are written as the elements of one JSON array."""

    def __init__(self, request: web.Request, response_class: type[message.Message]) -> None:
        self._request = request
        self._response_class = response_class
        self.stream: web.StreamResponse | None = None
        self.sent = 0

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple((k.lower(), v) for k, v in self._request.headers.items())

    def peer(self) -> str:
        return str(self._request.remote)

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        # errors.abort_async packs the google.rpc.Status as grpc-status-details-bin
        for key, value in status.trailing_metadata or ():
            if key == "grpc-status-details-bin":
                raise _Aborted(status_pb2.Status.FromString(value))
        raise _Aborted(status_pb2.Status(code=status.code.value[0], message=status.details))

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise _Aborted(status_pb2.Status(code=code.value[0], message=details))

    async def write(self, answer: bytes | message.Message) -> None:
        """One message of a server stream: the headers go with the first one, so an error
        before it is still a plain error answer."""
        if self.stream is None:
            self.stream = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
            await self.stream.prepare(self._request)
        msg = self._response_class.FromString(answer) if isinstance(answer, bytes) else answer
        prefix = b"[" if self.sent == 0 else b","
        await self.stream.write(prefix + json_format.MessageToJson(msg, indent=None).encode())
        self.sent += 1

    async def close_stream(self) -> web.StreamResponse:
        """End the array (an empty one when nothing was written)."""
        if self.stream is None:
            self.stream = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
            await self.stream.prepare(self._request)
        await self.stream.write(b"]" if self.sent else b"[]")
        await self.stream.write_eof()
        return self.stream


# -- the server --------------------------------------------------------------------------

def error_response(status: status_pb2.Status) -> web.Response:
    body = json_format.MessageToJson(status, indent=None)
    return web.Response(status=HTTP_STATUS.get(status.code, 500), text=body, content_type=JSON_TYPE)


def _status(code: int, text: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=text)


ROUTE_KEY = web.RequestKey("airtime_route", str)  # the metrics label of a request, kept on it
UNMATCHED = "unmatched"  # the label of a path no rule or health check has
# the status logged and counted for a client that went away before its answer was all sent:
# nginx's "client closed request", and google/rpc/code.proto's HTTP mapping of CANCELLED
CLIENT_GONE = HTTP_STATUS[code_pb2.CANCELLED]
GONE_KEY = web.RequestKey("airtime_client_gone", bool)


class MalformedRequestsQuiet(logging.Filter):
    """aiohttp answers a request its parser refuses (a control character or space in the
    path, a request line or header over the limits, a bad method or version) with a 400 of
    its own, and logs it at ERROR with a traceback (web_protocol.py handle_error; only a
    bad method on a connection's first request is DEBUG). It is the client's mistake, not
    ours: one INFO line, no traceback, like every other client error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BadHttpMessage) and record.levelno > logging.INFO:
            why = (exc.message.strip().splitlines() or [type(exc).__name__])[0].rstrip(":")
            record.msg, record.args = "refused a malformed HTTP request: %s (%d %s)", (
                record.getMessage(), exc.code, why)
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = None
        return True


def _quiet_malformed_requests() -> None:
    server_log = logging.getLogger("aiohttp.server")  # aiohttp/log.py server_logger
    if not any(isinstance(f, MalformedRequestsQuiet) for f in server_log.filters):
        server_log.addFilter(MalformedRequestsQuiet())


class HttpGateway:
    """The aiohttp application serving the rules' routes from a servicer."""

    def __init__(self, servicer: object, tokens: Tokens | None, *,
                 checks: Mapping[str, Callable[[], bool]] | None = None,
                 routes: list[Route] | None = None, unary_timeout: float = UNARY_TIMEOUT_SECONDS,
                 metrics: ServiceMetrics | None = None) -> None:
        self._servicer = servicer
        self._metrics = metrics
        self._tokens = tokens if tokens is not None and tokens.enabled else None
        self._checks = dict(checks or {})
        self._routes = routes if routes is not None else service_routes()
        self._unary_timeout = unary_timeout

    def app(self) -> web.Application:
        _quiet_malformed_requests()
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        # one catch-all: routing is ours (templates, verbs, 404 vs 405 with JSON bodies).
        # [\s\S], not `.`: a path with %0A in it decodes to a newline, which `.` does not
        # match, and would get aiohttp's own 404, unlogged and uncounted
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        response: web.StreamResponse | None = None
        try:
            response = await self._dispatch(request)
            return response
        except Exception:  # a bug of ours: the client gets the JSON of INTERNAL, the log the traceback
            log.exception("unexpected error answering %s %s", request.method, request.path)
            response = error_response(_status(code_pb2.INTERNAL, "internal error"))
            return response
        finally:
            code = response.status if response is not None and not request.get(GONE_KEY) else CLIENT_GONE
            seconds = time.perf_counter() - started
            if self._metrics is not None:
                self._metrics.observe_http(request.get(ROUTE_KEY, UNMATCHED), code, seconds)
            if access_log.isEnabledFor(logging.INFO):
                # the path as one value: a %0A in it is escaped too, an access line stays one line
                path = escape(request.path, newlines=False)
                access_log.info("%s %s %d %.2fms", request.method, path, code, seconds * 1000,
                                extra={"method": f"{request.method} {path}", "code": code,
                                       "duration_ms": round(seconds * 1000, 3), "peer": request.remote})

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        check = self._checks.get(path)
        if check is not None:  # health: open, like gRPC's unary health Check
            request[ROUTE_KEY] = path
            if request.method not in ("GET", "HEAD"):
                return error_response(_status(code_pb2.UNIMPLEMENTED, "health checks are GET"))
            ok = check()
            return web.Response(status=200 if ok else 503, text="ok\n" if ok else "not ready\n")
        matched = [(route, route.pattern.fullmatch(path)) for route in self._routes]
        matched = [(route, match) for route, match in matched if match is not None]
        if not matched:
            return error_response(_status(code_pb2.NOT_FOUND, f"no route for {request.path}"))
        request[ROUTE_KEY] = matched[0][0].template
        for route, match in matched:
            if route.http_method == request.method or (request.method == "HEAD" and route.http_method == "GET"):
                return await self._call(request, route, match)
        allowed = sorted({route.http_method for route, _match in matched})
        # 405, not code.proto's 501 for UNIMPLEMENTED: the resource exists, the verb is wrong
        response = error_response(_status(
            code_pb2.UNIMPLEMENTED, f"{request.method} is not allowed on {request.path}: {', '.join(allowed)}"))
        response.set_status(405)
        response.headers["Allow"] = ", ".join(allowed)
        return response

    def _authorized(self, request: web.Request) -> bool:
        if self._tokens is None:
            return True
        return self._tokens.accepts(bearer([("authorization", request.headers.get("Authorization", ""))]))

    async def _call(self, request: web.Request, route: Route, match: re.Match[str]) -> web.StreamResponse:
        if not self._authorized(request):
            response = error_response(_status(code_pb2.UNAUTHENTICATED, "missing or invalid bearer token"))
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if route.body == "" and request.can_read_body:
            # no rule here takes a body: a GET with one is not a request of ours
            return error_response(_status(code_pb2.INVALID_ARGUMENT, "this route takes no request body"))
        call = HttpCall(request, route.response_class)
        handler = getattr(self._servicer, route.rpc.name)
        try:
            grpc_request = build_request(route, match, request.query)
        except InvalidQueryError as exc:
            return error_response(_status_of(exc))
        if route.rpc.server_streaming:
            return await self._stream(request, call, handler, grpc_request)
        try:
            async with asyncio.timeout(self._unary_timeout):
                answer = await handler(grpc_request, call)
        except _Aborted as exc:
            return error_response(exc.status)
        except TimeoutError:
            return error_response(_status(code_pb2.DEADLINE_EXCEEDED,
                                          f"no answer within {self._unary_timeout:g}s"))
        msg = route.response_class.FromString(answer) if isinstance(answer, bytes) else answer
        return web.Response(text=json_format.MessageToJson(msg, indent=None), content_type=JSON_TYPE)

    async def _stream(self, request: web.Request, call: HttpCall, handler, grpc_request) -> web.StreamResponse:  # noqa: ANN001
        try:
            await handler(grpc_request, call)
        except ConnectionError:
            if request.transport is not None and not request.transport.is_closing():
                raise  # not the client's connection: a bug of ours (handle logs it)
            # The client went away mid-answer: it closed or reset the connection (a slow
            # reader given up on, a killed curl). aiohttp raises ConnectionError from the
            # write (ClientConnectionResetError "Cannot write to closing transport", or
            # ConnectionError "Connection lost" from a write waiting for the reader,
            # aiohttp/http_writer.py and base_protocol.py) and itself ignores one raised
            # when it finishes the response (web_protocol.py finish_response). Expected:
            # the access log's one INFO line, status 499, says so; no traceback.
            request[GONE_KEY] = True
            return call.stream if call.stream is not None else web.Response(status=CLIENT_GONE)
        except _Aborted as exc:
            if call.stream is None:  # nothing sent yet: a plain error answer
                return error_response(exc.status)
            # mid-stream: the array is left unclosed and the connection closed, so no client
            # mistakes the part it got for the whole (HTTP/1.1 has no trailers to say why)
            if request.transport is not None:
                request.transport.close()
            return call.stream
        return await call.close_stream()


@dataclass
class HttpServer:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The gRPC server's certificate and key (AIRTIME_TLS_*), for HTTPS."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None or key is None:
        return None  # server.build_service already refused one without the other
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def start_http(gateway: HttpGateway, host: str | None, port: int, ssl_context: ssl.SSLContext | None,
                     *, shutdown_seconds: float = SHUTDOWN_GRACE_SECONDS) -> HttpServer:
    """Serve the gateway on host:port (0: a free port; host None: every interface) on the
    running loop. At stop, running handlers get shutdown_seconds, then are cancelled and
    get as long again (aiohttp/web_protocol.py RequestHandler.shutdown)."""
    runner = web.AppRunner(gateway.app(), handle_signals=False, access_log=None,
                           shutdown_timeout=shutdown_seconds / 2, keepalive_timeout=KEEPALIVE_SECONDS, max_line_size=MAX_LINE_BYTES,
                           max_field_size=MAX_LINE_BYTES, max_headers=MAX_HEADERS)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_port=False)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    return HttpServer(runner, site.port)


def bad_request_fields(body: Mapping[str, Any]) -> list[str]:
    """The field of each BadRequest violation in a Status JSON body (for clients and tests)."""
    fields = []
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith(error_details_pb2.BadRequest.DESCRIPTOR.full_name):
            fields.extend(v.get("field") for v in detail.get("fieldViolations", []))
    return fields
