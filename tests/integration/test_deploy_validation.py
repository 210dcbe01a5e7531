"""Everything that ships, validated offline with the real tools (see .ci/install-tools):
`helm lint --strict`, `helm template` piped to `kubernetes-validate --strict`, the Argo
resources in the release against the strict Argo schema, skaffold.yaml against the
skaffold/v4beta14 schema and cloudbuild.yaml against check-jsonschema's Cloud Build schema;
then the rendered chart read for what matters in production: HTTP probes on the metrics port, restricted
security contexts, Workload Identity, least-privilege RBAC, one image tag for everything.

Outside CI a missing tool skips with the command that installs it; in CI it fails."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airtime.settings import Settings
from deploy import validate_crd
from tests.conftest import ROOT, SHARED, require, require_shared
from tests.unit.test_workflows_schema import errors  # the vendored Argo schema: runs in any clone

CHART = ROOT / "charts" / "airtime"
TOOLS = Path(os.environ.get("AIRTIME_TOOLS_DIR", ROOT / ".tools"))
HELM = TOOLS / "helm" / "helm"
VENV_BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.33.0"
SKAFFOLD_SCHEMA = SHARED / "schemas" / "skaffold" / "v4beta14.json"
NAMESPACE = "airtime"
INSTALL = "run .ci/install-tools"


def tool(path: Path) -> Path:
    require(path.is_file() and os.access(path, os.X_OK), f"{path} is not installed ({INSTALL})")
    return path


def run(*cmd: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], input=stdin, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory):
    binary = tool(HELM)
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, **{f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}

    def helm_(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, check=False)

    return helm_


def template(helm, *args: str) -> str:
    result = helm("template", "airtime", str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def rendered(helm) -> str:
    return template(helm)


@pytest.fixture(scope="module")
def docs(rendered: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name or ''}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def kubernetes_validate(manifests: str) -> subprocess.CompletedProcess[str]:
    binary = tool(VENV_BIN / "kubernetes-validate")
    return run(binary, "--strict", "-k", KUBERNETES_VERSION, "--quiet", "-", stdin=manifests)


# -- the tools' verdicts ------------------------------------------------------------------


def test_chart_passes_helm_lint_strict(helm) -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", ["values-dev.yaml", "values-prod.yaml"])
def test_chart_passes_helm_lint_strict_with_the_skaffold_profile_values(helm, values: str) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(CHART / values))
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_render_is_valid_kubernetes_in_strict_mode(rendered: str) -> None:
    result = kubernetes_validate(rendered)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", ["values-dev.yaml", "values-prod.yaml"])
def test_profile_renders_are_valid_kubernetes_in_strict_mode(helm, values: str) -> None:
    result = kubernetes_validate(template(helm, "-f", str(CHART / values)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_a_misspelled_field(docs: list[dict]) -> None:
    # proves the check above has teeth: without --strict a typo passes
    deployment = one(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 50051}}
    result = kubernetes_validate(yaml.safe_dump(deployment))
    assert result.returncode != 0
    assert "readinesProbe" in result.stdout + result.stderr


def test_argo_resources_in_the_release_are_valid_against_the_strict_argo_schema(docs: list[dict]) -> None:
    argo = [d for d in docs if d["apiVersion"].startswith("argoproj.io/")]
    assert sorted(d["kind"] for d in argo) == ["CronWorkflow", "WorkflowTemplate"]
    for doc in argo:
        assert errors(doc) == [], doc["kind"]


def test_skaffold_config_is_valid_against_the_v4beta14_schema() -> None:
    require_shared(SKAFFOLD_SCHEMA, "the Skaffold schema")
    binary = tool(VENV_BIN / "check-jsonschema")
    result = run(binary, "--schemafile", SKAFFOLD_SCHEMA, ROOT / "skaffold.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudbuild_config_is_valid_against_the_builtin_cloud_build_schema() -> None:
    binary = tool(VENV_BIN / "check-jsonschema")
    result = run(binary, "--builtin-schema", "vendor.cloudbuild", ROOT / "cloudbuild.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_passes_the_lint_gate_of_cloud_build() -> None:
    binary = tool(VENV_BIN / "ruff")
    result = run(binary, "check", "--no-cache", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# -- what the rendered chart says ---------------------------------------------------------


def test_default_render_includes_the_autoscaler_and_the_disruption_budget(docs: list[dict]) -> None:
    deployment = one(docs, "Deployment")
    hpa = one(docs, "HorizontalPodAutoscaler")
    pdb = one(docs, "PodDisruptionBudget")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a drain can make progress


def test_server_probes_are_plain_http_checks_on_the_metrics_port(docs: list[dict]) -> None:
    # not native gRPC probes: the kubelet's cannot speak TLS (tests/integration/test_chart_probes.py
    # runs these probes against a real server)
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 50051, "metrics": 9464}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics", probe
        assert not {"grpc", "exec", "tcpSocket"} & set(container[probe])


def test_the_grace_period_covers_the_prestop_sleep_and_the_drain_budget(helm) -> None:
    """The kubelet SIGKILLs at terminationGracePeriodSeconds, counted from the pod's
    deletion: preStop runs first, then SIGTERM, then the server's drain budget
    (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination)."""
    rendered = yaml.safe_load_all(template(helm, "--set", "server.shutdown.preStopSeconds=7",
                                           "--set", "server.shutdown.drainSeconds=12",
                                           "--set", "server.esp.enabled=true"))
    deployment = one([d for d in rendered if d], "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 7 + 12 + 5
    server, esp = (next(c for c in pod["containers"] if c["name"] == name) for name in ("server", "esp"))
    assert server["lifecycle"]["preStop"] == {"sleep": {"seconds": 7}}
    assert {"name": "AIRTIME_SERVER_DRAIN_SECONDS", "value": "12"} in server["env"]
    # ESPv2 forwards the calls being drained: it outlives the drain, within the grace
    assert esp["lifecycle"]["preStop"] == {"sleep": {"seconds": 7 + 12}}


def test_service_and_network_policy_expose_only_the_grpc_and_metrics_ports(docs: list[dict]) -> None:
    service = one(docs, "Service")
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {"grpc": "grpc", "metrics": "metrics"}
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == {"grpc", "metrics"}


def _pod_specs(docs: list[dict]) -> dict[str, tuple[dict, list[dict]]]:
    """Pod-level security context and containers of every pod the release starts."""
    pods = {}
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    pods["server"] = (spec["securityContext"], spec["containers"])
    template = one(docs, "WorkflowTemplate")
    containers = [t["container"] for t in template["spec"]["templates"] if "container" in t]
    pods["workflow"] = (template["spec"]["securityContext"], containers)
    return pods


def test_every_pod_meets_the_restricted_pod_security_standard(docs: list[dict]) -> None:
    for name, (pod, containers) in _pod_specs(docs).items():
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert containers, name
        for c in containers:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, (name, c["name"])
            assert sc["readOnlyRootFilesystem"] is True, (name, c["name"])
            assert sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert "add" not in sc["capabilities"], (name, c["name"])
            assert [m["mountPath"] for m in c["volumeMounts"]] [:1] == ["/tmp"], (name, c["name"])


def test_every_container_requests_equal_limits_for_autopilot(docs: list[dict]) -> None:
    for name, (_, containers) in _pod_specs(docs).items():
        for c in containers:
            resources = c["resources"]
            assert resources["requests"] == resources["limits"], (name, c["name"])
            assert {"cpu", "memory", "ephemeral-storage"} <= set(resources["requests"]), (name, c["name"])


def test_service_accounts_impersonate_google_service_accounts_through_workload_identity(docs: list[dict]) -> None:
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    server_sa = one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    workflow_sa = one(docs, "WorkflowTemplate")["spec"]["serviceAccountName"]
    assert set(accounts) == {server_sa, workflow_sa}
    emails = {name: sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] for name, sa in accounts.items()}
    assert all(re.fullmatch(r"[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com", e) for e in emails.values())
    assert emails[server_sa] != emails[workflow_sa]  # the reader is not the writer
    # no key files anywhere: Workload Identity is the only credential
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in yaml.safe_dump_all(docs)
    assert accounts[server_sa]["automountServiceAccountToken"] is False


def test_executor_role_allows_only_task_results_and_nothing_for_a_memo_cache(docs: list[dict]) -> None:
    # no template memoization (docs/operations-argo.md): Argo's controller, not the workflow
    # service account, would own a cache, and steps skip on their own manifests anyway
    role = one(docs, "Role")
    binding = one(docs, "RoleBinding")
    template = one(docs, "WorkflowTemplate")
    assert not [t["name"] for t in template["spec"]["templates"] if "memoize" in t]
    assert not [d for d in docs if d["kind"] == "ConfigMap"
                and d["metadata"].get("labels", {}).get("workflows.argoproj.io/configmap-type") == "Cache"]
    assert role["rules"] == [
        {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": template["spec"]["serviceAccountName"], "namespace": NAMESPACE}
    ]


def test_argo_artifact_repository_is_the_namespace_default_on_gcs_without_a_key(docs: list[dict]) -> None:
    repo = one(docs, "ConfigMap", "artifact-repositories")
    key = repo["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"]
    spec = yaml.safe_load(repo["data"][key])
    assert set(spec["gcs"]) == {"bucket", "keyFormat"}  # no serviceAccountKeySecret
    assert "{{workflow.name}}" in spec["gcs"]["keyFormat"]  # Argo's braces survive Helm


def test_settings_config_map_parses_as_gcp_settings(docs: list[dict]) -> None:
    data = one(docs, "ConfigMap", "airtime-settings")["data"]
    assert all(k.startswith("AIRTIME_") for k in data)
    unknown = {k for k in data if k.removeprefix("AIRTIME_").lower() not in Settings.model_fields}
    assert unknown == set()
    settings = Settings(**{k.removeprefix("AIRTIME_").lower(): v for k, v in data.items()})
    assert settings.profile == "gcp"
    assert settings.server_port == 50051
    assert settings.gcp_project and settings.artifact_bucket and settings.bq_dataset
    assert str(settings.home).startswith("/tmp/")  # the only writable path


def test_workflow_pods_run_the_image_the_server_runs(helm) -> None:
    tag = "abc1234@sha256:" + "0" * 64
    docs = [d for d in yaml.safe_load_all(template(helm, "--set", f"image.tag={tag}")) if d]
    images = {c["image"] for _, containers in _pod_specs(docs).values() for c in containers}
    assert images == {f"us-central1-docker.pkg.dev/my-project/airtime/airtime:{tag}"}


def test_workflow_settings_come_from_the_same_values_as_the_server(helm) -> None:
    docs = [d for d in yaml.safe_load_all(template(helm, "--set", "settings.catchupDays=3",
                                                       "--set", "workflow.schedule=30 5 * * 1-5")) if d]
    assert one(docs, "ConfigMap", "airtime-settings")["data"]["AIRTIME_CATCHUP_DAYS"] == "3"  # a string
    # every workflow pod mounts the server's ConfigMap (tests/integration/test_chart_settings.py)
    template_ = one(docs, "WorkflowTemplate")
    sources = [t["container"]["envFrom"] for t in template_["spec"]["templates"] if "container" in t]
    assert sources and all(s == [{"configMapRef": {"name": "airtime-settings"}}] for s in sources)
    assert one(docs, "CronWorkflow")["spec"]["schedules"] == ["30 5 * * 1-5"]
    assert "__AIRTIME_" not in yaml.safe_dump_all(docs)  # every placeholder substituted


def test_tokens_are_mounted_from_a_secret_as_a_file_when_enabled(helm) -> None:
    docs = [d for d in yaml.safe_load_all(template(helm, "--set", "tokens.enabled=true",
                                                       "--set", "tokens.existingSecret=airtime-tokens")) if d]
    assert not [d for d in docs if d["kind"] == "Secret"]  # the existing one is used, not created
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AIRTIME_TOKENS_FILE"] == "/etc/airtime/tokens/tokens"
    volume = next(v for v in spec["volumes"] if v["name"] == "tokens")
    assert volume["secret"]["secretName"] == "airtime-tokens"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tokens")
    assert mount == {"name": "tokens", "mountPath": "/etc/airtime/tokens", "readOnly": True}
    assert "subPath" not in mount  # a subPath mount would never see a rotated token


def test_enabling_tokens_without_a_source_fails_the_render(helm) -> None:
    result = helm("template", "airtime", str(CHART), "--set", "tokens.enabled=true")
    assert result.returncode != 0
    assert "tokens.existingSecret or tokens.values" in result.stderr


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("settings.profle=gcp", "profle"),  # a misspelled key
        ("server.backend=sql", "server/backend"),  # outside the enum Settings accepts
        ("settings.source=/data", "settings/source"),  # the cluster reads gs:// only
    ],
)
def test_values_schema_rejects_misspelled_or_invalid_values(helm, value: str, complaint: str) -> None:
    result = helm("template", "airtime", str(CHART), "--set", value)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_skaffold_sets_image_values_that_the_chart_reads() -> None:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    releases = [config["deploy"]["helm"]["releases"][0]]
    releases += [p["deploy"]["helm"]["releases"][0] for p in config["profiles"] if "helm" in p["deploy"]]
    for release in releases:
        assert release["chartPath"] == "charts/airtime"
        templates = release["setValueTemplates"]
        assert templates["image.repository"] == "{{.IMAGE_REPO_airtime}}"
        assert templates["image.tag"].startswith("{{.IMAGE_TAG_airtime}}")
        for key in templates:
            node = values
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{key} is not a chart value"
                node = node[part]
    assert {p["name"] for p in config["profiles"]} == {"dev", "prod", "cloudrun"}


def test_every_chart_value_is_documented() -> None:
    # argo-helm (helm-docs) convention: a `# --` comment right above a key documents it and
    # everything below it; plain grouping keys need none, but every leaf must be covered
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#") and not lines[j].strip().startswith("# --"):
            j -= 1
        documented = (j >= 0 and lines[j].strip().startswith("# --")) or any(d for _, d in stack)
        following = next((n for n in lines[i + 1:] if n.strip() and not n.strip().startswith("#")), "")
        nested = not rest.strip() and len(following) - len(following.lstrip()) > indent
        is_group = nested and not following.lstrip().startswith("- ")
        if not is_group and not documented:
            undocumented.append(f"line {i + 1}: {key}")
        stack.append((indent, documented))
    assert undocumented == []


# -- ESPv2 and the external entry point (server.esp, gateway; off by default) -------------

SCHEMAS = ROOT / "tests" / "data" / "schemas"
GATEWAY_CRDS = [
    SCHEMAS / "gateway-api" / "gateway.networking.k8s.io_gateways.yaml.gz",
    SCHEMAS / "gateway-api" / "gateway.networking.k8s.io_httproutes.yaml.gz",
    SCHEMAS / "gke-gateway-api" / "networking.gke.io_healthcheckpolicies.yaml.gz",
    SCHEMAS / "gke-gateway-api" / "networking.gke.io_gcpbackendpolicies.yaml.gz",
]
EDGE_KINDS = {"Gateway", "HTTPRoute", "HealthCheckPolicy", "GCPBackendPolicy"}
ESP_VALUES = ("--set", "server.esp.enabled=true", "--set", "gateway.enabled=true",
              "--set", "gateway.hostname=api.example.com")


@pytest.fixture(scope="module")
def edge_rendered(helm) -> str:
    return template(helm, *ESP_VALUES)


@pytest.fixture(scope="module")
def edge_docs(edge_rendered: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(edge_rendered) if d]


def test_default_render_has_no_esp_sidecar_and_no_external_entry_point(docs: list[dict]) -> None:
    assert not [d for d in docs if d["kind"] in EDGE_KINDS]
    names = [c["name"] for c in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]]
    assert names == ["server"]


def test_esp_and_gateway_render_is_valid_kubernetes_in_strict_mode(edge_rendered: str) -> None:
    # the built-in kinds; the Gateway API and GKE policy kinds only warn here (no schema)
    result = kubernetes_validate(edge_rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gateway_resources_are_valid_against_their_strict_crds(edge_docs: list[dict]) -> None:
    known = validate_crd.schemas(GATEWAY_CRDS)
    edge = [d for d in edge_docs if d["kind"] in EDGE_KINDS]
    assert sorted(d["kind"] for d in edge) == sorted(EDGE_KINDS)
    for doc in edge:
        assert validate_crd.errors(doc, known) == [], doc["kind"]
    route = copy.deepcopy(one(edge_docs, "HTTPRoute"))
    route["spec"]["rules"][0]["backendRef"] = route["spec"]["rules"][0].pop("backendRefs")
    assert any("backendRef" in e for e in validate_crd.errors(route, known))


def test_esp_sidecar_fronts_the_grpc_port_with_the_endpoints_service(edge_docs: list[dict]) -> None:
    spec = one(edge_docs, "Deployment")["spec"]["template"]["spec"]
    server, esp = spec["containers"]
    grpc_port = {p["name"]: p["containerPort"] for p in server["ports"]}["grpc"]
    (esp_port,) = esp["ports"]
    assert esp["image"].startswith("gcr.io/endpoints-release/endpoints-runtime:2")
    args = dict(a.removeprefix("--").split("=", 1) if "=" in a else (a.removeprefix("--"), "") for a in esp["args"])
    assert args["service"] == "airtime.endpoints.my-project.cloud.goog"
    assert args["rollout_strategy"] == "managed"
    assert args["backend"] == f"grpc://127.0.0.1:{grpc_port}"  # loopback: never leaves the pod
    assert args["listener_port"] == str(esp_port["containerPort"])
    assert args["healthz"] == "healthz"
    assert "health_check_grpc_backend" not in args  # would be NOT_SERVING before the first publish
    for probe in ("readinessProbe", "livenessProbe"):
        assert esp[probe]["httpGet"] == {"path": "/healthz", "port": "esp", "scheme": "HTTPS"}, probe


def test_esp_sidecar_meets_the_same_pod_standards_as_the_server(edge_docs: list[dict]) -> None:
    spec = one(edge_docs, "Deployment")["spec"]["template"]["spec"]
    _, esp = spec["containers"]
    sc = esp["securityContext"]
    assert (sc["allowPrivilegeEscalation"], sc["readOnlyRootFilesystem"], sc["capabilities"]) == (
        False, True, {"drop": ["ALL"]})
    assert spec["securityContext"]["runAsUser"] > 0  # the image's user is a name, not a number
    assert [m["mountPath"] for m in esp["volumeMounts"]] == ["/tmp"]
    tmp = next(v for v in spec["volumes"] if v["name"] == esp["volumeMounts"][0]["name"])
    assert "sizeLimit" in tmp["emptyDir"]
    assert esp["resources"]["requests"] == esp["resources"]["limits"]
    assert {"cpu", "memory", "ephemeral-storage"} <= set(esp["resources"]["requests"])


def test_gateway_routes_to_esp_through_the_service_and_checks_its_health(edge_docs: list[dict]) -> None:
    service = one(edge_docs, "Service")
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["esp"]["appProtocol"] == "HTTP2"  # the load balancer speaks HTTP/2 (gRPC) to ESPv2 over TLS
    gateway, route = one(edge_docs, "Gateway"), one(edge_docs, "HTTPRoute")
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["protocol"], listener["port"], listener["tls"]["mode"]) == ("HTTPS", 443, "Terminate")
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
    assert listener["hostname"] == route["spec"]["hostnames"][0] == "api.example.com"
    assert [p["name"] for p in route["spec"]["parentRefs"]] == [gateway["metadata"]["name"]]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": service["metadata"]["name"], "port": ports["esp"]["port"]}]
    for kind in ("HealthCheckPolicy", "GCPBackendPolicy"):
        assert one(edge_docs, kind)["spec"]["targetRef"] == {
            "group": "", "kind": "Service", "name": service["metadata"]["name"]}, kind
    check = one(edge_docs, "HealthCheckPolicy")["spec"]["default"]["config"]
    assert check == {"type": "HTTP2", "http2HealthCheck": {"requestPath": "/healthz"}}


def test_network_policy_lets_only_the_load_balancer_reach_esp(edge_docs: list[dict]) -> None:
    policy = one(edge_docs, "NetworkPolicy")
    rules = {p["port"]: rule["from"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert rules["esp"] == [{"ipBlock": {"cidr": "35.191.0.0/16"}}, {"ipBlock": {"cidr": "130.211.0.0/22"}}]
    assert rules["grpc"] == [{"podSelector": {}}]  # unchanged: in-cluster clients only


def test_cleartext_esp_for_in_cluster_callers_uses_h2c_and_plain_http_probes(helm) -> None:
    docs = [d for d in yaml.safe_load_all(template(helm, "--set", "server.esp.enabled=true",
                                                   "--set", "server.esp.tls=false")) if d]
    ports = {p["name"]: p for p in one(docs, "Service")["spec"]["ports"]}
    assert ports["esp"]["appProtocol"] == "kubernetes.io/h2c"
    _, esp = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--generate_self_signed_cert" not in esp["args"]
    assert esp["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert not [d for d in docs if d["kind"] in ("Gateway", "HTTPRoute", "HealthCheckPolicy")]


def test_the_gateway_refuses_cleartext_http2_to_esp_naming_the_documented_protocol(helm) -> None:
    # h2c from GKE's Gateway rests on no Google page read for the chart: HTTP2 over TLS does
    result = helm("template", "airtime", str(CHART), *ESP_VALUES, "--set", "server.esp.tls=false")
    assert result.returncode != 0
    assert "gateway.enabled needs server.esp.tls" in result.stderr
    assert "appProtocol HTTP2: https://cloud.google.com/kubernetes-engine/docs/how-to/secure-gateway" in result.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (("--set", "gateway.enabled=true"), "gateway.enabled needs server.esp.enabled"),
        (("--set", "server.esp.enabled=true", "--set", "server.esp.rolloutStrategy=fixed"),
         "server.esp.configId is required"),
        (("--set", "server.esp.rolloutStrategy=latest"), "server/esp/rolloutStrategy"),
    ],
)
def test_unworkable_esp_or_gateway_values_fail_the_render(helm, values: tuple, complaint: str) -> None:
    result = helm("template", "airtime", str(CHART), *values)
    assert result.returncode != 0
    assert complaint in result.stderr
