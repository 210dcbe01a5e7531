"""`airtime workflows render|apply`: the Argo resources from the settings.

`apply` is a server-side apply (PATCH, application/apply-patch+yaml) under the field
manager `airtime`: re-applying is idempotent, fields other managers own (the
CronWorkflow's status) are left alone, and `force` takes over fields a hand
`kubectl edit` changed, so the rendered YAML stays the truth.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from airtime.errors import AirtimeError, ConfigError
from airtime.settings import Settings
from workflows.config import WorkflowConfig
from workflows.render import render, write

log = logging.getLogger(__name__)

FIELD_MANAGER = "airtime"
APPLY_PATCH = "application/apply-patch+yaml"
ARGO_PLURALS = {"WorkflowTemplate": "workflowtemplates", "CronWorkflow": "cronworkflows"}


def render_command(settings: Settings, out_dir: Path) -> list[Path]:
    paths = write(WorkflowConfig.from_settings(settings), Path(out_dir))
    for path in paths:
        print(path)
    return paths


def default_api_client() -> Any:
    """In a pod, the pod's service account; elsewhere the current kubeconfig context."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError) as exc:
            raise ConfigError(f"no Kubernetes credentials (in-cluster or kubeconfig): {exc}") from None
    return client.ApiClient()


def apply_document(api_client: Any, doc: dict) -> None:
    kind, meta = doc["kind"], doc["metadata"]
    common = {"field_manager": FIELD_MANAGER, "force": True, "_content_type": APPLY_PATCH}
    if kind in ARGO_PLURALS:
        group, version = doc["apiVersion"].split("/")
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            group, version, meta["namespace"], ARGO_PLURALS[kind], meta["name"], doc, **common
        )
    elif kind == "ConfigMap":  # the settings the step pods mount (envFrom)
        client.CoreV1Api(api_client).patch_namespaced_config_map(meta["name"], meta["namespace"], doc, **common)
    else:
        raise ConfigError(f"do not know how to apply a {kind}")


APPLY_ORDER = {"ConfigMap": 0, "WorkflowTemplate": 1, "CronWorkflow": 2}


def load_rendered(out_dir: Path) -> list[dict]:
    """Rendered files (reviewed, perhaps committed), in apply order: the settings the pods
    mount, the template, then the cron that refers to it."""
    paths = sorted(Path(out_dir).glob("*.yaml"))
    if not paths:
        raise ConfigError(f"no rendered *.yaml in {out_dir}: run `airtime workflows render --out {out_dir}`")
    docs = [yaml.safe_load(path.read_text()) for path in paths]
    return sorted(docs, key=lambda doc: APPLY_ORDER.get(doc.get("kind"), len(APPLY_ORDER)))


def apply_command(settings: Settings, out_dir: Path | None = None, *, api_client: Any = None) -> list[dict]:
    """Apply the files rendered into `out_dir`, or, without it, render from the settings
    and apply that."""
    docs = load_rendered(out_dir) if out_dir is not None else render(WorkflowConfig.from_settings(settings))
    api_client = api_client or default_api_client()
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['namespace']}/{doc['metadata']['name']}"
        try:
            apply_document(api_client, doc)
        except ApiException as exc:
            message = f"applying {name} failed: {exc.status} {exc.reason}: {exc.body}"
            # 4xx: the resources or the permissions are wrong; else the API server had a bad moment
            raise (ConfigError if exc.status and 400 <= exc.status < 500 else AirtimeError)(message) from None
        print(f"applied {name}")
    return docs
