"""Every table's columns, declared once.

The Parquet/Arrow schemas, the DuckDB DDL, the BigQuery schemas, the checksum's row
string, the query output fields and the proto conversion are all derived from the
declarations below; tests/unit/test_schema.py fails when the proto's Slot disagrees.

Data tables hold what a step writes to Parquet (`columns`); in the warehouse each row
also carries `run_date`, the run that delivered it (`warehouse_columns`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal["string", "date", "timestamp", "float64", "int8", "int32", "int64"]
TableKey = Literal["audience", "availability", "forecast"]

# signal and program codes: the ingest's rule (airtime/validation.py) and the queries'
# (airtime/query_rules.py, the query service's request checks)
CODE_PATTERN = r"[A-Za-z0-9_-]{1,32}"
CODE_RULE = "must be 1-32 letters, digits, '_' or '-'"

# kind -> (Arrow type, DuckDB type, BigQuery type, Python type)
_TYPES: dict[str, tuple[pa.DataType, str, str, type]] = {
    "string": (pa.string(), "VARCHAR", "STRING", str),
    "date": (pa.date32(), "DATE", "DATE", dt.date),
    "timestamp": (pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ", "TIMESTAMP", dt.datetime),
    "float64": (pa.float64(), "DOUBLE", "FLOAT64", float),
    # BigQuery has one integer type
    "int8": (pa.int8(), "TINYINT", "INT64", int),
    "int32": (pa.int32(), "INTEGER", "INT64", int),
    "int64": (pa.int64(), "BIGINT", "INT64", int),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    nullable: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _TYPES[self.kind][0]

    @property
    def duckdb_type(self) -> str:
        return _TYPES[self.kind][1]

    @property
    def bigquery_type(self) -> str:
        return _TYPES[self.kind][2]

    @property
    def python_type(self) -> type:
        return _TYPES[self.kind][3]


@dataclass(frozen=True)
class Table:
    name: str  # in the warehouse
    description: str
    columns: tuple[Column, ...]
    partitioned: bool = True  # by run_date (the data tables); the ledger is not
    primary_key: tuple[str, ...] = ()
    key: tuple[str, ...] = ()  # one row per key within a delivery

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def warehouse_columns(self) -> tuple[Column, ...]:
        return (RUN_DATE, GENERATION, *self.columns) if self.partitioned else self.columns

    @property
    def arrow_schema(self) -> pa.Schema:
        """Of the step's Parquet file and of forecast reads (no run_date). Every field is
        nullable, as both engines hand tables out; the warehouses' DDL enforces NOT NULL."""
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    def duckdb_ddl(self) -> str:
        def column(c: Column) -> str:
            return f"{c.name} {c.duckdb_type}{'' if c.nullable else ' NOT NULL'}"

        body = ", ".join(column(c) for c in self.warehouse_columns)
        if self.primary_key:
            body += f", PRIMARY KEY ({', '.join(self.primary_key)})"
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({body});"


RUN_DATE = Column("run_date", "date", "Pipeline run (business date) that delivered the row; partition column")
# Each delivery of a date is its own generation (airtime/generation.py): a new one loads
# beside the published one and replaces it only once verified. NULL in rows written before
# generations existed (a BigQuery column added later holds NULL): read as LEGACY.
GENERATION = Column("generation", "string", "Generation of the run's delivery (NULL: before generations, "
                    "read as 'legacy')", nullable=True)
_SIGNAL = Column("signal", "string", "Broadcast signal (region), e.g. SP")
_PROGRAM = Column("program_code", "string", "Program code, e.g. KVOB")
_SLOT_DATE = Column("date", "date", "Date of the ad slot")
_AVAILABLE = Column("available_time", "int32", "Ad time for sale, seconds")

AUDIENCE = Table("raw_audience", "Program audience history as delivered, one copy per run", (
    _SIGNAL,
    _PROGRAM,
    Column("exhibition_date", "date", "Date the program aired"),
    Column("program_start_time", "timestamp", "Start time (UTC)"),
    Column("average_audience", "float64", "Average audience measured"),
), key=("signal", "program_code", "exhibition_date"))

AVAILABILITY = Table("raw_availability", "Ad-slot availability as delivered, one copy per run", (
    _SIGNAL, _PROGRAM, _SLOT_DATE, _AVAILABLE,
), key=("signal", "program_code", "date"))

FORECAST = Table("forecast", "Predicted audience of every available ad slot, per run", (
    _SIGNAL,
    _PROGRAM,
    _SLOT_DATE,
    Column("weekday", "int8", "Weekday of date, 0 = Monday"),
    _AVAILABLE,
    Column("predicted_audience", "float64",
           "Median audience of the last 4 same-weekday exhibitions before date; NULL without history",
           nullable=True),
    Column("history_size", "int8", "Exhibitions the prediction used (0..4)"),
))

# the data tables, by the name steps, manifests and checksums use for them
DATA_TABLES: dict[TableKey, Table] = {
    "audience": AUDIENCE,
    "availability": AVAILABILITY,
    "forecast": FORECAST,
}


def _count(name: str, description: str = "") -> Column:
    return Column(name, "int64", description, nullable=True)


RUNS = Table("runs", "Runs ledger, one row per generation of a date: served only once verify published it", (
    Column("run_date", "date", "Business date of the run"),
    GENERATION,
    Column("state", "string", "loaded, published, superseded, held, failed or pruned"),
    Column("input_digest", "string", "Digest of the manifests the load came from; publish must match it"),
    *(_count(f"{key}_rows") for key in DATA_TABLES),
    _count("quarantined_rows", "Bad input rows set aside by ingest"),
    *(_count(f"{key}_checksum", "Order-independent checksum (airtime/checksum.py)") for key in DATA_TABLES),
    Column("started_at", "timestamp", "", nullable=True),
    Column("loaded_at", "timestamp", "", nullable=True),
    Column("published_at", "timestamp", "", nullable=True),
    Column("failed_step", "string", "Step of the last failure, if any", nullable=True),
    Column("error", "string", "Message of the last failure (truncated)", nullable=True),
), partitioned=False, primary_key=("run_date", "generation"))

ATTEMPTS = Table("attempts", "Every attempt of every step, recorded before its work starts", (
    Column("attempt_id", "string", "Unique id of the attempt"),
    Column("run_date", "date", "Business date the step ran for"),
    Column("step", "string", "Pipeline step"),
    Column("state", "string", "running (or killed: no end recorded), succeeded, skipped or failed"),
    Column("started_at", "timestamp", "When the step started"),
    Column("ended_at", "timestamp", "When the step ended; NULL while running or after a kill", nullable=True),
    Column("host", "string", "Host or pod that ran it", nullable=True),
    Column("error", "string", "The failure, in full", nullable=True),
), partitioned=False, primary_key=("attempt_id",))

TABLES: tuple[Table, ...] = (*DATA_TABLES.values(), RUNS, ATTEMPTS)


def _row_type(table: Table, name: str) -> type:
    fields = [(c.name, c.python_type | None if c.nullable else c.python_type) for c in table.columns]
    return dataclasses.make_dataclass(name, fields, frozen=True)


# One forecast row as the query paths hand it out (local query, gRPC client, CLI output).
ForecastRow = _row_type(FORECAST, "ForecastRow")
ForecastRow.__doc__ = "One ad slot of a published forecast; fields are FORECAST's columns (weekday 0 = Monday)."
ForecastRow.__module__ = __name__
