"""The small deployment files no external tool checks: the Dockerfile and its build
context, the Cloud Build notifier, and the manifest splitter Cloud Build runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from deploy.split_manifests import split
from tests.conftest import ROOT


def _final_stage() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)
    return stages[-1].splitlines()


def test_image_runs_as_uid_10001_under_tini_with_writable_paths_only_in_tmp() -> None:
    final = _final_stage()
    assert "USER 10001:10001" in final
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in final
    assert 'CMD ["airtime", "serve"]' in final
    env = " ".join(line for line in final if line.strip())
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "TMPDIR=/tmp", "AIRTIME_HOME=/tmp/airtime", "HOME=/tmp"):
        assert setting in env, setting


def test_image_copies_every_package_the_project_installs() -> None:
    # a new top-level package added to pyproject but not to the Dockerfile and the
    # .dockerignore allowlist would be missing from the image, and only a cluster would tell
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (ROOT / "Dockerfile").read_text()
    allowed = {line.strip("!/ ") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
        assert package in allowed, package
    assert {"pyproject.toml", "constraints.txt", "README.md"} <= allowed
    assert "pip --python /opt/venv/bin/python install -c constraints.txt ." in dockerfile


def test_cloud_build_notifier_config_alerts_only_on_failed_builds() -> None:
    config = yaml.safe_load((ROOT / ".ci" / "cloudbuild-notifier.yaml").read_text())
    assert config["apiVersion"] == "cloud-build-notifiers/v1"
    assert config["kind"] in {"SlackNotifier", "GoogleChatNotifier"}
    notification = config["spec"]["notification"]
    assert "Build.Status.FAILURE" in notification["filter"]
    assert "Build.Status.SUCCESS" not in notification["filter"]
    secret = notification["delivery"]["webhookUrl"]["secretRef"]
    assert [s["name"] for s in config["spec"]["secrets"]] == [secret]  # the URL is never inline


def test_split_manifests_writes_one_file_per_argo_resource(tmp_path: Path) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "daily"}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "daily"}},
    ]
    paths = split(yaml.safe_dump_all(docs), tmp_path / "specs")
    assert sorted(p.name for p in paths) == ["cronworkflow-daily.yaml", "workflowtemplate-daily.yaml"]
    assert yaml.safe_load(paths[0].read_text())["metadata"]["name"] == "daily"


def test_split_manifests_keeps_the_settings_the_workflow_pods_mount(tmp_path: Path) -> None:
    mount = {"name": "step", "container": {"envFrom": [{"configMapRef": {"name": "airtime-settings"}}]}}
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "airtime-settings"}, "data": {"A": "1"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": {"name": "daily"},
         "spec": {"templates": [mount]}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "daily"}},
    ]
    paths = split(yaml.safe_dump_all(docs), tmp_path / "specs")
    assert sorted(p.name for p in paths) == [
        "configmap-airtime-settings.yaml", "cronworkflow-daily.yaml", "workflowtemplate-daily.yaml"]
    with pytest.raises(SystemExit, match="airtime-settings"):
        split(yaml.safe_dump_all(docs[2:]), tmp_path / "other")


# -- shipping either target: the GKE chart or Cloud Run (docs/serverless.md) -------------


def _skaffold_profile(name: str) -> dict:
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    (profile,) = [p for p in config["profiles"] if p["name"] == name]
    return profile


def test_cloudrun_profile_deploys_the_knative_service_and_drops_the_helm_release() -> None:
    profile = _skaffold_profile("cloudrun")
    assert profile["deploy"] == {"cloudrun": {"region": "us-central1"}}
    # a profile keeps the base fields it does not set: without the patch, helm would run too
    assert {"op": "remove", "path": "/deploy/helm"} in profile["patches"]
    assert profile["build"]["local"]["push"] is True
    (manifest,) = profile["manifests"]["rawYaml"]
    assert manifest == "build/cloudrun/service.yaml"


def test_cloud_build_writes_the_manifest_the_cloudrun_profile_reads(tmp_path: Path) -> None:
    # the render step's sed, run here: the result names no placeholder and the Skaffold artifact
    import subprocess

    config = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    steps = {s["id"]: s for s in config["steps"]}
    render = steps["render"]["script"]
    manifest = _skaffold_profile("cloudrun")["manifests"]["rawYaml"][0]
    sed = next(line.strip() for line in render.splitlines() if line.strip().startswith("sed "))
    assert sed.endswith(f"> {manifest}")
    assert "deploy/cloudrun/service.yaml" in sed
    (tmp_path / "build" / "cloudrun").mkdir(parents=True)
    (tmp_path / "deploy" / "cloudrun").mkdir(parents=True)
    (tmp_path / "deploy" / "cloudrun" / "service.yaml").write_text(
        (ROOT / "deploy" / "cloudrun" / "service.yaml").read_text())
    script = sed.replace("${PROJECT_ID}", "acme-prod")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
    rendered = (tmp_path / manifest).read_text()
    assert "PROJECT_ID" not in rendered
    doc = yaml.safe_load(rendered)
    assert doc["metadata"]["namespace"] == "acme-prod"
    assert doc["spec"]["template"]["spec"]["serviceAccountName"] == "airtime-server@acme-prod.iam.gserviceaccount.com"
    assert doc["spec"]["template"]["spec"]["containers"][0]["image"] == "airtime"  # Skaffold's to replace


def test_cloud_build_ships_the_target_it_is_asked_for_and_nothing_else() -> None:
    config = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    assert config["substitutions"]["_TARGET"] == "gke"
    steps = {s["id"]: s for s in config["steps"]}
    assert "skaffold render -p cloudrun" in steps["render"]["script"]
    assert "skaffold deploy -p cloudrun" in steps["deploy"]["script"]
    assert "deploy.validate_crd" in steps["validate"]["script"]
    assert 'if [[ "${_TARGET}" != "gke" ]]' in steps["upload-workflow-specs"]["script"]
    # the Endpoints configuration goes out before the rollout that needs it
    assert "deploy-endpoints" in steps["deploy"]["waitFor"]
    assert "proto/airtime_descriptor.pb build/api_config.yaml" in steps["deploy-endpoints"]["script"]
    ids = [s["id"] for s in config["steps"]]
    for step in config["steps"]:
        for before in step.get("waitFor", []):
            assert before == "-" or ids.index(before) < ids.index(step["id"]), (step["id"], before)
