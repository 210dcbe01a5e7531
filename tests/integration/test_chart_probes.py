"""The chart's probes, taken from `helm template` and run the way the kubelet runs them
against a real `airtime serve` on an EMPTY warehouse (a fresh cluster, before the first
publish), plaintext and with TLS on; the scrape path of Managed Service for Prometheus; and
`airtime serve` on a taken port.

Why this matters: with probes that fail before the first publish, `helm install --wait
--rollback-on-failure` (Helm 4's `--atomic`; Skaffold, Cloud Build) rolls the first release back and no workflow can ever
publish the first run. The decisions tested here are documented in docs/query-service.md."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from grpc_server.server import SERVICE_NAME
from tests.conftest import ROOT
from tests.integration.test_deploy_validation import CHART, helm, one, template  # noqa: F401 - helm: fixture
from tests.integration.test_grpc_cli import _free_port
from tests.integration.test_grpc_security import _self_signed

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# the kubelet waits up to failureThreshold x periodSeconds (300 s) for startup; a test need not
STARTUP_BUDGET_SECONDS = 60


def _docs(helm_, *args: str) -> list[dict]:  # noqa: ANN001 - the helm fixture
    return [d for d in yaml.safe_load_all(template(helm_, *args)) if d]


@pytest.fixture(scope="module")
def rendered(helm) -> list[dict]:  # noqa: ANN001, F811
    return _docs(helm)


@pytest.fixture(scope="module")
def probes(rendered: list[dict]) -> dict[str, dict]:
    """Each probe as the kubelet would run it: the HTTP path and the container port number."""
    (container,) = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = one(rendered, "ConfigMap", "airtime-settings")["data"]
    found = {}
    for name in PROBES:
        probe = container[name]
        assert set(probe) & {"grpc", "exec", "tcpSocket", "httpGet"} == {"httpGet"}, name
        get = probe["httpGet"]
        assert get.get("scheme", "HTTP") == "HTTP", name  # plaintext whatever AIRTIME_TLS_* says
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        # the port the probe targets is the one the server in the pod listens on for HTTP
        assert str(port) == settings["AIRTIME_METRICS_PORT"], name
        assert port != ports["grpc"], name
        found[name] = {"path": get["path"], "port": port, "timeout": probe.get("timeoutSeconds", 1)}
    return found


def _kubelet_get(port: int, path: str, timeout: float) -> int | None:
    """What the kubelet's httpGet probe sees: a status code (200-399 passes), or None when
    nothing answers (a failure)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _hermetic_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    return {**env, "AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT),
            **{f"AIRTIME_{k.upper()}": v for k, v in settings.items()}}


@contextlib.contextmanager
def airtime_serve(env: dict[str, str], grpc_port: int) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(grpc_port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        process.stderr.close()


def _wait_for_startup(process: subprocess.Popen, port: int, probe: dict) -> None:
    deadline = time.monotonic() + STARTUP_BUDGET_SECONDS
    while _kubelet_get(port, probe["path"], probe["timeout"]) != 200:
        assert process.poll() is None, f"airtime serve exited: {process.stderr.read()}"
        assert time.monotonic() < deadline, "the startup probe never passed"
        time.sleep(0.2)


def _forecast_health(channel: grpc.Channel) -> int:
    request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_rendered_probes_pass_on_an_empty_warehouse(probes: dict[str, dict], tmp_path: Path, tls: bool) -> None:
    settings = {"metrics_port": str(_free_port())}  # stands in for the rendered 9464
    if tls:
        cert, key = _self_signed(tmp_path)
        settings |= {"tls_cert_file": str(cert), "tls_key_file": str(key)}
    grpc_port = _free_port()
    http_port = int(settings["metrics_port"])
    with airtime_serve(_hermetic_env(tmp_path / "home", **settings), grpc_port) as process:
        _wait_for_startup(process, http_port, probes["startupProbe"])
        for name in ("livenessProbe", "readinessProbe"):
            probe = probes[name]
            # documented decision: ready before the first publish (else helm --wait never ends)
            assert _kubelet_get(http_port, probe["path"], probe["timeout"]) == 200, name
        # ... while the data state stays visible to clients that watch it
        if tls:
            credentials = grpc.ssl_channel_credentials(cert.read_bytes())
            with grpc.secure_channel(f"localhost:{grpc_port}", credentials) as channel:
                assert _forecast_health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
            # what a native gRPC probe (plaintext, no TLS parameters) would have got
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel, \
                    pytest.raises(grpc.RpcError) as refused:
                _forecast_health(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        else:
            with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
                assert _forecast_health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert process.poll() is None  # nothing restarted it, nothing made it exit


def test_readiness_fails_while_draining_and_liveness_does_not(probes: dict[str, dict], tmp_path: Path) -> None:
    from airtime.duckdb_warehouse import DuckDBWarehouse
    from grpc_server.server import LIVENESS_PATH, READINESS_PATH
    from tests.integration.grpc_fixtures import make_backend, running_service, server_settings

    assert {probes["livenessProbe"]["path"], probes["startupProbe"]["path"]} == {LIVENESS_PATH}
    assert probes["readinessProbe"]["path"] == READINESS_PATH
    backend = make_backend("snapshot", DuckDBWarehouse(tmp_path / "home" / "warehouse.duckdb"))
    with running_service(server_settings(tmp_path / "home"), backend) as service:
        port = service.metrics.serve_http(0, addr="127.0.0.1", checks={
            LIVENESS_PATH: service.live, READINESS_PATH: service.ready})
        service.started.set()
        service.checked.set()  # what serve()'s first look at the (empty) ledger ends with
        assert _kubelet_get(port, READINESS_PATH, 2) == 200
        service.draining.set()  # the first thing stop() does on SIGTERM
        assert _kubelet_get(port, READINESS_PATH, 2) == 503
        assert _kubelet_get(port, LIVENESS_PATH, 2) == 200  # draining is no reason to restart


def test_pod_monitoring_scrapes_the_metrics_port_that_the_network_policy_opens_to_gmp(rendered: list[dict]) -> None:
    deployment = one(rendered, "Deployment")
    monitoring = one(rendered, "PodMonitoring")
    assert monitoring["apiVersion"] == "monitoring.googleapis.com/v1"
    assert monitoring["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (endpoint,) = monitoring["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert "metrics" in {p["name"] for p in container["ports"]}
    policy = one(rendered, "NetworkPolicy")
    (rule,) = [r for r in policy["spec"]["ingress"] if r["ports"] == [{"port": "metrics", "protocol": "TCP"}]]
    namespaces = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]}
    assert namespaces == {"gke-gmp-system"}  # where the collectors run on GKE Autopilot


def test_pod_monitoring_is_left_out_where_its_crd_is_missing(helm) -> None:  # noqa: ANN001, F811
    for args in (("--set", "server.podMonitoring.enabled=false"), ("-f", str(CHART / "values-dev.yaml"))):
        assert not [d for d in _docs(helm, *args) if d["kind"] == "PodMonitoring"], args


@pytest.mark.parametrize("which", ["gRPC", "metrics"])
def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path, which: str) -> None:
    try:
        taken = socket.socket(socket.AF_INET6)
        taken.bind(("::", 0))  # dual stack: taken for IPv4 too
    except OSError:
        taken = socket.socket(socket.AF_INET)
        taken.bind(("0.0.0.0", 0))
    with taken:
        taken.listen()
        port = taken.getsockname()[1]
        metrics_port, grpc_port = (port, 0) if which == "metrics" else (0, port)
        result = subprocess.run([sys.executable, "-m", "cli", "serve", "--port", str(grpc_port)],
                                cwd=ROOT, env=_hermetic_env(tmp_path / "home", metrics_port=str(metrics_port)),
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"{which} port {port}" in line


def test_image_chart_and_settings_agree_on_the_ports(rendered: list[dict]) -> None:
    from airtime.settings import Settings

    defaults = Settings.model_fields
    (container,) = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": defaults["server_port"].default, "metrics": defaults["metrics_port"].default}
    (expose,) = [line.split()[1:] for line in (ROOT / "Dockerfile").read_text().splitlines()
                 if line.startswith("EXPOSE ")]
    assert sorted(map(int, expose)) == sorted(ports.values())


def test_cloud_run_grpc_probe_passes_on_an_empty_warehouse_and_fails_while_draining(tmp_path: Path) -> None:
    """deploy/cloudrun/service.yaml probes gRPC health of `airtime.readiness` on the serving
    port (Cloud Run's HTTP probes cannot reach an h2c port). Like the chart's /readyz it must
    pass before the first publish, or a first deploy never starts, while the ForecastService
    health keeps saying there is nothing to answer from; SIGTERM turns it off."""
    from grpc_server.server import READINESS_HEALTH_NAME

    grpc_port = _free_port()
    with airtime_serve(_hermetic_env(tmp_path / "home", metrics_port="0"), grpc_port) as process, \
            grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + STARTUP_BUDGET_SECONDS
        while True:
            assert process.poll() is None, f"airtime serve exited: {process.stderr.read()}"
            assert time.monotonic() < deadline, "the gRPC readiness probe never passed"
            with contextlib.suppress(grpc.RpcError):
                request = health_pb2.HealthCheckRequest(service=READINESS_HEALTH_NAME)
                if stub.Check(request, timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                    break
            time.sleep(0.2)
        assert _forecast_health(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
        # draining: a Watch sees the name go NOT_SERVING before the server stops
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=READINESS_HEALTH_NAME), timeout=20)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
