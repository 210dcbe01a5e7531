"""Render the Argo resources to plain dicts and YAML files (one file per resource).

The one way to render them: `airtime workflows render --out DIR` (from the AIRTIME_*
settings) calls `write`; the chart's copy (deploy/chart_workflows.py) and the golden
files of the tests call `render` and `dump`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from workflows.config import WorkflowConfig
from workflows.daily import APP_LABELS, cron_workflow, workflow_template


def render(config: WorkflowConfig) -> list[dict]:
    """The resources in apply order: the settings the pods mount, the template, then the cron
    that refers to it."""
    return [settings_config_map(config), workflow_template(config).to_dict(), cron_workflow(config).to_dict()]


def settings_config_map(config: WorkflowConfig) -> dict:
    """The settings ConfigMap every step mounts (envFrom), for a render without the chart
    (the chart has its own, shared with the server: deploy/chart_workflows.py)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config.settings_config_map_name, "namespace": config.namespace, "labels": dict(APP_LABELS)},
        "data": dict(config.settings),
    }


def file_name(doc: dict) -> str:
    return f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"


def dump(doc: dict) -> str:
    # keys in the order Hera emits them (apiVersion, kind, metadata, spec); long
    # strings unwrapped so the golden diff shows one changed line per change
    return yaml.safe_dump(doc, sort_keys=False, width=10_000, default_flow_style=False)


def write(config: WorkflowConfig, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in render(config):
        path = out_dir / file_name(doc)
        path.write_text(dump(doc))
        paths.append(path)
    return paths
