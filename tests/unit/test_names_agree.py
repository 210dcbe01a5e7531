"""deploy/names.py is the one source of the environment's names (issue 23): the chart's values
and its render, the rendered workflow, the settings' defaults, skaffold.yaml, cloudbuild.yaml,
the Cloud Run manifests, the notifier's config and docs/deploy.md must say the same. A name
changed in one place and not in the others fails here, naming both."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from airtime.settings import Settings
from deploy.gcp.charts import PROD_VALUES, airtime_values, argo_values
from deploy.names import Names, names_for
from tests.conftest import ROOT, require

CHART = ROOT / "charts" / "airtime"
HELM = Path(os.environ.get("AIRTIME_TOOLS_DIR", ROOT / ".tools")) / "helm" / "helm"
# the project the checked-in files use as their example or placeholder
EXAMPLE = names_for("prod", "my-project")


def load(path: str):
    return yaml.safe_load((ROOT / path).read_text())


def in_project(text: str, placeholder: str, names: Names) -> str:
    return text.replace(placeholder, names.project)


def test_the_charts_default_values_are_the_names_of_the_example_project() -> None:
    values = load("charts/airtime/values.yaml")
    n = EXAMPLE
    assert values["settings"]["gcpProject"] == n.project
    assert values["settings"]["artifactBucket"] == n.artifact_bucket
    assert values["settings"]["source"] == n.source_url
    assert values["settings"]["bqDataset"] == n.dataset
    assert values["settings"]["bqLocation"] == n.bq_location
    assert values["image"]["repository"] == f"{n.image_registry}/{n.image}"
    assert values["server"]["serviceAccount"]["gcpServiceAccount"] == n.gsa_email(n.server_gsa)
    assert values["server"]["esp"]["service"] == n.endpoints_service
    assert values["workflow"]["serviceAccount"]["name"] == n.pipeline_ksa
    assert values["workflow"]["serviceAccount"]["gcpServiceAccount"] == n.gsa_email(n.pipeline_gsa)
    assert values["workflow"]["webhookSecret"] == n.webhook_k8s_secret


def test_the_settings_defaults_are_the_names() -> None:
    settings = Settings()
    assert settings.workflow_service_account == EXAMPLE.pipeline_ksa
    assert settings.bq_dataset == EXAMPLE.dataset
    assert settings.bq_location == EXAMPLE.bq_location


def test_skaffold_installs_the_release_in_the_namespace_with_the_stacks_accounts() -> None:
    config = load("skaffold.yaml")
    [prod] = [p for p in config["profiles"] if p["name"] == "prod"]
    [release] = prod["deploy"]["helm"]["releases"]
    assert (release["name"], release["namespace"]) == (EXAMPLE.release, EXAMPLE.namespace)
    templates = {k: in_project(v, "{{.AIRTIME_GCP_PROJECT}}", EXAMPLE) for k, v in release["setValueTemplates"].items()}
    assert templates["server.serviceAccount.gcpServiceAccount"] == EXAMPLE.gsa_email(EXAMPLE.server_gsa)
    assert templates["workflow.serviceAccount.gcpServiceAccount"] == EXAMPLE.gsa_email(EXAMPLE.pipeline_gsa)
    assert str(PROD_VALUES.relative_to(ROOT)) in release["valuesFiles"]


def test_cloudbuilds_default_substitutions_are_the_names() -> None:
    subs = {k: in_project(v, "${PROJECT_ID}", EXAMPLE) for k, v in load("cloudbuild.yaml")["substitutions"].items()}
    n = EXAMPLE
    assert (subs["_REGION"], subs["_CLUSTER"], subs["_AR_REPOSITORY"]) == (n.region, n.cluster, n.image_repository)
    assert (subs["_ARTIFACT_BUCKET"], subs["_SOURCE"], subs["_BQ_DATASET"]) == (n.artifact_bucket, n.source_url,
                                                                              n.dataset)


def test_the_cloud_run_manifests_and_the_notifier_config_use_the_names() -> None:
    n = EXAMPLE
    service = yaml.safe_load(in_project((ROOT / "deploy/cloudrun/service.yaml").read_text(), "PROJECT_ID", n))
    assert service["metadata"]["name"] == n.cloud_run_service
    assert service["spec"]["template"]["spec"]["serviceAccountName"] == n.gsa_email(n.server_gsa)
    env = {e["name"]: e.get("value") for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["AIRTIME_ARTIFACT_BUCKET"], env["AIRTIME_BQ_DATASET"]) == (n.artifact_bucket, n.dataset)
    gateway = yaml.safe_load(in_project((ROOT / "deploy/cloudrun/gateway.yaml").read_text(), "PROJECT_ID", n))
    assert gateway["metadata"]["name"] == n.cloud_run_gateway
    assert gateway["spec"]["template"]["spec"]["serviceAccountName"] == n.gsa_email(n.gateway_gsa)
    notifier = yaml.safe_load(in_project((ROOT / ".ci/cloudbuild-notifier.yaml").read_text(), "PROJECT_ID", n))
    assert notifier["spec"]["secrets"][0]["value"] == f"projects/{n.project}/secrets/{n.build_webhook_secret}/versions/latest"


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The release as skaffold's first `run -p prod` leaves it: the program's values (its
    first revision) with the server on and the schedule running."""
    require(HELM.is_file() and os.access(HELM, os.X_OK), f"{HELM} is not installed (run .ci/install-tools)")
    home = tmp_path_factory.mktemp("helm-home")
    values = home / "values.json"
    values.write_text(json.dumps(airtime_values(names_for("prod", "acme-prod"))))
    env = {**os.environ, **{f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "CONFIG", "DATA")}}
    n = names_for("prod", "acme-prod")
    result = subprocess.run([str(HELM), "template", n.release, str(CHART), "--namespace", n.namespace,
                             "-f", str(PROD_VALUES), "-f", str(values),
                             "--set", "server.enabled=true", "--set", "workflow.suspend=false"],
                            capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_chart_renders_the_kubernetes_accounts_workload_identity_binds(released) -> None:
    n = names_for("prod", "acme-prod")
    accounts = {d["metadata"]["name"]: d for d in released if d["kind"] == "ServiceAccount"}
    assert set(accounts) == {n.server_ksa, n.pipeline_ksa}
    assert accounts[n.server_ksa]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        n.gsa_email(n.server_gsa)
    assert accounts[n.pipeline_ksa]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        n.gsa_email(n.pipeline_gsa)
    [deployment] = [d for d in released if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == n.server_ksa


def test_the_rendered_workflow_runs_as_the_pipeline_account_on_the_stacks_buckets(released) -> None:
    n = names_for("prod", "acme-prod")
    for kind in ("WorkflowTemplate", "CronWorkflow"):
        [doc] = [d for d in released if d["kind"] == kind]
        spec = doc["spec"]["workflowSpec"] if kind == "CronWorkflow" else doc["spec"]
        if "serviceAccountName" in spec:
            assert spec["serviceAccountName"] == n.pipeline_ksa, kind
    [template] = [d for d in released if d["kind"] == "WorkflowTemplate"]
    assert template["spec"]["serviceAccountName"] == n.pipeline_ksa
    assert {"name": n.webhook_k8s_secret, "key": "url", "optional": True} in _secret_refs(template)
    [settings] = [d for d in released if d["kind"] == "ConfigMap" and "AIRTIME_ARTIFACT_BUCKET" in d.get("data", {})]
    assert settings["data"]["AIRTIME_ARTIFACT_BUCKET"] == n.artifact_bucket
    assert settings["data"]["AIRTIME_SOURCE"] == n.source_url
    assert settings["data"]["AIRTIME_BQ_DATASET"] == n.dataset
    [argo_repo] = [d for d in released if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "artifact-repositories"]
    assert n.artifact_bucket in json.dumps(argo_repo)


def _secret_refs(node) -> list[dict]:
    if isinstance(node, dict):
        found = [node["secretKeyRef"]] if "secretKeyRef" in node else []
        return found + [ref for value in node.values() for ref in _secret_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _secret_refs(value)]
    return []


def test_argo_servers_account_is_the_one_workload_identity_binds() -> None:
    n = names_for("prod", "acme-prod")
    values = argo_values(n)
    assert values["singleNamespace"] is True and n.argo_namespace == n.namespace
    assert values["server"]["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"] == \
        n.gsa_email(n.argo_server_gsa)
    # argo-helm 1.0.18 _helpers.tpl, argo-workflows.serverServiceAccountName: <fullname>-server
    assert n.argo_server_ksa == f"{n.argo_release}-server"
