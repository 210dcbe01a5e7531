"""What a stack chooses beyond its names: read from the stack's config (Pulumi.<stack>.yaml)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    # an existing cluster's name to adopt (used, not managed) instead of creating one
    existing_cluster: str = ""
    # the Cloud Build 2nd-gen repository (projects/P/locations/R/connections/C/repositories/N),
    # connected once in the console (the GitHub app); without it no trigger nor notifier
    build_repository: str = ""
    production_branch: str = "production"
    endpoints: bool = False  # the Endpoints service, and ESPv2's and the deployer's grants on it
    cloud_run: bool = False  # the query service on Cloud Run (docs/serverless.md)
    install_apps: bool = True  # namespace, argo-helm and the chart's first revision in the cluster
    # secret values (`pulumi config set --secret ...`): a string, or the pulumi.Output that
    # Config.get_secret gives; a missing one (None) leaves its secret without a version
    webhook_url: object | None = None
    api_tokens: object | None = None
    build_webhook_url: object | None = None
    alert_webhook_url: object | None = None  # Cloud Monitoring's channel (deploy/gcp/monitoring.py)
    # a monthly budget on the project, only with both (the budget API bills the account)
    billing_account: str = ""
    budget_amount: float | None = None
    uptime_host: str = ""  # the API's public host (the Gateway's): an uptime check and its policy


def from_config(config) -> Options:
    """`config`: pulumi.Config("airtime"), the stack's settings (Pulumi.<stack>.yaml)."""
    return Options(
        existing_cluster=config.get("existingCluster") or "",
        build_repository=config.get("buildRepository") or "",
        production_branch=config.get("productionBranch") or "production",
        endpoints=bool(config.get_bool("endpoints")),
        cloud_run=bool(config.get_bool("cloudRun")),
        install_apps=config.get_bool("installApps") is not False,
        # get_secret, not get: the values stay marked secret in the state and in previews
        webhook_url=config.get_secret("webhookUrl"),
        api_tokens=config.get_secret("apiTokens"),
        build_webhook_url=config.get_secret("buildWebhookUrl"),
        alert_webhook_url=config.get_secret("alertWebhookUrl"),
        billing_account=config.get("billingAccount") or "",
        budget_amount=config.get_float("budgetAmount"),
        uptime_host=config.get("uptimeHost") or "",
    )
