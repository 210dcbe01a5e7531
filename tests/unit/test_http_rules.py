"""The google.api.http rules, read from the descriptor set Cloud Endpoints gets
(proto/airtime_descriptor.pb): every RPC has one, and every field a URL names (path variable,
documented query parameter) is a request field ESPv2 can set from text."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import google.rpc
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2

from grpc_server import codegen
from grpc_server.http import HTTP_STATUS, compile_template, rule_verb_and_path, service_routes

SERVICE = "airtime.v1.ForecastService"
PRIMITIVE = {t for name, t in descriptor_pb2.FieldDescriptorProto.Type.items()
             if name not in ("TYPE_MESSAGE", "TYPE_GROUP")}
# the query parameters the issue and docs/query-service.md name, per RPC
DOCUMENTED = {
    "ListSlots": {"start_date", "end_date", "signal", "program_code", "page_size", "page_token", "run_date"},
    "StreamSlots": {"start_date", "end_date", "signal", "program_code", "run_date"},
    "GetProgramSlots": {"signal", "date", "start_date", "end_date", "run_date"},
    "GetFreshness": {"run_date"},
}
EXPECTED_ROUTES = {
    "ListSlots": ("GET", "/v1/slots"),
    "StreamSlots": ("GET", "/v1/slots:stream"),
    "GetProgramSlots": ("GET", "/v1/programs/{program_code}/slots"),
    "GetFreshness": ("GET", "/v1/freshness"),
}


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString((codegen.ROOT / codegen.DESCRIPTOR_SET).read_bytes())


def _messages() -> dict[str, descriptor_pb2.DescriptorProto]:
    found = {}
    for file in _descriptor_set().file:
        for msg in file.message_type:
            found[f".{file.package}.{msg.name}"] = msg
    return found


def _service() -> descriptor_pb2.ServiceDescriptorProto:
    for file in _descriptor_set().file:
        for service in file.service:
            if f"{file.package}.{service.name}" == SERVICE:
                return service
    raise AssertionError(f"{SERVICE} is not in {codegen.DESCRIPTOR_SET}")


def test_the_descriptor_set_holds_every_import_espv2_needs() -> None:
    names = {f.name for f in _descriptor_set().file}
    assert {"airtime/v1/forecast_service.proto", "google/api/annotations.proto", "google/api/http.proto",
            "google/type/date.proto", "google/protobuf/descriptor.proto"} <= names
    service_file = next(f for f in _descriptor_set().file if f.name == "airtime/v1/forecast_service.proto")
    assert service_file.source_code_info.location, "built without --include_source_info"


@pytest.mark.parametrize("method", _service().method, ids=lambda m: m.name)
def test_every_rpc_has_an_http_rule_whose_fields_are_primitive_request_fields(method) -> None:  # noqa: ANN001
    assert method.options.HasExtension(annotations_pb2.http), f"{method.name} has no google.api.http rule"
    rule = method.options.Extensions[annotations_pb2.http]
    verb, path = rule_verb_and_path(rule)
    assert (verb, path) == EXPECTED_ROUTES[method.name]
    assert rule.body == ""  # GETs: every field not in the path is a query parameter
    request = _messages()[method.input_type]
    fields = {f.name: f for f in request.field}
    _pattern, variables = compile_template(path)
    for name in [*variables, *DOCUMENTED[method.name]]:
        assert name in fields, f"{method.name}: {name} is not a field of {request.name}"
        field = fields[name]
        # http.proto: path variables "must not refer to any repeated or mapped field"; a
        # query parameter maps to a primitive or repeated primitive field
        assert field.type in PRIMITIVE, f"{request.name}.{name} is not primitive"
        if name in variables:
            assert field.label != descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    # nothing in a request is out of reach of a URL: every field is documented or in the path
    assert set(fields) == set(variables) | DOCUMENTED[method.name]


def test_request_dates_are_strings_under_new_numbers_with_the_old_ones_reserved() -> None:
    messages = _messages()
    for name, old in (("ListSlotsRequest", {1, 2}), ("StreamSlotsRequest", {1, 2}),
                      ("GetProgramSlotsRequest", {2, 3})):
        msg = messages[f".airtime.v1.{name}"]
        reserved = {n for r in msg.reserved_range for n in range(r.start, r.end)}
        assert reserved == old, name
        assert not {f.number for f in msg.field} & old
        assert all(f.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING
                   for f in msg.field if "date" in f.name)


def test_the_served_routes_are_the_descriptors_rules() -> None:
    served = {r.rpc.name: (r.http_method, r.template) for r in service_routes()}
    assert served == EXPECTED_ROUTES


def test_every_documented_curl_url_matches_a_rule_and_names_request_fields() -> None:
    doc = (codegen.ROOT / "docs" / "query-service.md").read_text()
    urls = re.findall(r"curl -s '(http://localhost:8080[^']+)'", doc)
    assert len(urls) >= 4
    routes = service_routes()
    seen = set()
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        (route,) = [r for r in routes if r.pattern.fullmatch(parts.path)]
        seen.add(route.rpc.name)
        names = {f.name for f in route.rpc.input_type.fields}
        assert {k for k, _v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)} <= names, url
    assert seen == set(EXPECTED_ROUTES)


@pytest.mark.parametrize("template, path, groups", [
    ("/v1/programs/{program_code}/slots", "/v1/programs/HUCK/slots", ("HUCK",)),
    ("/v1/programs/{program_code}/slots", "/v1/programs/HU%2FCK/slots", ("HU%2FCK",)),
    ("/v1/slots:stream", "/v1/slots:stream", ()),
    ("/v1/{name=shelves/*}/books", "/v1/shelves/7/books", ("shelves/7",)),
    ("/v1/{path=**}", "/v1/a/b/c", ("a/b/c",)),
])
def test_path_templates_match_as_http_proto_defines(template: str, path: str, groups: tuple) -> None:
    pattern, _variables = compile_template(template)
    match = pattern.fullmatch(path)
    assert match is not None and match.groups() == groups
    if "**" not in template:  # `**` takes the rest of the path
        assert pattern.fullmatch(path + "/extra") is None


def test_http_status_of_each_code_is_code_protos_http_mapping() -> None:
    code_proto = Path(google.rpc.__path__[0]) / "code.proto"
    mapping = {}
    for comment, name in re.findall(r"HTTP Mapping: (\d+)[^\n]*\n(?:\s*//[^\n]*\n)*?\s*(\w+) = \d+;",
                                    code_proto.read_text()):
        mapping[code_pb2.Code.Value(name)] = int(comment)
    assert len(mapping) == 17
    assert HTTP_STATUS == mapping
