"""The Cloud Run manifests (deploy/cloudrun/), offline.

Cloud Run cannot run here. What can be checked is: the manifests are valid Knative Services
against the upstream CRD made strict (deploy/validate_crd.py, the check Cloud Build runs on
the rendered manifest too), and they say what Cloud Run documents for gRPC serving: an
`h2c` port (https://cloud.google.com/run/docs/configuring/http2), scale to zero, probes
within the documented bounds (https://cloud.google.com/run/docs/configuring/healthchecks),
and settings the server actually reads, on the ports and paths it actually serves."""

from __future__ import annotations

import copy
import gzip
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from airtime.settings import Settings
from deploy import validate_crd
from grpc_server.server import READINESS_HEALTH_NAME
from tests.conftest import ROOT

CLOUDRUN = ROOT / "deploy" / "cloudrun"
SCHEMAS = ROOT / "tests" / "data" / "schemas"
KNATIVE_CRD = SCHEMAS / "knative" / "serving.knative.dev_services.yaml.gz"


def load(name: str) -> dict:
    (doc,) = [d for d in yaml.safe_load_all((CLOUDRUN / name).read_text()) if d]
    return doc


@pytest.fixture(scope="module")
def knative() -> dict:
    return validate_crd.schemas([KNATIVE_CRD])


@pytest.fixture(scope="module")
def service() -> dict:
    return load("service.yaml")


def _container(doc: dict) -> dict:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.mark.parametrize("folder", ["knative", "gateway-api", "gke-gateway-api"])
def test_vendored_crds_are_the_upstream_files_named_in_the_readme(folder: str) -> None:
    readme = (SCHEMAS / folder / "README.md").read_text()
    table = dict(re.findall(r"\| `([\w.-]+\.gz)` \| `[^`]+` \| `([0-9a-f]{64})` \|", readme))
    assert sorted(table) == sorted(p.name for p in (SCHEMAS / folder).glob("*.gz"))
    for name, digest in table.items():
        assert hashlib.sha256(gzip.decompress((SCHEMAS / folder / name).read_bytes())).hexdigest() == digest


@pytest.mark.parametrize("name", ["service.yaml", "gateway.yaml"])
def test_manifest_is_a_valid_knative_service_in_strict_mode(knative: dict, name: str) -> None:
    assert validate_crd.errors(load(name), knative) == []


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        (["spec", "template", "spec", "containers", 0], "startupProbee", {}),
        (["spec", "template", "spec"], "containerConcurency", 80),
        (["spec", "template", "spec"], "containerConcurrency", "many"),
    ],
)
def test_strict_validation_rejects_a_misspelled_or_mistyped_field(knative: dict, service: dict, path: list,
                                                                  field: str, value: object) -> None:
    doc = copy.deepcopy(service)
    node = doc
    for key in path:
        node = node[key]
    node[field] = value
    assert any(field in e for e in validate_crd.errors(doc, knative))


def test_cli_exits_non_zero_naming_the_document_and_field(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "service.yaml"
    bad.write_text((CLOUDRUN / "service.yaml").read_text().replace("livenessProbe:", "livenesProbe:"))
    assert validate_crd.main([str(bad), "--crd", str(KNATIVE_CRD)]) == 1
    err = capsys.readouterr().err
    assert "Service airtime" in err and "livenesProbe" in err
    assert validate_crd.main([str(CLOUDRUN / "service.yaml"), "--crd", str(KNATIVE_CRD)]) == 0


def test_grpc_runs_end_to_end_over_http2_on_the_port_the_server_listens_on(service: dict) -> None:
    container = _container(service)
    (port,) = container["ports"]
    assert port["name"] == "h2c"  # end-to-end HTTP/2: without it Cloud Run downgrades to HTTP/1
    assert _env(container)["AIRTIME_SERVER_PORT"] == str(port["containerPort"])
    assert "PORT" not in _env(container)  # reserved: Cloud Run sets it


def test_scales_to_zero_with_request_based_billing(service: dict) -> None:
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/minScale"] == "0"
    assert int(annotations["autoscaling.knative.dev/maxScale"]) >= 1
    assert annotations["run.googleapis.com/cpu-throttling"] == "true"
    assert all(isinstance(v, str) for v in annotations.values())  # annotations are strings


def test_probes_speak_grpc_on_the_serving_port_and_ask_for_readiness(service: dict) -> None:
    """Cloud Run's HTTP probes need an HTTP/1 service and this one is h2c, and Cloud Run routes
    one port: both probes are gRPC health checks of the readiness name on the serving port
    (tests/integration/test_grpc_readiness_health.py checks the server's side of it)."""
    container = _container(service)
    port = container["ports"][0]["containerPort"]
    startup, liveness = container["startupProbe"], container["livenessProbe"]
    for probe in (startup, liveness):
        assert probe["grpc"] == {"port": port, "service": READINESS_HEALTH_NAME}
        assert "httpGet" not in probe and "tcpSocket" not in probe
        # documented bounds: period 1-240 s, timeout at most the period
        assert 1 <= probe["periodSeconds"] <= 240
        assert 1 <= probe["timeoutSeconds"] <= probe["periodSeconds"]
        assert probe["failureThreshold"] >= 1


def test_environment_parses_as_gcp_settings_with_the_snapshot_backend(service: dict) -> None:
    env = _env(_container(service))
    assert all(k.startswith("AIRTIME_") for k in env)
    unknown = {k for k in env if k.removeprefix("AIRTIME_").lower() not in Settings.model_fields}
    assert unknown == set()
    settings = Settings(**{k.removeprefix("AIRTIME_").lower(): v for k, v in env.items()})
    assert settings.profile == "gcp"
    assert settings.server_backend == "snapshot"  # answers from memory: no warehouse query per call
    assert settings.gcp_project and settings.artifact_bucket and settings.bq_dataset


def test_image_is_the_skaffold_artifact_and_placeholders_are_only_the_project(service: dict) -> None:
    assert _container(service)["image"] == "airtime"
    text = (CLOUDRUN / "service.yaml").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert set(re.findall(r"\b[A-Z][A-Z0-9]+_[A-Z0-9_]+\b", body)) - {"PROJECT_ID"} <= {
        k for k in _env(_container(service))}
    assert re.fullmatch(r"airtime-server@PROJECT_ID\.iam\.gserviceaccount\.com",
                        service["spec"]["template"]["spec"]["serviceAccountName"])


def test_limits_are_within_what_cloud_run_accepts(service: dict) -> None:
    spec = service["spec"]["template"]["spec"]
    assert 1 <= spec["containerConcurrency"] <= 1000
    assert 1 <= spec["timeoutSeconds"] <= 3600
    assert service["metadata"]["labels"]["cloud.googleapis.com/location"] == "us-central1"


def test_gateway_serves_grpc_over_http2_and_answers_health_checks_itself() -> None:
    gateway = load("gateway.yaml")
    container = _container(gateway)
    assert [p["name"] for p in container["ports"]] == ["h2c"]
    assert "--healthz=healthz" in _env(container)["ESPv2_ARGS"].split(",")
    assert gateway["metadata"]["name"] != load("service.yaml")["metadata"]["name"]
