"""BigQuery table definitions: explicit schemas, descriptions, labels, partitioning.

The columns, types and descriptions come from airtime/schema.py (BigQuery's INT64 for
every integer). The three data tables are DAY-partitioned
on `run_date`, require a partition filter (so no query can scan every run by mistake),
and are clustered on signal and program_code, which is how clients ask for forecasts.
The `runs` ledger is one small row per date: unpartitioned, clustered on run_date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from google.cloud import bigquery

from airtime.schema import DATA_TABLES, RUNS, TABLES, Column, TableKey

LABELS = {"app": "airtime", "managed-by": "airtime-pipeline"}
DATASET_DESCRIPTION = ("airtime: raw daily deliveries, ad-slot audience forecasts and the "
                       "runs ledger (written only by the airtime pipeline)")
STAGING_EXPIRY = dt.timedelta(days=1)


def schema_fields(columns: tuple[Column, ...]) -> list[bigquery.SchemaField]:
    return [bigquery.SchemaField(c.name, c.bigquery_type, mode="NULLABLE" if c.nullable else "REQUIRED",
                                 description=c.description or None) for c in columns]


RUN_COLUMNS = ", ".join(RUNS.names)


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
            # no expiration_ms: partition expiry counts from the wall clock and cannot read the
            # ledger; `airtime prune` expires old dates (docs/generations.md, "On BigQuery")
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field="run_date")
            table.require_partition_filter = True
            table.clustering_fields = ["signal", "program_code"]
        else:
            table.clustering_fields = ["run_date"]
        return table


TABLE_DEFINITIONS: tuple[TableDefinition, ...] = tuple(
    TableDefinition(t.name, t.description, schema_fields(t.warehouse_columns), t.partitioned) for t in TABLES)


def staging_schema(table: TableKey) -> list[bigquery.SchemaField]:
    """The Parquet files' columns (the table without run_date)."""
    return schema_fields(DATA_TABLES[table].columns)


def data_columns(table: TableKey) -> list[str]:
    return DATA_TABLES[table].names
