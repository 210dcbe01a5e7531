"""The grants of deploy/gcp/iam.py cover every Google API operation the code makes, per identity,
on the resource it touches, and nothing broader.

The operations: those recorded from the code's own calls against the emulators
(deploy/gcp/recorded_calls.json, kept current by tests/integration/test_recorded_calls.py) and
those derived from cloudbuild.yaml and the sidecars (deploy/gcp/operations.py `derived`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deploy.gcp import iam, permissions
from deploy.gcp.iam import Grant, grants
from deploy.gcp.operations import Operation, derived
from deploy.gcp.permissions import OPERATIONS, ROLES, missing, too_broad, unused
from deploy.names import STACKS, names_for

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "deploy" / "gcp" / "recorded_calls.json"
OPTIONS = [dict(cloud_run=c, endpoints=e) for c in (False, True) for e in (False, True)]
NAMES = names_for("prod", "my-project")


def recorded() -> list[Operation]:
    fixture = json.loads(FIXTURE.read_text())
    return [Operation(identity, op["operation"], op["scope"], op["resource"], (op["examples"] or [""])[0])
            for identity, body in fixture["identities"].items() for op in body["operations"]]


def operations(**options: bool) -> list[Operation]:
    return recorded() + [d.operation for d in derived(**options)]


def test_the_recording_covers_the_pipeline_and_the_server_and_notify_makes_no_google_call():
    fixture = json.loads(FIXTURE.read_text())["identities"]
    assert set(fixture) == {"pipeline", "server"}
    flows = fixture["pipeline"]["flows"]
    assert "exit handler: notify" in flows and any(f.startswith("catch-up") for f in flows)
    assert all(f"step pod: {step}" in flows for step in ("ingest", "preprocess", "gate", "load", "verify"))
    assert {"storage.objects.get", "bigquery.jobs.insert"} <= {op.name for op in recorded() if op.identity == "server"}
    made_by_notify = [op["operation"] for op in fixture["pipeline"]["operations"] if "exit handler: notify" in op["flows"]]
    assert made_by_notify == [], "notify reads its webhook from a Kubernetes Secret and calls no Google API"


def test_every_operation_has_its_permissions_and_every_granted_role_its_reference():
    names = {op.name for opts in OPTIONS for op in operations(**opts)}
    assert names <= set(OPERATIONS), f"operations with no permission mapping: {sorted(names - set(OPERATIONS))}"
    roles = {g.role for opts in OPTIONS for g in grants(NAMES, **opts)}
    assert roles <= set(ROLES), f"roles with no permission table: {sorted(roles - set(ROLES))}"
    for role in roles:
        assert ROLES[role].reference.startswith("https://cloud.google.com/iam/docs/roles-permissions/"), role
        assert ROLES[role].reference.endswith("#" + role.removeprefix("roles/")), role


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "gke")
def test_every_operation_of_every_identity_is_granted_on_its_resource(stack, options):
    names = names_for(stack, f"airtime-{stack}-1")
    assert missing(grants(names, **options), operations(**options), names) == []


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "gke")
def test_no_grant_goes_unused(options):
    assert unused(grants(NAMES, **options), operations(**options), NAMES) == []


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(k for k, v in o.items() if v) or "gke")
def test_no_basic_role_and_no_project_grant_where_a_resource_takes_one(options):
    assert too_broad(grants(NAMES, **options)) == []
    project_roles = {g.role for g in grants(NAMES, **options) if g.scope == "project"}
    # each one exists on projects only: jobs, log entries, GKE, traces, a project's enabled services
    assert project_roles <= {"roles/bigquery.jobUser", "roles/logging.logWriter", "roles/container.developer",
                             "roles/cloudtrace.agent", "roles/serviceusage.serviceUsageViewer"}


def _without(all_grants: list[Grant], identity: str, role: str) -> list[Grant]:
    kept = [g for g in all_grants if not (g.identity == identity and g.role == role)]
    assert len(kept) == len(all_grants) - 1
    return kept


def test_without_the_servers_read_on_the_artifact_bucket_the_check_names_what_fails():
    kept = _without(grants(NAMES), "server", "roles/storage.objectViewer")
    assert missing(kept, operations(), NAMES) == [
        "server: storage.objects.get on bucket my-project-airtime-artifacts is not granted"
        " (storage.objects.get: airtime/published.json)"]


def test_without_the_deployers_cloud_run_role_the_check_names_what_fails():
    kept = _without(grants(NAMES, cloud_run=True), "deployer", "roles/run.developer")
    assert missing(kept, operations(cloud_run=True), NAMES) == [
        f"deployer: {p} on cloud_run_service airtime is not granted (run.services.replace: deploy/cloudrun/service.yaml)"
        for p in ("run.services.get", "run.services.update")]


def test_without_service_usage_read_an_endpoints_deploy_is_refused():
    kept = _without(grants(NAMES, endpoints=True), "deployer", "roles/serviceusage.serviceUsageViewer")
    assert missing(kept, operations(endpoints=True), NAMES) == [
        "deployer: serviceusage.services.get on the project is not granted (serviceusage.services.get:"
        " endpoints.googleapis.com and the Endpoints service, enabled?)"]


def test_without_actas_on_the_servers_account_a_cloud_run_deploy_is_refused():
    kept = _without(grants(NAMES, cloud_run=True), "deployer", "roles/iam.serviceAccountUser")
    assert missing(kept, operations(cloud_run=True), NAMES) == [
        "deployer: iam.serviceAccounts.actAs on service_account airtime-server@my-project.iam.gserviceaccount.com"
        " is not granted (iam.serviceAccounts.actAs: serviceAccountName: airtime-server@...)"]


def test_a_grant_on_another_bucket_does_not_cover_the_artifact_bucket():
    moved = [Grant(g.identity, g.role, g.scope, NAMES.source_bucket, g.why)
             if (g.identity, g.resource) == ("server", NAMES.artifact_bucket) else g for g in grants(NAMES)]
    assert missing(moved, operations(), NAMES) == [
        "server: storage.objects.get on bucket my-project-airtime-artifacts is not granted"
        " (storage.objects.get: airtime/published.json)"]


def test_the_check_refuses_basic_roles_project_wide_data_roles_and_unused_grants():
    broad = [Grant("server", "roles/viewer", "project", "", "x"),
             Grant("server", "roles/storage.objectViewer", "project", "", "x"),
             Grant("pipeline", "roles/bigquery.dataEditor", "project", "", "x")]
    assert too_broad(broad) == [
        "server: holds the basic role roles/viewer",
        "server: roles/storage.objectViewer on the project, where a bucket-level grant serves",
        "pipeline: roles/bigquery.dataEditor on the project, where a dataset-level grant serves"]
    spare = Grant("server", "roles/storage.objectViewer", "bucket", NAMES.source_bucket, "x")
    assert unused([*grants(NAMES), spare], operations(), NAMES) == [spare]


def test_replacing_an_object_takes_delete_so_the_pipeline_needs_more_than_object_creator():
    ops = [op for op in recorded() if op.identity == "pipeline" and op.name == "storage.objects.insert (replacing)"]
    assert ops, "the pipeline rewrites published.json and its manifests"
    kept = [Grant(g.identity, "roles/storage.objectViewer" if g.role == "roles/storage.objectUser" else g.role,
                  g.scope, g.resource, g.why) if g.identity == "pipeline" else g for g in grants(NAMES)]
    assert any("storage.objects.delete" in line for line in missing(kept, operations(), NAMES))


def test_airtime_never_reads_bucket_metadata_itself():
    # the one storage.buckets.get recorded is google-cloud-storage's own background fetch, which
    # tolerates 403 (deploy/gcp/operations.py); a call of the code's own would need a bucket role
    calls = re.compile(r"\b(get_bucket|lookup_bucket)\(|\.bucket\([^)]*\)\.(reload|exists)\(")
    found = [f"{path.relative_to(ROOT)}:{n}" for folder in ("airtime", "steps", "grpc_server", "cli")
             for path in (ROOT / folder).rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if calls.search(line)]
    assert found == []


def test_docs_gcp_identity_table_is_the_grants():
    text = (ROOT / "docs" / "gcp.md").read_text()
    block = re.search(r"<!-- iam-table: .*? -->\n(.*?)\n<!-- /iam-table -->", text, re.S)
    assert block, "docs/gcp.md has no generated identity table"
    assert block[1] == iam.markdown_table(NAMES), "regenerate: python -m deploy.gcp.iam --write"


def test_roles_cite_permissions_the_operations_use():
    used = {p for opts in OPTIONS for op in operations(**opts) for p in OPERATIONS[op.name].permissions}
    for role in {g.role for opts in OPTIONS for g in grants(NAMES, **opts)}:
        assert ROLES[role].permissions & used, f"{role}: none of its listed permissions is used"
    assert permissions.BASIC_ROLES == ("roles/owner", "roles/editor", "roles/viewer")
