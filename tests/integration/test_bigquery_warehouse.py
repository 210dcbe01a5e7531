"""What only the BigQuery warehouse has: table options, staged loads with deterministic
job ids, the transaction, query guards and error mapping (against local-bigquery)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

import airtime.bigquery_warehouse as bqw
from airtime.bigquery_warehouse import BigQueryWarehouse
from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import ConfigError, StorageError
from airtime.resources import open_warehouse
from airtime.settings import Settings
from airtime.warehouse import RunLoad
from tests import emulators
from tests.warehouse_backends import parquet_figures, run_load, write_run_files

pytestmark = pytest.mark.emulators
D1 = dt.date(2026, 12, 1)
MAX_BYTES = 123_456_789


@pytest.fixture
def client(bigquery_emulator) -> bigquery.Client:
    return emulators.bigquery_client(bigquery_emulator)


@pytest.fixture
def warehouse(client) -> BigQueryWarehouse:
    return BigQueryWarehouse(client, f"airtime_{uuid.uuid4().hex[:10]}",
                             maximum_bytes_billed=MAX_BYTES)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return write_run_files(tmp_path / "d1", D1)


def test_tables_are_created_once_with_schemas_partitions_clustering_and_labels(warehouse, client):
    warehouse.ensure_schema()
    BigQueryWarehouse(client, warehouse.dataset).ensure_schema()  # idempotent, new instance
    dataset = client.get_dataset(f"local.{warehouse.dataset}")
    assert dataset.labels["app"] == "airtime"
    assert dataset.description
    names = sorted(t.table_id for t in client.list_tables(dataset))
    assert names == ["attempts", "forecast", "raw_audience", "raw_availability", "runs"]
    for name in ("raw_audience", "raw_availability", "forecast"):
        table = client.get_table(f"local.{warehouse.dataset}.{name}")
        assert table.time_partitioning.type_ == "DAY"
        assert table.time_partitioning.field == "run_date"
        assert table.require_partition_filter
        assert table.clustering_fields == ["signal", "program_code"]
        assert table.labels["app"] == "airtime"
        assert table.description
        assert table.schema[0].name == "run_date" and table.schema[0].mode == "REQUIRED"
    forecast = client.get_table(f"local.{warehouse.dataset}.forecast")
    prediction = next(f for f in forecast.schema if f.name == "predicted_audience")
    assert prediction.mode == "NULLABLE" and "median" in prediction.description.lower()


def test_a_query_without_the_partition_filter_is_refused(warehouse, client):
    warehouse.ensure_schema()
    with pytest.raises(api_exceptions.BadRequest, match="partition"):
        client.query(f"SELECT COUNT(*) FROM `local.{warehouse.dataset}.forecast`").result()


def test_every_query_job_carries_maximum_bytes_billed(warehouse, client, files):
    warehouse.load_run(run_load(D1, files))
    warehouse.figures(D1, "digest-1")
    warehouse.publish(D1, "digest-1", "digest-1")
    warehouse.record_failure(D1, "digest-1", "notify", "webhook down")
    warehouse.ledger()
    warehouse.read_forecast(D1)
    ours = [job for job in client.list_jobs()
            if job.job_type == "query" and warehouse.dataset in (job.query or "")]
    assert len(ours) >= 6
    assert {client.get_job(job.job_id).maximum_bytes_billed for job in ours} == {MAX_BYTES}


def test_staging_loads_use_deterministic_job_ids_and_a_retry_reuses_them(warehouse, client, files):
    warehouse.ensure_schema()
    first = warehouse._stage(D1, "forecast", files["forecast"])
    digest = hashlib.sha256(files["forecast"].read_bytes()).hexdigest()[:20]
    job_id = f"airtime_load_{warehouse.dataset}_forecast_20261201_{digest}"
    job = client.get_job(job_id)
    assert job.state == "DONE" and job.error_result is None
    # the retried step: same job id, Conflict, waits for the job there, loads nothing new
    assert warehouse._stage(D1, "forecast", files["forecast"]) == first
    loads = [j.job_id for j in client.list_jobs() if j.job_id.startswith(job_id)]
    assert loads == [job_id]
    rows = client.query(f"SELECT COUNT(*) AS n FROM `{first}`").result()
    assert next(iter(rows))["n"] == 120


def test_an_earlier_job_that_left_its_staging_table_empty_is_not_trusted(warehouse, client, files,
                                                                        tmp_path):
    # a step killed mid-upload: the deterministic job exists, but loaded no rows
    warehouse.ensure_schema()
    digest = hashlib.sha256(files["forecast"].read_bytes()).hexdigest()[:20]
    stem = f"forecast_20261201_{digest}"
    staging_id = f"local.{warehouse.dataset}._staging_{stem}"
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(files["forecast"]).slice(0, 0), empty)
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                    schema=bqw.staging_schema("forecast"))
    with empty.open("rb") as fh:
        client.load_table_from_file(fh, staging_id, job_id=f"airtime_load_{warehouse.dataset}_{stem}",
                                    job_config=config).result()

    assert warehouse._stage(D1, "forecast", files["forecast"]) == staging_id
    rows = client.query(f"SELECT COUNT(*) AS n FROM `{staging_id}`").result()
    assert next(iter(rows))["n"] == 120
    warehouse.load_run(run_load(D1, files))
    assert warehouse.figures(D1, "digest-1") == parquet_figures(files)


def test_a_failing_statement_rolls_back_the_whole_load_transaction(warehouse, client, files,
                                                                   tmp_path, monkeypatch):
    warehouse.load_run(run_load(D1, files))
    warehouse.publish(D1, "digest-1", "digest-1")
    before = warehouse.figures(D1, "digest-1")

    def drop_forecast_staging(point: str) -> None:
        # between the staging loads and the transaction: make its last INSERT fail
        assert point == "load-before-commit"
        for table in client.list_tables(f"local.{warehouse.dataset}"):
            if table.table_id.startswith("_staging_forecast_"):
                client.delete_table(table)

    monkeypatch.setattr(bqw.faults, "crash_point", drop_forecast_staging)
    changed = write_run_files(tmp_path / "d1b", D1, variant=1, rows=60)
    with pytest.raises(StorageError, match="load transaction of run 2026-12-01"):
        warehouse.load_run(run_load(D1, changed, "digest-2"))
    assert warehouse.figures(D1, "digest-1") == before  # audience and availability were not replaced
    record = warehouse.run_record(D1)
    assert (record.state, record.input_digest) == ("published", "digest-1")


def test_figures_and_forecast_equal_duckdb_for_the_same_files(warehouse, files, tmp_path):
    duck = DuckDBWarehouse(tmp_path / "w.duckdb")
    for target in (duck, warehouse):
        target.load_run(run_load(D1, files))
    assert warehouse.figures(D1, "digest-1") == duck.figures(D1, "digest-1") == parquet_figures(files)
    assert warehouse.read_forecast(D1).equals(duck.read_forecast(D1))


def test_a_parquet_file_with_the_wrong_columns_fails_the_load_naming_it(warehouse, files, tmp_path):
    bad = tmp_path / "forecast.parquet"
    pq.write_table(pa.table({"signal": ["SP"], "history_size": [None]}), bad)
    with pytest.raises(StorageError, match=r"load of forecast\.parquet into .*_staging_forecast_"):
        warehouse.load_run(RunLoad(D1, "digest-1", "digest-1", {**files, "forecast": bad},
                                   parquet_figures(files)))
    assert warehouse.run_record(D1) is None


def test_open_warehouse_builds_the_bigquery_one_from_gcp_settings(bigquery_emulator, files):
    settings = Settings(profile="gcp", gcp_project="local", bq_dataset=f"airtime_{uuid.uuid4().hex[:8]}",
                        bq_api_endpoint=bigquery_emulator.url, bq_maximum_bytes_billed=10**9)
    warehouse = open_warehouse(settings)
    assert isinstance(warehouse, BigQueryWarehouse)
    warehouse.load_run(run_load(D1, files))
    assert warehouse.run_record(D1).state == "loaded"


def test_an_unreachable_bigquery_is_a_storage_error():
    from google.auth.credentials import AnonymousCredentials

    dead = f"http://127.0.0.1:{emulators.free_port()}"
    client = bigquery.Client(project="local", credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": dead})
    warehouse = BigQueryWarehouse(client, "airtime", retry_timeout=0.5)
    with pytest.raises(StorageError, match="BigQuery ledger read"):
        warehouse.ledger()
    with pytest.raises(StorageError, match="BigQuery create dataset and tables"):
        warehouse.record_failure(D1, "digest-1", "load", "x")


def test_an_emulator_endpoint_without_a_project_is_a_config_error():
    settings = Settings(profile="gcp", bq_api_endpoint="http://127.0.0.1:9", gcp_project=None)
    with pytest.raises(ConfigError, match="AIRTIME_GCP_PROJECT"):
        open_warehouse(settings)


def test_names_that_cannot_be_identifiers_are_config_errors(client):
    with pytest.raises(ConfigError, match="dataset"):
        BigQueryWarehouse(client, "airtime`; DROP TABLE x; --")
    with pytest.raises(ConfigError, match="project"):
        BigQueryWarehouse(client, "airtime", project="Bad Project")
