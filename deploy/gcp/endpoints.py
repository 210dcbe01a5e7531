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
    """The service, then the service itself enabled on the project: ESPv2 only serves an
    enabled service, and `gcloud endpoints services deploy` (the deployer) enables it when it
    is not, which takes serviceusage.services.enable, a permission the deployer is not given
    (gcloud endpoints services deploy calls EnableServiceIfDisabled, googlecloudsdk
    api_lib/services/enable_api.py, as deploy/gcp/operations.py cites;
    Google's Endpoints quickstarts: `gcloud services enable ENDPOINTS_SERVICE_NAME`)."""
    config = render(names.project)
    if config["name"] != names.endpoints_service:
        raise ValueError(f"deploy/endpoints names {config['name']}, deploy/names.py {names.endpoints_service}")
    service = gcp.endpoints.Service(
        names.endpoints_service, service_name=names.endpoints_service, project=names.project,
        grpc_config=yaml.safe_dump(config, sort_keys=False),
        protoc_output_base64=base64.b64encode(DESCRIPTOR.read_bytes()).decode(),
        opts=after(apis, ignore_changes=["grpc_config", "protoc_output_base64"]),
    )
    gcp.projects.Service(
        f"{names.endpoints_service}-enabled", project=names.project, service=service.service_name,
        disable_on_destroy=False, opts=after([service]),
    )
    return service
