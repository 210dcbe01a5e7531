"""Who may do what in Google Cloud: every IAM grant the environment makes, one per line.

The Pulumi program (deploy/gcp/) turns each Grant into one IAM member resource on the grant's
scope; docs/gcp.md's identity table is generated from it; tests/unit/test_iam_covers_calls.py
checks that the grants cover every Google API operation recorded from the code's own calls
(deploy/gcp/recorded_calls.json) or derived from cloudbuild.yaml and the sidecars
(deploy/gcp/operations.py), that no identity holds a basic role, and that no data role is
granted on the project where a bucket or the dataset serves.

The smallest resource a role can be granted on is used each time: a bucket for Cloud Storage,
the dataset for BigQuery data, the secret, the repository, the Endpoints service, the Cloud Run
service, the server's service account. Three roles are granted on the project because their
permissions exist only there: bigquery.jobUser (a job belongs to a project, not a dataset),
logging.logWriter (log entries are written to the project) and container.developer (GKE's IAM
roles apply to the project's clusters; narrowing to the release's namespace is Kubernetes RBAC,
which the deploy's RoleBinding does). cloudtrace.agent likewise, for ESPv2's traces, and
serviceusage.serviceUsageViewer, which reads which services a project has enabled.

Pure Python (no pulumi import): imported by the Pulumi program and by the project's tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploy.names import Names

IDENTITIES = ("pipeline", "server", "deployer", "notifier")
SCOPES = ("project", "bucket", "dataset", "service_account", "secret", "repository",
          "endpoints_service", "cloud_run_service")


@dataclass(frozen=True)
class Grant:
    identity: str  # "pipeline" | "server" | "deployer" | "notifier"
    role: str  # e.g. "roles/storage.objectViewer"
    scope: str  # one of SCOPES
    resource: str  # the resource's name from Names ("" for project); a GSA email for service_account
    why: str  # one line: which code call needs it

    def __post_init__(self) -> None:
        if self.identity not in IDENTITIES:
            raise ValueError(f"unknown identity {self.identity!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}")
        if (self.scope == "project") != (self.resource == ""):
            raise ValueError(f"{self.role} on {self.scope}: a project grant names no resource, others one")


def grants(names: Names, *, cloud_run: bool = False, endpoints: bool = False) -> list[Grant]:
    """Every grant of a stack. `endpoints`: cloudbuild.yaml's _DEPLOY_ENDPOINTS=true and the
    chart's server.esp (ESPv2 beside the server); `cloud_run`: _TARGET=cloudrun builds."""
    g: list[Grant] = [
        # the daily workflow's steps and catch-up (Workload Identity of pipeline_ksa)
        Grant("pipeline", "roles/storage.objectViewer", "bucket", names.source_bucket,
              "catch-up and ingest list a day's delivery and read its files"),
        Grant("pipeline", "roles/storage.objectUser", "bucket", names.artifact_bucket,
              "steps read, list and create artifacts and replace published.json (create + delete);"
              " Argo archives step logs there"),
        Grant("pipeline", "roles/bigquery.dataEditor", "dataset", names.dataset,
              "load creates tables and staging tables, loads and changes rows, drops staging tables;"
              " verify and the ledger read"),
        Grant("pipeline", "roles/bigquery.jobUser", "project", "",
              "every load and query job (bigquery.jobs.create exists on projects only)"),
        # the query service (Workload Identity of server_ksa)
        Grant("server", "roles/storage.objectViewer", "bucket", names.artifact_bucket,
              "every poll reads published.json, the publication marker"),
        Grant("server", "roles/bigquery.dataViewer", "dataset", names.dataset,
              "ledger and forecast queries read the dataset's tables"),
        Grant("server", "roles/bigquery.jobUser", "project", "",
              "every query job (bigquery.jobs.create exists on projects only)"),
        # Cloud Build's service account (cloudbuild.yaml)
        Grant("deployer", "roles/artifactregistry.writer", "repository", names.image_repository,
              "build-push: skaffold build pushes the image"),
        Grant("deployer", "roles/storage.objectUser", "bucket", names.artifact_bucket,
              "upload-workflow-specs: gcloud storage cp replaces deploy/workflows/current/ (create + delete)"),
        Grant("deployer", "roles/container.developer", "project", "",
              "deploy: get-credentials and skaffold's helm install in the cluster"),
        Grant("deployer", "roles/logging.logWriter", "project", "",
              "every build step's log (options.logging CLOUD_LOGGING_ONLY with a user-managed account)"),
        # the Cloud Build notifier (a Cloud Run service running Google's notifier image)
        Grant("notifier", "roles/secretmanager.secretAccessor", "secret", names.build_webhook_secret,
              "the notifier reads the chat webhook URL"),
        Grant("notifier", "roles/storage.objectViewer", "bucket", names.notifier_bucket,
              "the notifier reads its configuration (CONFIG_PATH)"),
    ]
    if endpoints:
        g += [
            Grant("deployer", "roles/servicemanagement.configEditor", "endpoints_service",
                  names.endpoints_service,
                  "deploy-endpoints: gcloud endpoints services deploy submits a configuration and rolls it out"),
            Grant("deployer", "roles/serviceusage.serviceUsageViewer", "project", "",
                  "deploy-endpoints: gcloud endpoints services deploy first checks that Endpoints and the"
                  " service are enabled on the project (Service Usage services.get)"),
            Grant("server", "roles/servicemanagement.serviceController", "endpoints_service",
                  names.endpoints_service,
                  "ESPv2 beside the server fetches the configuration and calls check and report"),
            Grant("server", "roles/cloudtrace.agent", "project", "",
                  "ESPv2 beside the server writes its traces (tracing is on unless disabled)"),
        ]
    if cloud_run:
        g += [
            Grant("deployer", "roles/run.developer", "cloud_run_service", names.cloud_run_service,
                  "deploy: skaffold's Cloud Run deployer replaces the service"),
            Grant("deployer", "roles/iam.serviceAccountUser", "service_account",
                  names.gsa_email(names.server_gsa),
                  "deploy: the service runs as the server's account (iam.serviceAccounts.actAs)"),
        ]
    return g


def markdown_table(names: Names) -> str:
    """docs/gcp.md's identity table: every grant, the optional ones marked (a test keeps the
    doc equal to this)."""
    base, with_endpoints = set(grants(names)), set(grants(names, endpoints=True))
    rows = ["| identity (Google service account) | role | on | why |", "|---|---|---|---|"]
    for g in sorted(grants(names, cloud_run=True, endpoints=True), key=lambda g: IDENTITIES.index(g.identity)):
        when = "" if g in base else " (with Endpoints)" if g in with_endpoints else " (Cloud Run target)"
        on = "the project" if g.scope == "project" else f"{g.scope.replace('_', ' ')} `{g.resource}`"
        account = getattr(names, f"{g.identity}_gsa")
        rows.append(f"| {g.identity} (`{account}`) | `{g.role}`{when} | {on} | {g.why} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m deploy.gcp.iam [--write]: docs/gcp.md's table, printed or written
    import re
    import sys
    from pathlib import Path

    from deploy.names import names_for

    table = markdown_table(names_for("prod", "my-project"))
    if "--write" not in sys.argv[1:]:
        print(table)
        sys.exit(0)
    doc = Path(__file__).resolve().parents[2] / "docs" / "gcp.md"
    text, n = re.subn(r"(<!-- iam-table: .*? -->\n).*?(\n<!-- /iam-table -->)",
                      lambda m: m[1] + table + m[2], doc.read_text(), flags=re.S)
    if n != 1:
        sys.exit(f"{doc}: no iam-table block")
    doc.write_text(text)
