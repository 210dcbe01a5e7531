"""The warehouse interface: raw tables, forecast, and the `runs` ledger.

Every table carries `run_date`; a run's rows are replaced as a whole inside one
transaction, so loading a date twice leaves one copy and a crash leaves the previous
state. The ledger is what "the write really succeeded" means: a run is served only once
verify has compared the warehouse's figures with the manifests and marked it published.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from airtime.checksum import Table

TABLES: tuple[Table, ...] = ("audience", "availability", "forecast")
# warehouse table name of each checksum table kind
TABLE_NAMES: dict[Table, str] = {
    "audience": "raw_audience",
    "availability": "raw_availability",
    "forecast": "forecast",
}

# run states, in the order a run goes through them
LOADED, PUBLISHED, FAILED = "loaded", "published", "failed"


@dataclass(frozen=True)
class Figures:
    rows: int
    checksum: int


@dataclass
class RunLoad:
    """What the load step hands the warehouse for one run date."""

    run_date: dt.date
    input_digest: str  # digest of the manifests the load came from
    files: dict[Table, Path]  # local Parquet file per table
    figures: dict[Table, Figures]  # expected, from the manifests
    quarantined_rows: int = 0
    started_at: dt.datetime | None = None


@dataclass
class RunRecord:
    """One row of the `runs` ledger."""

    run_date: dt.date
    state: str
    input_digest: str
    audience_rows: int
    availability_rows: int
    forecast_rows: int
    quarantined_rows: int
    checksums: dict[str, int] = field(default_factory=dict)
    started_at: dt.datetime | None = None
    loaded_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    failed_step: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ForecastFilter:
    start: dt.date | None = None
    end: dt.date | None = None
    signal: str | None = None
    program_code: str | None = None


def filter_clauses(run_date: dt.date, where: ForecastFilter | None, mark: str
                   ) -> tuple[list[str], dict[str, object]]:
    """WHERE clauses and bound parameters of a forecast read; `mark` is the engine's
    parameter prefix (`$` in DuckDB, `@` in BigQuery)."""
    where = where or ForecastFilter()
    clauses, params = [f"run_date = {mark}run_date"], {"run_date": run_date}
    for clause, name, value in (("date >=", "start", where.start), ("date <=", "end", where.end),
                                ("signal =", "signal", where.signal),
                                ("program_code =", "program_code", where.program_code)):
        if value is not None:
            clauses.append(f"{clause} {mark}{name}")
            params[name] = value
    return clauses, params


class LedgerReads:
    """The ledger questions, asked the same way of every engine through `_records`."""

    PARAM_MARK = "$"

    def _records(self, where: str = "", params: dict[str, object] | None = None) -> list[RunRecord]:
        raise NotImplementedError

    def run_record(self, run_date: dt.date) -> RunRecord | None:
        found = self._records(f"WHERE run_date = {self.PARAM_MARK}run_date", {"run_date": run_date})
        return found[0] if found else None

    def ledger(self) -> list[RunRecord]:
        return self._records()

    def latest_published(self) -> RunRecord | None:
        found = self._records(f"WHERE state = {self.PARAM_MARK}state", {"state": PUBLISHED})
        return found[0] if found else None


class Warehouse(Protocol):
    def load_run(self, load: RunLoad) -> None:
        """Replace the run's rows in every table and set its ledger row to `loaded`,
        atomically."""
        ...

    def figures(self, run_date: dt.date) -> dict[Table, Figures]:
        """Row count and checksum of each table's rows for the run, read back."""
        ...

    def publish(self, run_date: dt.date, input_digest: str) -> None:
        """Mark a loaded run published (only if its ledger row has this digest)."""
        ...

    def record_failure(self, run_date: dt.date, step: str, message: str) -> None:
        """Note a failed step in the ledger; a published run stays published."""
        ...

    def run_record(self, run_date: dt.date) -> RunRecord | None: ...

    def ledger(self) -> list[RunRecord]:
        """Every run, newest first."""
        ...

    def latest_published(self) -> RunRecord | None: ...

    def read_forecast(self, run_date: dt.date, where: ForecastFilter | None = None) -> pa.Table:
        """Forecast rows of a run (columns as in the forecast Parquet), ordered by
        signal, program_code, date."""
        ...


FORECAST_SCHEMA = pa.schema(
    [
        ("signal", pa.string()),
        ("program_code", pa.string()),
        ("date", pa.date32()),
        ("weekday", pa.int8()),
        ("available_time", pa.int32()),
        ("predicted_audience", pa.float64()),
        ("history_size", pa.int8()),
    ]
)


def open_warehouse(settings) -> Warehouse:  # noqa: ANN001 - Settings, imported lazily
    if settings.profile == "gcp":
        from airtime.bigquery_warehouse import BigQueryWarehouse

        return BigQueryWarehouse.from_settings(settings)
    from airtime.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(settings.warehouse_path)
