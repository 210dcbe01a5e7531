"""BigQuery table definitions: explicit schemas, descriptions, labels, partitioning.

The columns and types mirror the DuckDB warehouse (airtime/duckdb_warehouse.py) with
BigQuery's types (INT64 for every integer). The three data tables are DAY-partitioned
on `run_date`, require a partition filter (so no query can scan every run by mistake),
and are clustered on signal and program_code, which is how clients ask for forecasts.
The `runs` ledger is one small row per date: unpartitioned, clustered on run_date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from google.cloud import bigquery

from airtime.checksum import Table

LABELS = {"app": "airtime", "managed-by": "airtime-pipeline"}
DATASET_DESCRIPTION = ("airtime: raw daily deliveries, ad-slot audience forecasts and the "
                       "runs ledger (written only by the airtime pipeline)")
STAGING_EXPIRY = dt.timedelta(days=1)

F = bigquery.SchemaField
RUN_DATE = F("run_date", "DATE", mode="REQUIRED",
             description="Pipeline run (business date) that delivered the row; partition column")
SIGNAL = F("signal", "STRING", mode="REQUIRED", description="Broadcast signal (region), e.g. SP")
PROGRAM = F("program_code", "STRING", mode="REQUIRED", description="Program code, e.g. KVOB")

COLUMNS: dict[Table, list[bigquery.SchemaField]] = {
    "audience": [
        SIGNAL, PROGRAM,
        F("exhibition_date", "DATE", mode="REQUIRED", description="Date the program aired"),
        F("program_start_time", "TIMESTAMP", mode="REQUIRED", description="Start time (UTC)"),
        F("average_audience", "FLOAT64", mode="REQUIRED", description="Average audience measured"),
    ],
    "availability": [
        SIGNAL, PROGRAM,
        F("date", "DATE", mode="REQUIRED", description="Date of the ad slot"),
        F("available_time", "INT64", mode="REQUIRED", description="Ad time for sale, seconds"),
    ],
    "forecast": [
        SIGNAL, PROGRAM,
        F("date", "DATE", mode="REQUIRED", description="Date of the ad slot"),
        F("weekday", "INT64", mode="REQUIRED", description="Weekday of date, 0 = Monday"),
        F("available_time", "INT64", mode="REQUIRED", description="Ad time for sale, seconds"),
        F("predicted_audience", "FLOAT64",
          description="Median audience of the last 4 same-weekday exhibitions before date; "
                      "NULL without history"),
        F("history_size", "INT64", mode="REQUIRED",
          description="Exhibitions the prediction used (0..4)"),
    ],
}

RUNS: list[bigquery.SchemaField] = [
    F("run_date", "DATE", mode="REQUIRED", description="Business date of the run"),
    F("state", "STRING", mode="REQUIRED", description="loaded, published or failed"),
    F("input_digest", "STRING", mode="REQUIRED",
      description="Digest of the manifests the load came from; publish must match it"),
    F("audience_rows", "INT64"), F("availability_rows", "INT64"), F("forecast_rows", "INT64"),
    F("quarantined_rows", "INT64", description="Bad input rows set aside by ingest"),
    F("audience_checksum", "INT64"), F("availability_checksum", "INT64"),
    F("forecast_checksum", "INT64", description="Order-independent checksums (airtime/checksum.py)"),
    F("started_at", "TIMESTAMP"), F("loaded_at", "TIMESTAMP"), F("published_at", "TIMESTAMP"),
    F("failed_step", "STRING", description="Step of the last failure, if any"),
    F("error", "STRING", description="Message of the last failure (truncated)"),
]
RUN_COLUMNS = ", ".join(field.name for field in RUNS)


@dataclass(frozen=True)
class TableDefinition:
    name: str
    description: str
    schema: list[bigquery.SchemaField]
    partitioned: bool

    def table(self, table_id: str) -> bigquery.Table:
        table = bigquery.Table(table_id, schema=self.schema)
        table.description = self.description
        table.labels = LABELS
        if self.partitioned:
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field="run_date")
            table.require_partition_filter = True
            table.clustering_fields = ["signal", "program_code"]
        else:
            table.clustering_fields = ["run_date"]
        return table


TABLE_DEFINITIONS: tuple[TableDefinition, ...] = (
    TableDefinition("raw_audience", "Program audience history as delivered, one copy per run",
                    [RUN_DATE, *COLUMNS["audience"]], True),
    TableDefinition("raw_availability", "Ad-slot availability as delivered, one copy per run",
                    [RUN_DATE, *COLUMNS["availability"]], True),
    TableDefinition("forecast", "Predicted audience of every available ad slot, per run",
                    [RUN_DATE, *COLUMNS["forecast"]], True),
    TableDefinition("runs", "Runs ledger: a run is served only once verify marked it published",
                    RUNS, False),
)


def staging_schema(table: Table) -> list[bigquery.SchemaField]:
    """The Parquet files' columns (the table without run_date)."""
    return COLUMNS[table]


def data_columns(table: Table) -> list[str]:
    return [field.name for field in COLUMNS[table]]
