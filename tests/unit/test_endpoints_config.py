"""The Cloud Endpoints service configuration (deploy/endpoints/api_config.yaml), offline.

Service Management is the real judge and cannot run here; what it would check first is
checked against the same schema: the YAML parses strictly into google.api.Service
(googleapis-common-protos), names the service, asks for API keys and Google ID tokens,
every selector names an RPC of airtime.v1.ForecastService as the generated code and the
descriptor set (`make proto`) declare it, and every quota counts a metric it defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from google.api import annotations_pb2, service_pb2
from google.protobuf import descriptor_pb2, json_format

from airtime.v1 import forecast_service_pb2 as pb
from deploy.endpoints import render as endpoints
from tests.conftest import ROOT

PROJECT = "my-project"
SERVICE = pb.DESCRIPTOR.services_by_name["ForecastService"]
METHODS = {m.full_name for m in SERVICE.methods}
DESCRIPTOR_SET = ROOT / "proto" / "airtime_descriptor.pb"


def parse(config: dict) -> service_pb2.Service:
    """Strictly, as Service Management reads it: a misspelled key is an error, not ignored."""
    config = dict(config)
    assert config.pop("type") == "google.api.Service"
    return json_format.ParseDict(config, service_pb2.Service(), ignore_unknown_fields=False)


@pytest.fixture(scope="module")
def service() -> service_pb2.Service:
    return parse(endpoints.render(PROJECT))


def _keys(node: object, path: str = "") -> list[tuple[str, str]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((f"{path}.{key}".lstrip("."), key))
            # map fields: their keys are data (metric names, STANDARD), not field names
            if key not in {"metric_costs", "values"}:
                found += _keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _keys(item, f"{path}[{i}]")
    return found


def test_config_parses_strictly_into_google_api_service(service: service_pb2.Service) -> None:
    assert service.config_version.value == 3
    assert service.title


def test_strict_parse_rejects_a_misspelled_field() -> None:
    # proves the check above has teeth: ParseDict would otherwise drop it
    config = endpoints.render(PROJECT)
    config["usage"]["rules"][0]["allow_unregisterd_calls"] = False
    with pytest.raises(json_format.ParseError, match="allow_unregisterd_calls"):
        parse(config)


def test_keys_are_snake_case_as_in_the_endpoints_docs() -> None:
    # json_format accepts both spellings; one style keeps the file greppable and matches
    # https://cloud.google.com/endpoints/docs/grpc/grpc-service-config
    config = yaml.safe_load(endpoints.TEMPLATE.read_text())
    camel = [path for path, key in _keys(config) if re.search(r"[A-Z]", key)]
    assert camel == []


def test_names_the_endpoints_service_of_the_project(service: service_pb2.Service) -> None:
    assert service.name == f"airtime.endpoints.{PROJECT}.cloud.goog"
    assert "PROJECT_ID" not in str(service)


def test_apis_are_the_services_of_the_descriptor(service: service_pb2.Service) -> None:
    assert [api.name for api in service.apis] == [SERVICE.full_name]


def test_descriptor_set_of_make_proto_declares_the_same_service_and_methods() -> None:
    if not DESCRIPTOR_SET.exists():
        pytest.skip(f"{DESCRIPTOR_SET} is absent: `make proto` writes it")
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    declared = {f"{f.package}.{s.name}.{m.name}" for f in files for s in f.service for m in s.method}
    assert declared == METHODS


def _selectors(service: service_pb2.Service) -> list[str]:
    return ([r.selector for r in service.usage.rules] + [r.selector for r in service.authentication.rules]
            + [r.selector for r in service.quota.metric_rules] + [r.selector for r in service.backend.rules])


def test_every_selector_names_an_rpc_that_exists(service: service_pb2.Service) -> None:
    unknown = [s for s in _selectors(service) if s != "*" and s not in METHODS]
    assert unknown == []


def _rule(rules, method: str):  # noqa: ANN001, ANN202 - any rule list with selectors
    """The rule that applies to a method: the exact selector wins over "*"."""
    by_selector = {r.selector: r for r in rules}
    return by_selector.get(method) or by_selector.get("*")


def test_every_query_needs_an_api_key_and_a_google_id_token(service: service_pb2.Service) -> None:
    providers = {p.id: p for p in service.authentication.providers}
    (google,) = providers.values()
    assert google.issuer == "https://accounts.google.com"
    assert google.jwks_uri == "https://www.googleapis.com/oauth2/v3/certs"
    assert google.audiences == service.name
    for method in METHODS - {f"{SERVICE.full_name}.GetFreshness"}:
        assert _rule(service.usage.rules, method).allow_unregistered_calls is False, method
        auth = _rule(service.authentication.rules, method)
        assert not auth.allow_without_credential, method
        assert [r.provider_id for r in auth.requirements] == [google.id], method


def test_only_get_freshness_is_open(service: service_pb2.Service) -> None:
    open_ = {m for m in METHODS if _rule(service.usage.rules, m).allow_unregistered_calls
             and _rule(service.authentication.rules, m).allow_without_credential}
    assert open_ == {f"{SERVICE.full_name}.GetFreshness"}


def test_quotas_count_defined_metrics_per_consumer_project(service: service_pb2.Service) -> None:
    metrics = {m.name for m in service.metrics}
    assert metrics
    for m in service.metrics:
        assert (m.metric_kind, m.value_type) == (m.DELTA, m.INT64), m.name
    for limit in service.quota.limits:
        assert limit.metric in metrics, limit.name
        assert limit.unit == "1/min/{project}", limit.name  # the only unit Endpoints enforces
        assert set(limit.values) == {"STANDARD"} and limit.values["STANDARD"] > 0, limit.name
    charged = {name for rule in service.quota.metric_rules for name in rule.metric_costs}
    assert charged <= metrics
    assert charged == {limit.metric for limit in service.quota.limits}  # no metric without a limit


def test_every_query_is_charged_and_bulk_reads_have_their_own_budget(service: service_pb2.Service) -> None:
    costs = {r.selector: dict(r.metric_costs) for r in service.quota.metric_rules}
    queries = METHODS - {f"{SERVICE.full_name}.GetFreshness"}
    assert set(costs) == queries
    stream = costs[f"{SERVICE.full_name}.StreamSlots"]
    limits = {limit.metric: limit.values["STANDARD"] for limit in service.quota.limits}
    (bulk,) = stream
    assert all(bulk not in c for name, c in costs.items() if not name.endswith("StreamSlots"))
    assert limits[bulk] < min(limits[m] for name, c in costs.items() for m in c if m != bulk)


def test_every_rpc_has_an_http_rule_for_esp_to_transcode() -> None:
    missing = []
    for method in SERVICE.methods:
        options = descriptor_pb2.MethodOptions.FromString(method.GetOptions().SerializeToString())
        rule = options.Extensions[annotations_pb2.http]
        if not (rule.get or rule.post or rule.put or rule.delete or rule.patch or rule.custom.path):
            missing.append(method.name)
    assert missing == []


def test_cloud_run_render_names_the_gateway_host_and_routes_every_rpc_to_the_server() -> None:
    host, backend = "airtime-gateway-abc123-uc.a.run.app", "grpcs://airtime-abc123-uc.a.run.app"
    service = parse(endpoints.render(PROJECT, host=host, backend=backend))
    assert service.name == host
    assert [p.audiences for p in service.authentication.providers] == [host]
    assert [(r.selector, r.address) for r in service.backend.rules] == [("*", backend)]


def test_gke_render_has_no_backend_rule_that_would_override_the_sidecar_flag(service: service_pb2.Service) -> None:
    assert not service.backend.rules


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"project": "My_Project"}, "not a Google Cloud project ID"),
        ({"project": PROJECT, "host": "gw.a.run.app"}, "go together"),
        ({"project": PROJECT, "host": "https://gw.a.run.app", "backend": "grpcs://x.a.run.app"}, "bare host"),
        ({"project": PROJECT, "host": "gw.a.run.app", "backend": "https://x.a.run.app"}, "grpcs://"),
    ],
)
def test_bad_arguments_are_refused_with_the_rule(kwargs: dict, complaint: str) -> None:
    with pytest.raises(endpoints.RenderError, match=complaint):
        endpoints.render(**kwargs)


def test_cli_writes_the_config_or_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "build" / "api_config.yaml"
    assert endpoints.main(["--project", "Bad!", "--out", str(out)]) == 2
    assert "not a Google Cloud project ID" in capsys.readouterr().err
    assert not out.parent.exists() or not any(out.parent.iterdir())
    assert endpoints.main(["--project", PROJECT, "--out", str(out)]) == 0
    assert parse(yaml.safe_load(out.read_text())).name == f"airtime.endpoints.{PROJECT}.cloud.goog"
