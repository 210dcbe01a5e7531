"""The values of the two Helm releases the program installs, as plain data (no pulumi import).

Pure so the project's own tests (tests/unit/test_names_agree.py) can render the airtime chart
with them and compare with deploy/names.py, and tests/gcp_setup can read them under mocks.
"""

from __future__ import annotations

from pathlib import Path

from deploy.names import Names

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "airtime"
PROD_VALUES = CHART / "values-prod.yaml"  # what skaffold's prod profile installs with

# argo-helm: the chart docs/deploy.md pinned (1.0.18 ships Argo v4.0.6; the chart's
# WorkflowTemplate needs Argo >= 4.0 for `schedules`)
ARGO_REPO = "https://argoproj.github.io/argo-helm"
ARGO_CHART = "argo-workflows"
ARGO_VERSION = "1.0.18"


def argo_values(names: Names) -> dict:
    """argo-helm's values: a controller and server that see the workflow namespace only.

    argo-helm 1.0.18 values.yaml, `singleNamespace`: "Restrict Argo to operate only in a single
    namespace (the namespace of the Helm release) by apply Roles and RoleBindings instead of the
    Cluster equivalents, and start workflow-controller with the --namespaced flag"; and
    `controller.workflowNamespaces` is "Only valid when singleNamespace is false". So the release
    goes into the workflow namespace itself (names.argo_namespace == names.namespace): the
    controller then watches `airtime` and nothing else, with Roles, not ClusterRoles.
    """
    return {
        "singleNamespace": True,
        "server": {
            "authModes": ["client"],
            # The Argo Server reads the step logs archived to the artifact bucket with its own
            # Google identity (argo-workflows v4.1.2 workflow/artifacts/gcs/gcs.go:76-81,
            # "Assume it uses Workload Identity"): the program binds argo_server_ksa to it.
            "serviceAccount": {
                "annotations": {"iam.gke.io/gcp-service-account": names.gsa_email(names.argo_server_gsa)},
            },
        },
        # Requests for Argo's init and wait containers in every step pod: argo-helm sets none,
        # and Autopilot would then bill its defaults (0.5 vCPU, 2 GiB) per step pod.
        "executor": {
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "100Mi"},
                "limits": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "100Mi"},
            },
        },
    }


def airtime_values(names: Names) -> dict:
    """The environment's part of the airtime chart's values: the same keys skaffold.yaml's prod
    profile sets from AIRTIME_* (the stack's outputs), plus the names the chart defaults to.

    The program's install is the release's first revision, before any image exists: the server
    is off and the schedule suspended, so nothing pulls an image that is not there yet. The
    first `skaffold run -p prod` upgrades it with the built image and the chart's defaults
    (server on, schedule running); Skaffold and Cloud Build own every revision after that.
    """
    return {
        "image": {"repository": f"{names.image_registry}/{names.image}"},
        "settings": {
            "profile": "gcp",
            "gcpProject": names.project,
            "artifactBucket": names.artifact_bucket,
            "source": names.source_url,
            "bqDataset": names.dataset,
            "bqLocation": names.bq_location,
        },
        "server": {
            "enabled": False,
            "serviceAccount": {"gcpServiceAccount": names.gsa_email(names.server_gsa)},
        },
        "workflow": {
            "suspend": True,
            "webhookSecret": names.webhook_k8s_secret,
            "serviceAccount": {
                "name": names.pipeline_ksa,
                "gcpServiceAccount": names.gsa_email(names.pipeline_gsa),
            },
        },
    }


def skaffold_env(names: Names) -> dict[str, str]:
    """What skaffold.yaml's prod profile reads (setValueTemplates), as the stack exports it:
    `pulumi stack output --shell` gives the shell these, and --default-repo AIRTIME_IMAGE_REPO."""
    return {
        "AIRTIME_GCP_PROJECT": names.project,
        "AIRTIME_ARTIFACT_BUCKET": names.artifact_bucket,
        "AIRTIME_SOURCE": names.source_url,
        "AIRTIME_BQ_DATASET": names.dataset,
        "AIRTIME_IMAGE_REPO": names.image_registry,
        "AIRTIME_REGION": names.region,
        "AIRTIME_CLUSTER": names.cluster,
        "AIRTIME_NAMESPACE": names.namespace,
    }
