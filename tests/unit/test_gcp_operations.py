"""deploy/gcp/operations.py names each recorded HTTP call's operation, and refuses one it does not
know: a new kind of call in the code fails the permissions test until it is mapped."""

from __future__ import annotations

import pytest

from deploy.gcp.operations import OWN_JOB, Call, Operation, Resources, UnmappedCall, operations_of

RESOURCES = Resources(project="local", buckets={"art-1": "artifact_bucket", "src-1": "source_bucket"},
                      datasets={"airtime_1": "dataset"})


def ops(call: Call) -> list[tuple[str, str, str, str]]:
    return [(o.name, o.scope, o.resource, o.detail) for o in operations_of("server", call, RESOURCES)]


def test_object_reads_lists_and_writes_are_named_on_their_bucket():
    assert ops(Call("GET", "/download/storage/v1/b/art-1/o/airtime%2Fpublished.json", {"alt": "media"})) == [
        ("storage.objects.get", "bucket", "artifact_bucket", "airtime/published.json")]
    assert ops(Call("GET", "/storage/v1/b/src-1/o", {"prefix": "incoming/dt=2026-11-30/"})) == [
        ("storage.objects.list", "bucket", "source_bucket", "incoming/dt={date}/")]
    create_only = Call("POST", "/upload/storage/v1/b/art-1/o", {"uploadType": "multipart", "ifGenerationMatch": "0"},
                       {"name": "airtime/runs/2026-11-30/0123456789abcdef/ingest/a.parquet"})
    assert ops(create_only) == [("storage.objects.insert", "bucket", "artifact_bucket",
                                 "airtime/runs/{date}/{digest}/ingest/a.parquet")]
    replacing = Call("POST", "/upload/storage/v1/b/art-1/o", {"uploadType": "multipart"}, {"name": "airtime/published.json"})
    assert ops(replacing)[0][0] == "storage.objects.insert (replacing)"


def test_a_query_job_is_a_job_on_the_project_and_reads_and_changes_on_the_dataset():
    sql = ("BEGIN TRANSACTION; DELETE FROM `local.airtime_1.forecast` WHERE run_date = @d;"
           " INSERT INTO `local.airtime_1.forecast` (a) SELECT a FROM `local.airtime_1._staging_forecast_20261130_ab`;"
           " COMMIT TRANSACTION;")
    got = ops(Call("POST", "/bigquery/v2/projects/local/jobs", {}, {"configuration": {"query": {"query": sql}}}))
    assert got == [("bigquery.jobs.insert", "project", "project", "query"),
                   ("bigquery.jobs.insert: query changes a table", "dataset", "dataset", "forecast"),
                   ("bigquery.jobs.insert: query changes a table", "dataset", "dataset", "forecast"),
                   ("bigquery.jobs.insert: query reads a table", "dataset", "dataset", "_staging_forecast_{yyyymmdd}_ab")]


def test_a_load_job_sent_with_its_file_writes_its_destination_table():
    body = {"configuration": {"load": {"destinationTable": {
        "projectId": "local", "datasetId": "airtime_1", "tableId": "_staging_forecast_20261130_ab"}}}}
    got = ops(Call("POST", "/upload/bigquery/v2/projects/local/jobs", {"uploadType": "resumable"}, body))
    assert got[1] == ("bigquery.jobs.insert: load into a table", "dataset", "dataset", "_staging_forecast_{yyyymmdd}_ab")
    assert ops(Call("PUT", "/upload/bigquery/v2/projects/local/jobs", {"upload_id": "x"})) == []


def test_waiting_for_a_job_is_reading_ones_own_job():
    assert ops(Call("GET", "/bigquery/v2/projects/local/queries/job_1"))[0][0] == OWN_JOB
    assert ops(Call("GET", "/bigquery/v2/projects/local/jobs/job_1"))[0][0] == OWN_JOB


@pytest.mark.parametrize("call", [
    Call("POST", "/storage/v1/b/art-1/o/x/rewriteTo/b/src-1/o/y"),  # a copy: not mapped
    Call("GET", "/storage/v1/b/other-bucket/o/x"),  # a bucket the environment does not have
    Call("GET", "/bigquery/v2/projects/another/datasets/airtime_1"),  # another project
    Call("POST", "/bigquery/v2/projects/local/jobs", {}, {"configuration": {"extract": {}}}),  # an export
    Call("GET", "/compute/v1/projects/local/zones"),
], ids=["copy", "other-bucket", "other-project", "extract-job", "other-api"])
def test_a_call_it_does_not_know_fails_loudly(call):
    with pytest.raises(UnmappedCall):
        operations_of("server", call, RESOURCES)


def test_operations_compare_by_identity_name_scope_and_resource():
    a = Operation("server", "storage.objects.get", "bucket", "artifact_bucket", "x")
    b = Operation("server", "storage.objects.get", "bucket", "artifact_bucket", "y")
    assert a.key == b.key and a != b
