"""The whole environment of one stack: the composition root (__main__.py reads the stack's
config and calls create; the tests call it under Pulumi's mocks)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from deploy.gcp import (
    access,
    build,
    cloudrun,
    cluster_apps,
    endpoints,
    identities,
    monitoring,
    secrets,
    storage,
    warehouse,
)
from deploy.gcp.charts import skaffold_env
from deploy.gcp.cluster import cluster
from deploy.gcp.iam import grants
from deploy.gcp.options import Options
from deploy.gcp.project import enable_apis
from deploy.names import Names


def create(names: Names, options: Options) -> dict:
    apis = enable_apis(names, options)
    gke, provider = cluster(names, options, apis)
    repository = storage.image_repository(names, apis)
    buckets = storage.buckets(names, apis)
    dataset = warehouse.dataset(names, apis)
    accounts = identities.accounts(names, options, apis)
    bindings = identities.workload_identity(names, accounts, gke)
    stored, versions = secrets.secrets(names, options, apis)
    endpoints_service = endpoints.endpoints_service(names, apis) if options.endpoints else None
    run_services = cloudrun.services(names, accounts, apis) if options.cloud_run else {}

    resources = {("bucket", name): bucket for name, bucket in buckets.items()}
    resources[("dataset", names.dataset)] = dataset
    resources[("repository", names.image_repository)] = repository
    resources.update({("secret", name): secret for name, secret in stored.items()})
    resources.update({("service_account", names.gsa_email(gsa)): accounts[identity]
                      for identity, gsa in (("server", names.server_gsa), ("pipeline", names.pipeline_gsa))})
    if endpoints_service is not None:
        resources[("endpoints_service", names.endpoints_service)] = endpoints_service
    resources.update({("cloud_run_service", name): service for name, service in run_services.items()})
    members = access.members(names, grants(names, cloud_run=options.cloud_run, endpoints=options.endpoints),
                             accounts, resources)
    # The Argo Server reads the step logs Argo archived under argo/ in the artifact bucket (a
    # cluster add-on's identity, not the code's: outside iam.py's four).
    gcp.storage.BucketIAMMember(
        "argo_server-storage.objectViewer-bucket", bucket=buckets[names.artifact_bucket].name,
        role="roles/storage.objectViewer", member=accounts["argo_server"].email.apply(lambda e: f"serviceAccount:{e}"))

    if options.build_repository:
        made = build.triggers(names, options, accounts["deployer"], apis)
        build.notifier(names, made, accounts, buckets, stored, apis)
    # SLOs, alert policies, dashboard, channel and budget (docs/slos.md). The channel reads its
    # URL from the version this program wrote: its name is known only once the version exists,
    # so the read waits for it, and a first `pulumi up` needs no secret made by hand.
    alert_version = versions.get(names.alert_webhook_secret)
    watched = monitoring.create_monitoring(
        names.project, notification_webhook_secret_version=alert_version.name if alert_version else None,
        billing_account=options.billing_account or None, budget_amount=options.budget_amount,
        uptime_host=options.uptime_host or None, opts=pulumi.ResourceOptions(depends_on=apis))
    apps = (cluster_apps.install(names, options, provider, accounts["deployer"], after=bindings)
            if options.install_apps else {})

    for key, value in skaffold_env(names).items():
        pulumi.export(key, value)
    return {"members": members, "apps": apps, "buckets": buckets, "monitoring": watched}
