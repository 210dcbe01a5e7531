"""The same rows give the same checksum in DuckDB, in BigQuery (local-bigquery emulator) and
in plain Python, for every version a manifest may name: the manifests' figures (DuckDB) and
verify's read-back (either warehouse) compare like with like."""

from __future__ import annotations

import io
import uuid

import duckdb
import pyarrow.parquet as pq
import pytest
from google.cloud import bigquery

from airtime import checksum
from airtime.schema import DATA_TABLES
from tests import emulators
from tests.checksum_rows import arrow_table, edge_rows

pytestmark = pytest.mark.emulators


@pytest.fixture(scope="module")
def bigquery_tables(bigquery_emulator) -> tuple[bigquery.Client, str]:
    """Each data table's edge rows loaded from Parquet, as a load job writes them."""
    client = emulators.bigquery_client(bigquery_emulator)
    dataset = f"checksum_{uuid.uuid4().hex[:10]}"
    client.create_dataset(dataset)
    for table in DATA_TABLES:
        buffer = io.BytesIO()
        pq.write_table(arrow_table(table, edge_rows(table)), buffer)
        buffer.seek(0)
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
        client.load_table_from_file(buffer, f"{client.project}.{dataset}.{table}", job_config=config).result()
    return client, dataset


def _duckdb(table, version) -> tuple[int, int]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", arrow_table(table, edge_rows(table)))
    rows, total = con.execute(checksum.duckdb_select(table, "t", version=version)).fetchone()
    return int(rows), int(total)


def _bigquery(client, dataset, table, version) -> tuple[int, int]:
    sql = checksum.bigquery_select(table, f"`{client.project}.{dataset}.{table}`", version=version)
    [row] = list(client.query(sql).result())
    return int(row["rows"]), int(row["checksum"])


@pytest.mark.parametrize("version", checksum.VERSIONS)
@pytest.mark.parametrize("table", list(DATA_TABLES))
def test_duckdb_and_bigquery_give_the_same_checksum(bigquery_tables, table, version):
    client, dataset = bigquery_tables
    assert _bigquery(client, dataset, table, version) == _duckdb(table, version)


@pytest.mark.parametrize("table", list(DATA_TABLES))
def test_bigquery_gives_the_python_definition_of_the_current_version(bigquery_tables, table):
    client, dataset = bigquery_tables
    rows = edge_rows(table)
    assert _bigquery(client, dataset, table, checksum.CURRENT) == checksum.python_figures(table, rows)


def test_an_altered_value_changes_the_bigquery_checksum_as_in_python(bigquery_tables):
    client, dataset = bigquery_tables
    before = _bigquery(client, dataset, "audience", checksum.CURRENT)
    altered = (f"(SELECT signal, program_code, exhibition_date, program_start_time,"
               f" IF(signal = 'SP' AND ABS(average_audience) < 1e6, average_audience + 1, average_audience)"
               f" AS average_audience FROM `{client.project}.{dataset}.audience`) AS t")
    [row] = list(client.query(checksum.bigquery_select("audience", altered)).result())
    rows = [dict(r) for r in edge_rows("audience")]
    for r in rows:
        x = r["average_audience"]
        if r["signal"] == "SP" and x is not None and abs(x) < 1e6:
            r["average_audience"] = x + 1
    assert (int(row["rows"]), int(row["checksum"])) == checksum.python_figures("audience", rows)
    assert int(row["rows"]) == before[0] and int(row["checksum"]) != before[1]
