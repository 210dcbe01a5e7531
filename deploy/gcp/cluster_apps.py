"""What goes into the cluster, in order by construction: the namespace, then argo-helm (its
Roles land in that namespace, and it brings the CRDs), then the airtime chart's first revision
(its WorkflowTemplate and CronWorkflow need those CRDs), with the Secrets it mounts."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from deploy.gcp.charts import ARGO_CHART, ARGO_REPO, ARGO_VERSION, CHART, PROD_VALUES, airtime_values, argo_values
from deploy.gcp.options import Options
from deploy.names import Names


def install(names: Names, options: Options, provider: k8s.Provider, deployer, after: list) -> dict:
    """`after`: what the pods' identities need first (the Workload Identity bindings)."""
    k8s_opts = pulumi.ResourceOptions(provider=provider)
    namespaces = {
        ns: k8s.core.v1.Namespace(f"namespace-{ns}", metadata={"name": ns}, opts=k8s_opts)
        for ns in dict.fromkeys((names.namespace, names.argo_namespace))
    }
    argo = k8s.helm.v3.Release(
        names.argo_release, name=names.argo_release, chart=ARGO_CHART, version=ARGO_VERSION,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=ARGO_REPO),
        namespace=namespaces[names.argo_namespace].metadata.name,
        values=argo_values(names),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=list(namespaces.values()) + after),
    )
    namespace = namespaces[names.namespace].metadata.name
    secrets = []
    if options.webhook_url is not None:
        secrets.append(k8s.core.v1.Secret(
            names.webhook_k8s_secret, metadata={"name": names.webhook_k8s_secret, "namespace": namespace},
            string_data={"url": pulumi.Output.secret(options.webhook_url)}, opts=k8s_opts))
    if options.api_tokens is not None:
        secrets.append(k8s.core.v1.Secret(
            names.tokens_k8s_secret, metadata={"name": names.tokens_k8s_secret, "namespace": namespace},
            string_data={"tokens": pulumi.Output.secret(options.api_tokens)}, opts=k8s_opts))
    # Helm creates a Role and RoleBinding, and Kubernetes only lets a principal grant what it
    # holds: the deployer gets the built-in `admin` role inside the release's namespace only
    # (argo-helm aggregates its argoproj.io permissions into `admin`: createAggregateRoles).
    deployer_binding = k8s.rbac.v1.RoleBinding(
        "deployer-admin", metadata={"name": "airtime-deployer-admin", "namespace": namespace},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": deployer.email}],
        opts=k8s_opts)
    airtime = k8s.helm.v3.Release(
        names.release, name=names.release, chart=str(CHART), namespace=namespace,
        value_yaml_files=[pulumi.FileAsset(str(PROD_VALUES))], values=airtime_values(names),
        # Skaffold and Cloud Build own every revision after this first one (charts.airtime_values)
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[argo, *secrets],
                                    ignore_changes=["values", "value_yaml_files", "chart", "version", "checksum"]),
    )
    return {"namespaces": namespaces, "argo": argo, "airtime": airtime, "deployer_binding": deployer_binding}
