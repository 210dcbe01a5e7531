"""Operations -> IAM permissions -> roles, each from Google's reference, and the check that a
set of grants covers a set of operations.

OPERATIONS: the permissions each operation of deploy/gcp/operations.py needs, with the page
that says so. ROLES: for every role deploy/gcp/iam.py grants, the permissions of it this
project relies on (a subset of the role: the page cited lists them all) and the lowest
resource it can be granted on. Each subset was read from the page cited and, where the copy
of the page at hand was incomplete, from the role as `gcloud iam roles describe` prints it
(collected in github.com/iann0036/iam-dataset, gcp/roles/<role>.json): that is how
bigquery.jobUser is known to hold bigquery.jobs.create and not bigquery.config.get, and
container.developer to hold roleBindings.get but not roleBindings.create. `missing` and `unused` are what tests/unit/test_iam_covers_calls.py
asserts on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from deploy.gcp.iam import Grant
from deploy.gcp.operations import OWN_JOB, Operation
from deploy.names import Names

GCS_JSON = "https://cloud.google.com/storage/docs/access-control/iam-json"
BQ_ROLES = "https://cloud.google.com/iam/docs/roles-permissions/bigquery"
BQ_JOBS_GET = ("https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/get (\"Requires that you're"
               " the person who ran the job, or have the Is Owner project role\")")
BQ_LOAD = "https://cloud.google.com/bigquery/docs/loading-data-cloud-storage-parquet#required_permissions"
BQ_DML = "https://cloud.google.com/bigquery/docs/data-manipulation-language#required_permissions"
BQ_QUERY = "https://cloud.google.com/bigquery/docs/running-queries#required_permissions"
BQ_TABLES = "https://cloud.google.com/bigquery/docs/tables#required_permissions"


@dataclass(frozen=True)
class Needs:
    permissions: tuple[str, ...]
    reference: str


OPERATIONS: dict[str, Needs] = {
    # Cloud Storage JSON API: objects.insert needs delete too when it replaces an object
    "storage.objects.get": Needs(("storage.objects.get",), GCS_JSON),
    "storage.objects.list": Needs(("storage.objects.list",), GCS_JSON),
    "storage.objects.insert": Needs(("storage.objects.create",), GCS_JSON + " (ifGenerationMatch=0: never replaces)"),
    "storage.objects.insert (replacing)": Needs(("storage.objects.create", "storage.objects.delete"),
                                                GCS_JSON + ", footnote: replacing an existing object"),
    "storage.objects.delete": Needs(("storage.objects.delete",), GCS_JSON),
    "storage.buckets.get (client library's metadata cache)": Needs(
        (), "google-cloud-storage 3.17 _bucket_metadata_cache.py: a 403 is cached as a fallback, nothing fails"),
    # BigQuery
    "bigquery.datasets.get": Needs(("bigquery.datasets.get",), BQ_ROLES),
    "bigquery.datasets.insert": Needs(("bigquery.datasets.create",), BQ_ROLES),
    "bigquery.tables.insert": Needs(("bigquery.tables.create",), BQ_TABLES),
    "bigquery.tables.get": Needs(("bigquery.tables.get",), BQ_TABLES),
    "bigquery.tables.patch": Needs(("bigquery.tables.get", "bigquery.tables.update"), BQ_TABLES),
    "bigquery.tables.update": Needs(("bigquery.tables.get", "bigquery.tables.update"), BQ_TABLES),
    "bigquery.tables.delete": Needs(("bigquery.tables.delete",), BQ_TABLES),
    "bigquery.tabledata.list": Needs(("bigquery.tables.getData",), BQ_ROLES),
    "bigquery.jobs.insert": Needs(("bigquery.jobs.create",), BQ_QUERY),
    "bigquery.jobs.query": Needs(("bigquery.jobs.create",), BQ_QUERY),
    "bigquery.jobs.insert: load into a table": Needs(
        ("bigquery.tables.create", "bigquery.tables.update", "bigquery.tables.updateData"), BQ_LOAD),
    "bigquery.jobs.insert: query reads a table": Needs(("bigquery.tables.getData",), BQ_QUERY),
    "bigquery.jobs.insert: query changes a table": Needs(("bigquery.tables.getData", "bigquery.tables.updateData"),
                                                         BQ_DML),
    OWN_JOB: Needs((), BQ_JOBS_GET + "; jobs.getQueryResults and jobs.cancel likewise"),
    # derived from cloudbuild.yaml and the sidecars (deploy/gcp/operations.py DERIVED)
    "artifactregistry: docker push": Needs(
        ("artifactregistry.repositories.downloadArtifacts", "artifactregistry.repositories.uploadArtifacts"),
        "https://cloud.google.com/artifact-registry/docs/access-control#permissions"),
    "container.clusters.get": Needs(("container.clusters.get",),
                                    "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl"),
    "kubernetes: helm upgrade --install": Needs(
        ("container.configMaps.update", "container.deployments.update", "container.services.update",
         "container.thirdPartyObjects.update"),
        "https://cloud.google.com/kubernetes-engine/docs/reference/api-permissions"),
    "logging.logEntries.create": Needs(("logging.logEntries.create",),
                                       "https://cloud.google.com/logging/docs/access-control#permissions_and_roles"),
    "secretmanager.versions.access": Needs(("secretmanager.versions.access",),
                                           "https://cloud.google.com/secret-manager/docs/access-control"),
    "servicemanagement.services.configs.submit + rollouts.create": Needs(
        ("servicemanagement.services.get", "servicemanagement.services.update"),
        "https://cloud.google.com/service-infrastructure/docs/service-management/access-control"),
    "serviceusage.services.get": Needs(("serviceusage.services.get",),
                                       "https://cloud.google.com/service-usage/docs/access-control"),
    "servicecontrol: check + report, config fetch": Needs(
        ("servicemanagement.services.check", "servicemanagement.services.get", "servicemanagement.services.report"),
        "https://cloud.google.com/service-infrastructure/docs/service-management/access-control"),
    "cloudtrace.traces.patch": Needs(("cloudtrace.traces.patch",),
                                     "https://cloud.google.com/trace/docs/iam#roles"),
    "run.services.replace": Needs(("run.services.get", "run.services.update"),
                                  "https://cloud.google.com/run/docs/reference/rest/v1/namespaces.services/replaceService"),
    "iam.serviceAccounts.actAs": Needs(("iam.serviceAccounts.actAs",),
                                       "https://cloud.google.com/run/docs/reference/iam/roles#additional-configuration"),
}


@dataclass(frozen=True)
class Role:
    permissions: frozenset[str]  # those this project relies on; the page lists them all
    lowest: str  # the smallest scope it can be granted on (a deploy/gcp/iam.py scope)
    reference: str


def _role(lowest: str, reference: str, *permissions: str) -> Role:
    return Role(frozenset(permissions), lowest, reference)


IAM = "https://cloud.google.com/iam/docs/roles-permissions"
ROLES: dict[str, Role] = {
    "roles/storage.objectViewer": _role(
        "bucket", f"{IAM}/storage#storage.objectViewer", "storage.objects.get", "storage.objects.list"),
    "roles/storage.objectUser": _role(
        "bucket", f"{IAM}/storage#storage.objectUser", "storage.objects.create", "storage.objects.delete",
        "storage.objects.get", "storage.objects.list", "storage.objects.restore", "storage.objects.update",
        "storage.multipartUploads.abort", "storage.multipartUploads.create", "storage.multipartUploads.list",
        "storage.multipartUploads.listParts"),
    "roles/bigquery.dataViewer": _role(
        "dataset", f"{IAM}/bigquery#bigquery.dataViewer", "bigquery.datasets.get", "bigquery.tables.get",
        "bigquery.tables.getData", "bigquery.tables.list", "bigquery.tables.export"),
    "roles/bigquery.dataEditor": _role(
        "dataset", f"{IAM}/bigquery#bigquery.dataEditor", "bigquery.datasets.get", "bigquery.tables.create",
        "bigquery.tables.delete", "bigquery.tables.export", "bigquery.tables.get", "bigquery.tables.getData",
        "bigquery.tables.list", "bigquery.tables.update", "bigquery.tables.updateData"),
    # bigquery.jobs.create is a project permission: a job runs in a project, whatever it reads
    "roles/bigquery.jobUser": _role(
        "project", f"{IAM}/bigquery#bigquery.jobUser", "bigquery.jobs.create"),
    "roles/artifactregistry.writer": _role(
        "repository", f"{IAM}/artifactregistry#artifactregistry.writer",
        "artifactregistry.repositories.downloadArtifacts", "artifactregistry.repositories.uploadArtifacts"),
    # GKE's IAM roles are granted on the project (or higher); the namespace is narrowed by RBAC
    "roles/container.developer": _role(
        "project", f"{IAM}/container#container.developer", "container.clusters.get",
        "container.configMaps.update", "container.deployments.update", "container.services.update",
        "container.thirdPartyObjects.update"),
    "roles/logging.logWriter": _role(
        "project", f"{IAM}/logging#logging.logWriter", "logging.logEntries.create"),
    "roles/secretmanager.secretAccessor": _role(
        "secret", f"{IAM}/secretmanager#secretmanager.secretAccessor", "secretmanager.versions.access"),
    "roles/servicemanagement.configEditor": _role(
        "endpoints_service", f"{IAM}/servicemanagement#servicemanagement.configEditor",
        "servicemanagement.services.get", "servicemanagement.services.update"),
    "roles/servicemanagement.serviceController": _role(
        "endpoints_service", f"{IAM}/servicemanagement#servicemanagement.serviceController",
        "servicemanagement.services.check", "servicemanagement.services.get", "servicemanagement.services.quota",
        "servicemanagement.services.report"),
    # which services a project has enabled: a project's, granted there
    "roles/serviceusage.serviceUsageViewer": _role(
        "project", f"{IAM}/serviceusage#serviceusage.serviceUsageViewer", "serviceusage.services.get",
        "serviceusage.services.list"),
    "roles/cloudtrace.agent": _role(
        "project", f"{IAM}/cloudtrace#cloudtrace.agent", "cloudtrace.traces.patch"),
    "roles/run.developer": _role(
        "cloud_run_service", f"{IAM}/run#run.developer", "run.services.get", "run.services.update"),
    "roles/iam.serviceAccountUser": _role(
        "service_account", f"{IAM}/iam#iam.serviceAccountUser", "iam.serviceAccounts.actAs"),
}
BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")


def resource_name(names: Names, field: str) -> str:
    """The Names field an operation names -> the resource's name ("" for the project)."""
    if field == "project":
        return ""
    if field.endswith("_gsa"):
        return names.gsa_email(getattr(names, field))
    return getattr(names, field)


def covers(grant: Grant, op: Operation, names: Names, permission: str) -> bool:
    """Whether `grant` gives `permission` to op's identity on the resource op touched: a grant on
    the project covers everything in it, any other grant only its own resource."""
    if grant.identity != op.identity or permission not in ROLES[grant.role].permissions:
        return False
    return grant.scope == "project" or (grant.scope == op.scope and grant.resource == resource_name(names, op.resource))


def missing(grants: Iterable[Grant], ops: Iterable[Operation], names: Names) -> list[str]:
    """One line per permission an operation needs and no grant gives."""
    grants = list(grants)
    lines = []
    for op in ops:
        for permission in OPERATIONS[op.name].permissions:
            if not any(covers(g, op, names, permission) for g in grants):
                where = "the project" if op.scope == "project" else f"{op.scope} {resource_name(names, op.resource)}"
                what = f"{op.name}: {op.detail}" if op.detail else op.name
                lines.append(f"{op.identity}: {permission} on {where} is not granted ({what})")
    return sorted(set(lines))


def unused(grants: Iterable[Grant], ops: Iterable[Operation], names: Names) -> list[Grant]:
    """Grants no operation needs: none of their permissions covers any operation."""
    ops = list(ops)
    return [g for g in grants
            if not any(covers(g, op, names, p) for op in ops for p in OPERATIONS[op.name].permissions)]


def too_broad(grants: Iterable[Grant]) -> list[str]:
    """Basic roles, and project grants of roles that a bucket, dataset or other resource takes."""
    lines = []
    for g in grants:
        if g.role in BASIC_ROLES:
            lines.append(f"{g.identity}: holds the basic role {g.role}")
        elif g.scope == "project" and ROLES[g.role].lowest != "project":
            lines.append(f"{g.identity}: {g.role} on the project, where a {ROLES[g.role].lowest}-level grant serves")
        elif g.scope not in ("project", ROLES[g.role].lowest):
            lines.append(f"{g.identity}: {g.role} cannot be granted on a {g.scope}")
    return lines
