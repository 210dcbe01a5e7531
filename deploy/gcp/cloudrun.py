"""The query service on Cloud Run (optional, config `cloudRun`; docs/serverless.md): the two
services exist so their IAM can be granted before the first build; Cloud Build's cloudrun target
(skaffold, deploy/cloudrun/service.yaml) replaces their revisions, so the program ignores the
template and what the manifest sets."""

from __future__ import annotations

import pulumi_gcp as gcp

from deploy.gcp.project import after
from deploy.names import Names

# Google's sample container, a placeholder until the first build replaces the revision
PLACEHOLDER_IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
OWNED_BY_THE_BUILD = ["template", "labels", "annotations", "client", "client_version", "traffics", "scaling"]


def services(names: Names, accounts: dict, apis: list) -> dict[str, gcp.cloudrunv2.Service]:
    made = {}
    for name, identity in ((names.cloud_run_service, "server"), (names.cloud_run_gateway, "gateway")):
        made[name] = gcp.cloudrunv2.Service(
            name, name=name, project=names.project, location=names.region, ingress="INGRESS_TRAFFIC_ALL",
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=accounts[identity].email,
                containers=[gcp.cloudrunv2.ServiceTemplateContainerArgs(image=PLACEHOLDER_IMAGE)],
            ),
            opts=after(apis, ignore_changes=OWNED_BY_THE_BUILD),
        )
    # ESPv2 calls the server with a Google ID token: the one caller of the server's service
    gcp.cloudrunv2.ServiceIamMember(
        "gateway-run.invoker", project=names.project, location=names.region,
        name=made[names.cloud_run_service].name, role="roles/run.invoker",
        member=accounts["gateway"].email.apply(lambda e: f"serviceAccount:{e}"))
    return made
