"""Google API calls as operations on resources: what a recorded HTTP call asks of IAM.

`operations_of(call, resources)` turns one call of the Cloud Storage JSON API or the BigQuery
REST API (as the client libraries send it, recorded by tests/api_proxy.py in front of the
emulators) into operations: an API method on one resource, named by the Names field it is
(`artifact_bucket`, `dataset`, `project`). A BigQuery job is several: the job itself on the
project, and what it does to tables, on their dataset. A call it does not know raises
UnmappedCall: a new kind of call in the code fails the permissions test until it is mapped
here and its permission is in deploy/gcp/permissions.py.

Operations that cannot be recorded here (what Cloud Build's steps do, ESPv2 beside the
server, the Cloud Build notifier) are declared in DERIVED, each citing where it comes from.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Call:
    """One HTTP request as the client library sent it."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping | None = None  # the JSON it carried (a job's configuration), if any
    status: int = 0


@dataclass(frozen=True, order=True)
class Operation:
    identity: str
    name: str  # an API method, qualified where the permission depends on it
    scope: str  # project | bucket | dataset | ... (deploy/gcp/iam.py SCOPES)
    resource: str  # the Names field naming the resource: artifact_bucket, dataset, project
    detail: str = ""  # what it touched, generalised (an object key, a table)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.identity, self.name, self.scope, self.resource)


# the client library waits for a job with jobs.get or jobs.getQueryResults, as timing has it:
# one operation, which needs no permission beyond having created the job
OWN_JOB = "bigquery: its own job's status and results"


class UnmappedCall(ValueError):
    """A call this module cannot name an operation for."""


_STORAGE = re.compile(r"^(?:/download|/upload)?/storage/v1/b/(?P<bucket>[^/]+)(?P<rest>/o(?:/(?P<object>.+))?)?$")
_BQ = re.compile(r"^(?P<upload>/upload)?/bigquery/v2/projects/(?P<project>[^/]+)/(?P<rest>.*)$")
_TABLE_REF = re.compile(r"`(?P<project>[a-z][a-z0-9.:-]*)\.(?P<dataset>\w+)\.(?P<table>\w+)`")
_WRITTEN = re.compile(r"\b(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE|MERGE(?:\s+INTO)?)\s+`(?P<ref>[^`]+)`", re.I)


def generalise(text: str) -> str:
    """Object keys and table names without the parts that change per run."""
    text = urllib.parse.unquote(text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "{date}", text)
    text = re.sub(r"(?<![0-9a-f])[0-9a-f]{16,64}(?![0-9a-f])", "{digest}", text)
    text = re.sub(r"(?<!\d)\d{8}(?!\d)", "{yyyymmdd}", text)
    return text


class Resources:
    """Real names seen in calls -> the Names field each one is, per kind."""

    def __init__(self, *, project: str, buckets: Mapping[str, str], datasets: Mapping[str, str]) -> None:
        self.project, self.buckets, self.datasets = project, dict(buckets), dict(datasets)

    def bucket(self, name: str, call: Call) -> str:
        if name not in self.buckets:
            raise UnmappedCall(f"{call.method} {call.path}: bucket {name!r} is none of {sorted(self.buckets)}")
        return self.buckets[name]

    def dataset(self, name: str, call: Call) -> str:
        if name not in self.datasets:
            raise UnmappedCall(f"{call.method} {call.path}: dataset {name!r} is none of {sorted(self.datasets)}")
        return self.datasets[name]

    def check_project(self, project: str, call: Call) -> None:
        if project != self.project:
            raise UnmappedCall(f"{call.method} {call.path}: project {project!r} is not {self.project!r}")


def operations_of(identity: str, call: Call, resources: Resources) -> list[Operation]:
    """The operations one recorded call makes; UnmappedCall when it is not a known one."""
    if m := _STORAGE.match(call.path):
        return _storage(identity, call, m, resources)
    if m := _BQ.match(call.path):
        resources.check_project(m["project"], call)
        return _bigquery(identity, call, m, resources)
    raise UnmappedCall(f"{call.method} {call.path}: not a Cloud Storage or BigQuery API call")


def _storage(identity: str, call: Call, m: re.Match, resources: Resources) -> list[Operation]:
    bucket = resources.bucket(m["bucket"], call)
    obj = generalise(m["object"] or "")

    def op(name: str, detail: str = obj) -> list[Operation]:
        return [Operation(identity, name, "bucket", bucket, detail)]

    if m["rest"] is None:
        if call.method == "GET":
            # not the code's: google-cloud-storage (3.17) fetches each bucket's metadata once,
            # in the background, for its trace attributes, and keeps a fallback on 403
            # (google/cloud/storage/_bucket_metadata_cache.py, _fetch_background); airtime never
            # reads a bucket (tests/unit/test_iam_covers_calls.py greps for it)
            return op("storage.buckets.get (client library's metadata cache)", "")
    elif m["object"] is None:
        if call.method == "GET" and not call.path.startswith(("/upload", "/download")):
            return op("storage.objects.list", generalise(call.query.get("prefix", "")))
        if call.method == "POST" and call.path.startswith("/upload"):
            name = generalise(call.query.get("name") or (call.body or {}).get("name", ""))
            # a precondition of generation 0 creates only; otherwise an existing object of the
            # same name is replaced, which takes storage.objects.delete too
            only_new = call.query.get("ifGenerationMatch") == "0"
            return op("storage.objects.insert" if only_new else "storage.objects.insert (replacing)", name)
        if call.method == "PUT" and call.path.startswith("/upload") and "upload_id" in call.query:
            return []  # the rest of a resumable upload, authorised when its session was opened
    else:
        if call.method == "GET":
            return op("storage.objects.get")
        if call.method == "DELETE":
            return op("storage.objects.delete")
    raise UnmappedCall(f"{call.method} {call.path}: an unknown Cloud Storage call")


def _bigquery(identity: str, call: Call, m: re.Match, resources: Resources) -> list[Operation]:
    rest, method = m["rest"].rstrip("/"), call.method
    parts = rest.split("/")
    project_op = lambda name, detail="": [Operation(identity, name, "project", "project", detail)]  # noqa: E731
    if parts[0] == "datasets":
        if len(parts) == 1 and method == "POST":
            return project_op("bigquery.datasets.insert")
        dataset = resources.dataset(parts[1], call)

        def op(name: str, detail: str = "") -> list[Operation]:
            return [Operation(identity, name, "dataset", dataset, generalise(detail))]

        if len(parts) == 2 and method == "GET":
            return op("bigquery.datasets.get")
        if len(parts) == 3 and parts[2] == "tables" and method == "POST":
            return op("bigquery.tables.insert", ((call.body or {}).get("tableReference") or {}).get("tableId", ""))
        if len(parts) == 4 and parts[2] == "tables":
            verb = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method)
            if verb:
                return op(f"bigquery.tables.{verb}", parts[3])
        if len(parts) == 5 and parts[2] == "tables" and parts[4] == "data" and method == "GET":
            return op("bigquery.tabledata.list", parts[3])
    if parts[0] == "jobs":
        if len(parts) == 1 and method == "POST":
            if m["upload"] and "upload_id" in call.query:
                return []  # the file of a load job, sent after the job was created
            return project_op("bigquery.jobs.insert", _job_kind(call)) + _job_effects(identity, call, resources)
        if len(parts) == 1 and method == "PUT" and m["upload"] and "upload_id" in call.query:
            return []
        if len(parts) == 2 and method == "GET":
            return project_op(OWN_JOB, "jobs.get")
        if len(parts) == 3 and parts[2] == "cancel" and method == "POST":
            return project_op(OWN_JOB, "jobs.cancel")
    if parts[0] == "queries":
        if len(parts) == 1 and method == "POST":
            query = {"configuration": {"query": {"query": (call.body or {}).get("query", "")}}}
            return project_op("bigquery.jobs.query", "query") + _job_effects(
                identity, Call(call.method, call.path, call.query, query), resources)
        if len(parts) == 2 and method == "GET":
            return project_op(OWN_JOB, "jobs.getQueryResults")
    raise UnmappedCall(f"{call.method} {call.path}: an unknown BigQuery call")


def _job_kind(call: Call) -> str:
    config = (call.body or {}).get("configuration") or {}
    kinds = [k for k in ("query", "load", "extract", "copy") if k in config]
    if len(kinds) != 1:
        raise UnmappedCall(f"{call.method} {call.path}: a job that is not one query or load: {sorted(config)}")
    return kinds[0]


def _job_effects(identity: str, call: Call, resources: Resources) -> list[Operation]:
    """What a job does to tables, per table's dataset: a load writes its destination; a query
    reads every table it names and changes those its DML statements name."""
    config = (call.body or {}).get("configuration") or {}
    kind = _job_kind(call)
    if kind == "load":
        dest = config["load"]["destinationTable"]
        resources.check_project(dest["projectId"], call)
        return [Operation(identity, "bigquery.jobs.insert: load into a table", "dataset",
                          resources.dataset(dest["datasetId"], call), generalise(dest["tableId"]))]
    if kind == "query":
        sql = config["query"]["query"]
        written = {ref for ref in _WRITTEN.findall(sql)}
        ops = []
        for ref in _TABLE_REF.finditer(sql):
            resources.check_project(ref["project"], call)
            dataset = resources.dataset(ref["dataset"], call)
            name = ("bigquery.jobs.insert: query changes a table" if ref[0].strip("`") in written
                    else "bigquery.jobs.insert: query reads a table")
            ops.append(Operation(identity, name, "dataset", dataset, generalise(ref["table"])))
        return ops
    raise UnmappedCall(f"{call.method} {call.path}: a {kind} job")


# -- operations that cannot run here, derived from the commands that make them ----------------

GCS_JSON = "https://cloud.google.com/storage/docs/access-control/iam-json"

@dataclass(frozen=True)
class Derived:
    operation: Operation
    source: str  # the line of our files that makes it
    reference: str  # Google's page saying which permission the command needs


def derived(*, cloud_run: bool = False, endpoints: bool = False) -> list[Derived]:
    """What Cloud Build's steps (cloudbuild.yaml), ESPv2 beside the server and the Cloud Build
    notifier ask of Google Cloud, for the options that deploy them."""
    d = [
        Derived(Operation("pipeline", "storage.objects.insert", "bucket", "artifact_bucket",
                          "argo/{Y}/{m}/{d}/{workflow}/{pod}/main.log"),
                "charts/airtime/values.yaml artifactRepository.archiveLogs: Argo's wait container in each"
                " step pod uploads the step's log, as the pod's account",
                GCS_JSON),
        Derived(Operation("deployer", "artifactregistry: docker push", "repository", "image_repository",
                          "{region}-docker.pkg.dev/{project}/{image_repository}/airtime"),
                "cloudbuild.yaml build-push: skaffold build -p prod --default-repo=...",
                "https://cloud.google.com/artifact-registry/docs/docker/pushing-and-pulling#required-roles"),
        Derived(Operation("deployer", "storage.objects.insert (replacing)", "bucket", "artifact_bucket",
                          "deploy/workflows/current/*.yaml"),
                "cloudbuild.yaml upload-workflow-specs: gcloud storage cp workflow-specs/*.yaml gs://.../current/",
                "https://cloud.google.com/storage/docs/access-control/iam-gcloud (cp: objects create; delete to"
                " replace)"),
        Derived(Operation("deployer", "container.clusters.get", "project", "project", "get-credentials"),
                "cloudbuild.yaml deploy: gcloud container clusters get-credentials",
                "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl"),
        Derived(Operation("deployer", "kubernetes: helm upgrade --install", "project", "project",
                          "Deployments, Services, ConfigMaps, WorkflowTemplate... in the namespace"),
                "cloudbuild.yaml deploy: skaffold deploy -p prod (Helm)",
                "https://cloud.google.com/kubernetes-engine/docs/how-to/iam"),
        Derived(Operation("deployer", "logging.logEntries.create", "project", "project", "build logs"),
                "cloudbuild.yaml options.logging: CLOUD_LOGGING_ONLY (a user-managed build account)",
                "https://cloud.google.com/build/docs/securing-builds/configure-user-specified-service-accounts"),
        Derived(Operation("notifier", "secretmanager.versions.access", "secret", "build_webhook_secret",
                          "the webhook URL"),
                "docs/deploy.md: the Cloud Build Slack notifier (Cloud Run) reads its webhook secret",
                "https://cloud.google.com/build/docs/configuring-notifications/configure-slack"),
        Derived(Operation("notifier", "storage.objects.get", "bucket", "notifier_bucket", "notifier.yaml"),
                "docs/deploy.md: the notifier reads CONFIG_PATH=gs://<notifier bucket>/notifier.yaml",
                "https://cloud.google.com/build/docs/configuring-notifications/configure-slack"),
    ]
    if endpoints:
        d += [
            Derived(Operation("deployer", "serviceusage.services.get", "project", "project",
                              "endpoints.googleapis.com and the Endpoints service, enabled?"),
                    "cloudbuild.yaml deploy-endpoints: gcloud endpoints services deploy calls EnableServiceIfDisabled"
                    " before and after the rollout (googlecloudsdk surface/endpoints/services/deploy.py); it reads"
                    " the service with Service Usage and stops on 403 (api_lib/services/enable_api.py"
                    " IsServiceEnabled); both are enabled by the program, so it never enables one",
                    "https://cloud.google.com/service-usage/docs/access-control"),
            Derived(Operation("deployer", "servicemanagement.services.configs.submit + rollouts.create",
                              "endpoints_service", "endpoints_service", "api_config.yaml + descriptor set"),
                    "cloudbuild.yaml deploy-endpoints: gcloud endpoints services deploy",
                    "https://cloud.google.com/service-infrastructure/docs/service-management/access-control"),
            Derived(Operation("server", "servicecontrol: check + report, config fetch", "endpoints_service",
                              "endpoints_service", "ESPv2 --rollout_strategy=managed"),
                    "charts/airtime/templates/deployment.yaml: the ESPv2 container (server.esp)",
                    "https://cloud.google.com/endpoints/docs/grpc/api-access-overview"),
            Derived(Operation("server", "cloudtrace.traces.patch", "project", "project", "ESPv2 traces"),
                    "charts/airtime/templates/deployment.yaml: ESPv2 without --disable_tracing",
                    "https://cloud.google.com/endpoints/docs/grpc/tracing"),
        ]
    if cloud_run:
        d += [
            Derived(Operation("deployer", "run.services.replace", "cloud_run_service", "cloud_run_service",
                              "deploy/cloudrun/service.yaml"),
                    "cloudbuild.yaml deploy: skaffold deploy -p cloudrun, which gets the service and replaces it"
                    " (creates it only when missing; the program creates it) and sets no IAM policy"
                    " (GoogleContainerTools/skaffold pkg/skaffold/deploy/cloudrun/deploy.go)",
                    "https://cloud.google.com/run/docs/reference/iam/roles#additional-configuration"),
            Derived(Operation("deployer", "iam.serviceAccounts.actAs", "service_account", "server_gsa",
                              "serviceAccountName: airtime-server@..."),
                    "deploy/cloudrun/service.yaml: the revision runs as the server's account",
                    "https://cloud.google.com/run/docs/reference/iam/roles#additional-configuration"),
        ]
    return d
