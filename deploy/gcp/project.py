"""The project's APIs: everything else waits for them (depends_on)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from deploy.gcp.options import Options
from deploy.names import Names

APIS = (
    "cloudresourcemanager.googleapis.com",  # IAM policy edits on the project
    "container.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "bigquery.googleapis.com",
    "storage.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",  # Workload Identity mints tokens through it
    "secretmanager.googleapis.com",
    "run.googleapis.com",  # the build notifier, and the optional Cloud Run service
    "pubsub.googleapis.com",  # Cloud Build's build status topic
    "logging.googleapis.com",
    "monitoring.googleapis.com",
)
ENDPOINTS_APIS = ("servicemanagement.googleapis.com", "servicecontrol.googleapis.com", "endpoints.googleapis.com")


def enable_apis(names: Names, options: Options) -> list[gcp.projects.Service]:
    apis = APIS + (ENDPOINTS_APIS if options.endpoints else ())
    if options.billing_account and options.budget_amount:
        apis += ("billingbudgets.googleapis.com",)
    return [
        gcp.projects.Service(
            api.split(".")[0], project=names.project, service=api,
            # turning an API off on `pulumi destroy` would break whatever else uses the project
            disable_on_destroy=False,
        )
        for api in apis
    ]


def after(apis: list[pulumi.Resource], **kwargs) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(depends_on=list(apis), **kwargs)
