"""The Cloud Endpoints service ESPv2 serves (optional, config `endpoints`): created with the
configuration of deploy/endpoints and the descriptor set of `make proto`. Cloud Build's
deploy-endpoints step pushes every later configuration with the code (cloudbuild.yaml), so the
program ignores changes to both: it owns the service, the builds own its configurations."""

from __future__ import annotations

import base64

import pulumi_gcp as gcp
import yaml

from deploy.endpoints.render import render
from deploy.gcp.charts import ROOT
from deploy.gcp.project import after
from deploy.names import Names

DESCRIPTOR = ROOT / "proto" / "airtime_descriptor.pb"


def endpoints_service(names: Names, apis: list) -> gcp.endpoints.Service:
    config = render(names.project)
    if config["name"] != names.endpoints_service:
        raise ValueError(f"deploy/endpoints names {config['name']}, deploy/names.py {names.endpoints_service}")
    return gcp.endpoints.Service(
        names.endpoints_service, service_name=names.endpoints_service, project=names.project,
        grpc_config=yaml.safe_dump(config, sort_keys=False),
        protoc_output_base64=base64.b64encode(DESCRIPTOR.read_bytes()).decode(),
        opts=after(apis, ignore_changes=["grpc_config", "protoc_output_base64"]),
    )
