"""Every name the Google Cloud environment and the cluster share, declared once.

Read by the Pulumi program (deploy/gcp/), the permissions table (deploy/gcp/iam.py), and checked
against the chart's values and render, the rendered workflow and docs/deploy.md by
tests/unit/test_names_agree.py: a name changed here and not there fails that test.

A stack is a project (Google's advice: one project per environment): the names below differ
between dev, staging and prod through the project id, which prefixes the only names that must be
unique beyond a project (the buckets); everything else keeps the name the chart, skaffold.yaml and
cloudbuild.yaml already use, so neither needs a per-stack value beyond the project.

Pure Python on purpose: the Pulumi program's venv (protobuf < 7) cannot import the project's
gRPC code (protobuf >= 7), and this module is imported by both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGION = "us-central1"
STACKS = ("dev", "staging", "prod")
# https://cloud.google.com/resource-manager/docs/creating-managing-projects: 6-30 characters,
# lowercase letters, digits, hyphens, starting with a letter, not ending with a hyphen
_PROJECT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
# https://cloud.google.com/iam/docs/service-accounts-create: 6-30 characters
_GSA_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")


@dataclass(frozen=True)
class Names:
    stack: str
    project: str
    region: str

    # Cloud Storage and BigQuery (the chart's settings.source, settings.artifactBucket,
    # settings.bqDataset, settings.bqLocation; cloudbuild.yaml's _SOURCE, _ARTIFACT_BUCKET)
    source_bucket: str
    artifact_bucket: str
    dataset: str
    bq_location: str
    notifier_bucket: str  # the Cloud Build notifier's configuration (.ci/cloudbuild-notifier.yaml)

    # Kubernetes
    cluster: str  # cloudbuild.yaml's _CLUSTER
    namespace: str  # the release's namespace (skaffold.yaml)
    argo_namespace: str
    release: str  # the airtime Helm release (skaffold.yaml)
    argo_release: str  # the argo-helm release; its server's ServiceAccount is <argo_release>-server
    pipeline_ksa: str  # workflow.serviceAccount.name, AIRTIME_WORKFLOW_SERVICE_ACCOUNT's default
    server_ksa: str  # <fullname>-server: the release name contains the chart's, so <release>-server
    argo_server_ksa: str  # argo-helm's server.serviceAccount (argo-workflows.serverServiceAccountName)
    webhook_k8s_secret: str  # workflow.webhookSecret (key `url`)
    tokens_k8s_secret: str  # tokens.existingSecret when tokens.enabled (key `tokens`)

    # Google service account ids (the part before @)
    pipeline_gsa: str
    server_gsa: str
    deployer_gsa: str
    notifier_gsa: str
    argo_server_gsa: str  # the Argo Server reads the step logs archived in the artifact bucket
    notifier_push_gsa: str  # Pub/Sub's push to the notifier, the only run.invoker of it
    gateway_gsa: str  # ESPv2 on Cloud Run (deploy/cloudrun/gateway.yaml), optional

    # Artifact Registry, Secret Manager, Cloud Build, Endpoints, Cloud Run
    image_repository: str  # cloudbuild.yaml's _AR_REPOSITORY
    image: str  # the Skaffold artifact's name inside the repository
    webhook_secret: str  # Secret Manager: the workflow's failure webhook URL
    tokens_secret: str  # Secret Manager: the gRPC bearer tokens file
    build_webhook_secret: str  # Secret Manager: the build notifier's webhook URL
    # Secret Manager: where Cloud Monitoring's webhook channel posts incidents (its own JSON,
    # which Slack and Chat incoming webhooks refuse: an on-call service or a relay)
    alert_webhook_secret: str
    pr_trigger: str
    deploy_trigger: str
    build_topic: str  # Cloud Build publishes every build's status here (a fixed name)
    notifier_service: str  # Cloud Run: the Cloud Build notifier
    cloud_run_service: str  # Cloud Run: the query service (deploy/cloudrun/service.yaml)
    cloud_run_gateway: str  # Cloud Run: ESPv2 in front of it (deploy/cloudrun/gateway.yaml)
    endpoints_service: str  # the Endpoints service's name (deploy/endpoints/render.py)

    def gsa_email(self, gsa_id: str) -> str:
        return f"{gsa_id}@{self.project}.iam.gserviceaccount.com"

    def workload_identity_member(self, namespace: str, ksa: str) -> str:
        """The member a GSA's roles/iam.workloadIdentityUser names for a Kubernetes SA."""
        return f"serviceAccount:{self.project}.svc.id.goog[{namespace}/{ksa}]"

    @property
    def image_registry(self) -> str:
        """Skaffold's --default-repo: <region>-docker.pkg.dev/<project>/<repository>."""
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.image_repository}"

    @property
    def source_url(self) -> str:
        """AIRTIME_SOURCE: the deliveries, one dt=YYYY-MM-DD/ folder per day."""
        return f"gs://{self.source_bucket}"


def names_for(stack: str, project: str, region: str = DEFAULT_REGION) -> Names:
    """The names of `stack` in `project`, refusing an unknown stack or a malformed project id."""
    if stack not in STACKS:
        raise ValueError(f"stack {stack!r} is not one of {', '.join(STACKS)}")
    if not _PROJECT_ID.match(project):
        raise ValueError(f"project id {project!r}: 6-30 lowercase letters, digits or hyphens, starting with a letter")
    names = Names(
        stack=stack,
        project=project,
        region=region,
        source_bucket=f"{project}-airtime-source",
        artifact_bucket=f"{project}-airtime-artifacts",
        dataset="airtime",
        bq_location="US",
        notifier_bucket=f"{project}-airtime-notifier",
        cluster="airtime",
        namespace="airtime",
        # argo-helm installed into the workflow namespace with singleNamespace (deploy/gcp/charts.py)
        argo_namespace="airtime",
        release="airtime",
        argo_release="argo-workflows",
        pipeline_ksa="airtime-pipeline",
        server_ksa="airtime-server",
        argo_server_ksa="argo-workflows-server",
        webhook_k8s_secret="airtime-webhook",
        tokens_k8s_secret="airtime-tokens",
        pipeline_gsa="airtime-pipeline",
        server_gsa="airtime-server",
        deployer_gsa="airtime-deployer",
        notifier_gsa="airtime-notifier",
        argo_server_gsa="airtime-argo-server",
        notifier_push_gsa="airtime-notifier-push",
        gateway_gsa="airtime-gateway",
        image_repository="airtime",
        image="airtime",
        webhook_secret="airtime-webhook",
        tokens_secret="airtime-tokens",
        build_webhook_secret="airtime-build-webhook",
        alert_webhook_secret="airtime-alert-webhook",
        pr_trigger="airtime-pr",
        deploy_trigger="airtime-deploy",
        build_topic="cloud-builds",
        notifier_service="airtime-build-notifier",
        cloud_run_service="airtime",
        cloud_run_gateway="airtime-gateway",
        endpoints_service=f"airtime.endpoints.{project}.cloud.goog",
    )
    for gsa in (names.pipeline_gsa, names.server_gsa, names.deployer_gsa, names.notifier_gsa,
                names.argo_server_gsa, names.notifier_push_gsa, names.gateway_gsa):
        assert _GSA_ID.match(gsa), gsa
    return names
