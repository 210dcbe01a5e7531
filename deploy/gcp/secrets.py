"""Secret Manager: the workflow's failure webhook URL, the gRPC bearer tokens and the build
notifier's webhook URL. Values come from the stack's secret config
(`pulumi config set --secret webhookUrl ...`), encrypted in the state; a missing value leaves
the secret without a version, to be added with `gcloud secrets versions add`."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from deploy.gcp.options import Options
from deploy.gcp.project import after
from deploy.names import Names


def secrets(names: Names, options: Options, apis: list) -> tuple[dict[str, gcp.secretmanager.Secret],
                                                                 dict[str, gcp.secretmanager.SecretVersion]]:
    """Each secret, and the version holding its value when the stack's config has one."""
    values = {
        names.webhook_secret: options.webhook_url,
        names.tokens_secret: options.api_tokens,
        names.build_webhook_secret: options.build_webhook_url,
        names.alert_webhook_secret: options.alert_webhook_url,
    }
    made, versions = {}, {}
    for secret_id, value in values.items():
        secret = gcp.secretmanager.Secret(
            secret_id, secret_id=secret_id, project=names.project,
            replication=gcp.secretmanager.SecretReplicationArgs(auto=gcp.secretmanager.SecretReplicationAutoArgs()),
            labels={"app": "airtime", "stack": names.stack},
            opts=after(apis),
        )
        if value is not None:
            versions[secret_id] = gcp.secretmanager.SecretVersion(
                f"{secret_id}-value", secret=secret.id, secret_data=pulumi.Output.secret(value))
        made[secret_id] = secret
    return made, versions
