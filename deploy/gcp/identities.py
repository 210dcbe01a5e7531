"""One Google service account per identity, and the Workload Identity bindings that let exactly
the Kubernetes service accounts the chart and argo-helm render act as them."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from deploy.gcp.options import Options
from deploy.gcp.project import after
from deploy.names import Names

WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"


def accounts(names: Names, options: Options, apis: list) -> dict[str, gcp.serviceaccount.Account]:
    """By identity: iam.py's four, the Argo Server, Pub/Sub's push to the notifier, and ESPv2 on
    Cloud Run when the stack has it."""
    wanted = {
        "pipeline": (names.pipeline_gsa, "airtime daily workflow"),
        "server": (names.server_gsa, "airtime gRPC query service"),
        "deployer": (names.deployer_gsa, "airtime Cloud Build"),
        "notifier": (names.notifier_gsa, "airtime Cloud Build notifier"),
        "argo_server": (names.argo_server_gsa, "Argo Server: archived step logs"),
        "notifier_push": (names.notifier_push_gsa, "Pub/Sub push to the build notifier"),
    }
    if options.cloud_run:
        wanted["gateway"] = (names.gateway_gsa, "ESPv2 on Cloud Run")
    return {
        identity: gcp.serviceaccount.Account(gsa, account_id=gsa, project=names.project, display_name=title,
                                             opts=after(apis))
        for identity, (gsa, title) in wanted.items()
    }


def workload_identity(names: Names, accounts: dict, cluster: pulumi.Resource | None) -> list:
    """The Kubernetes SA -> Google SA bindings. The pool PROJECT.svc.id.goog exists once a
    cluster with Workload Identity does, hence the dependency on the cluster."""
    bindings = {
        "pipeline": (names.namespace, names.pipeline_ksa),
        "server": (names.namespace, names.server_ksa),
        "argo_server": (names.argo_namespace, names.argo_server_ksa),
    }
    return [
        gcp.serviceaccount.IAMMember(
            f"{identity}-workload-identity",
            service_account_id=accounts[identity].name, role=WORKLOAD_IDENTITY_USER,
            member=names.workload_identity_member(namespace, ksa),
            opts=pulumi.ResourceOptions(depends_on=[cluster] if cluster else []),
        )
        for identity, (namespace, ksa) in bindings.items()
    ]
