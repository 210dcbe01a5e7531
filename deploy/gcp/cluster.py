"""The GKE Autopilot cluster (or an existing one, adopted by config) and a Kubernetes provider
for it. Autopilot has Workload Identity on: its pool, PROJECT.svc.id.goog, is what the identity
bindings name."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from deploy.gcp.options import Options
from deploy.gcp.project import after
from deploy.names import Names


def cluster(names: Names, options: Options, apis: list) -> tuple[pulumi.Resource | None, k8s.Provider]:
    """The cluster resource (None when adopted) and a provider that talks to it."""
    if options.existing_cluster:
        found = gcp.container.get_cluster_output(name=options.existing_cluster, location=names.region,
                                                 project=names.project)
        endpoint, ca = found.endpoint, found.master_auths.apply(lambda auths: auths[0].cluster_ca_certificate)
        name, created = options.existing_cluster, None
    else:
        created = gcp.container.Cluster(
            names.cluster, name=names.cluster, project=names.project, location=names.region,
            enable_autopilot=True,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel="REGULAR"),
            deletion_protection=True,
            opts=after(apis),
        )
        endpoint, ca = created.endpoint, created.master_auth.cluster_ca_certificate
        name = names.cluster
    kubeconfig = pulumi.Output.all(endpoint, ca).apply(lambda args: _kubeconfig(name, *args))
    provider = k8s.Provider("gke", kubeconfig=kubeconfig,
                            opts=pulumi.ResourceOptions(depends_on=[created] if created else []))
    return created, provider


def _kubeconfig(name: str, endpoint: str, ca: str) -> str:
    # gke-gcloud-auth-plugin: the credential plugin GKE documents for kubectl and client-go
    # (https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl)
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: https://{endpoint}
    certificate-authority-data: {ca}
contexts:
- name: {name}
  context: {{cluster: {name}, user: {name}}}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      provideClusterInfo: true
      installHint: gcloud components install gke-gcloud-auth-plugin
"""
