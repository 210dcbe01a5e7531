"""The warehouse interface: raw tables, forecast, and the `runs` ledger.

Every table carries `run_date`; a run's rows are replaced as a whole inside one
transaction, so loading a date twice leaves one copy and a crash leaves the previous
state. The ledger is what "the write really succeeded" means: a run is served only once
verify has compared the warehouse's figures with the manifests and marked it published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from airtime.schema import ATTEMPTS, DATA_TABLES, RUNS, TableKey

# run states, in the order a run goes through them
LOADED, PUBLISHED, FAILED = "loaded", "published", "failed"
# attempt states: an attempt still `running` after a later one started was killed
RUNNING, SUCCEEDED, SKIPPED = "running", "succeeded", "skipped"


@dataclass(frozen=True)
class Figures:
    rows: int
    checksum: int


@dataclass
class RunLoad:
    """What the load step hands the warehouse for one run date."""

    run_date: dt.date
    input_digest: str  # digest of the manifests the load came from
    files: dict[TableKey, Path]  # local Parquet file per table
    figures: dict[TableKey, Figures]  # expected, from the manifests
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
class Attempt:
    """One row of the `attempts` table: one try of one step for one date."""

    attempt_id: str
    run_date: dt.date
    step: str
    state: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    host: str | None = None
    error: str | None = None


def attempt_of(row: Mapping[str, object]) -> Attempt:
    return Attempt(**{name: row[name] for name in ATTEMPTS.names})


@dataclass(frozen=True)
class SlotFilter:
    """Which forecast slots a read wants: a date range (either end open) and, optionally,
    one signal and one program. The one filter type of every query path."""

    start: dt.date | None = None
    end: dt.date | None = None
    signal: str | None = None
    program_code: str | None = None


def filter_clauses(run_date: dt.date, where: SlotFilter | None, mark: str
                   ) -> tuple[list[str], dict[str, object]]:
    """WHERE clauses and bound parameters of a forecast read; `mark` is the engine's
    parameter prefix (`$` in DuckDB, `@` in BigQuery)."""
    where = where or SlotFilter()
    clauses, params = [f"run_date = {mark}run_date"], {"run_date": run_date}
    for clause, name, value in (("date >=", "start", where.start), ("date <=", "end", where.end),
                                ("signal =", "signal", where.signal),
                                ("program_code =", "program_code", where.program_code)):
        if value is not None:
            clauses.append(f"{clause} {mark}{name}")
            params[name] = value
    return clauses, params


def ledger_row(load: RunLoad, now: dt.datetime) -> dict[str, object]:
    """The `runs` row a load writes (state `loaded`), by column name."""
    row: dict[str, object] = {name: None for name in RUNS.names}
    row |= {"run_date": load.run_date, "state": LOADED, "input_digest": load.input_digest,
            "quarantined_rows": load.quarantined_rows, "started_at": load.started_at or now,
            "loaded_at": now}
    for table, figures in load.figures.items():
        row[f"{table}_rows"], row[f"{table}_checksum"] = figures.rows, figures.checksum
    return row


def record_of(row: Mapping[str, object]) -> RunRecord:
    """A ledger row (by column name, from either engine) as a RunRecord."""
    return RunRecord(
        run_date=row["run_date"],
        state=row["state"],
        input_digest=row["input_digest"],
        audience_rows=row["audience_rows"] or 0,
        availability_rows=row["availability_rows"] or 0,
        forecast_rows=row["forecast_rows"] or 0,
        quarantined_rows=row["quarantined_rows"] or 0,
        checksums={table: row[f"{table}_checksum"] for table in DATA_TABLES},
        started_at=row["started_at"],
        loaded_at=row["loaded_at"],
        published_at=row["published_at"],
        failed_step=row["failed_step"],
        error=row["error"],
    )


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

    def figures(self, run_date: dt.date, versions: Mapping[TableKey, int] | None = None) -> dict[TableKey, Figures]:
        """Row count and checksum of each table's rows for the run, read back; each table's
        checksum in the airtime.checksum version `versions` names (default: the current one)."""
        ...

    def publish(self, run_date: dt.date, input_digest: str) -> None:
        """Mark a loaded run published (only if its ledger row has this digest)."""
        ...

    def record_failure(self, run_date: dt.date, step: str, message: str, *, demote: bool = False) -> None:
        """Note a failed step in the ledger. A published run stays published (a failed
        re-run does not take away verified data) unless `demote`: a published run that
        fails a re-check of its own rows is served no more."""
        ...

    def start_attempt(self, attempt: Attempt) -> None:
        """Record an attempt before its work starts (a killed one stays `running`)."""
        ...

    def end_attempt(self, attempt_id: str, state: str, ended_at: dt.datetime, error: str | None = None) -> None: ...

    def attempts(self, run_date: dt.date | None = None) -> list[Attempt]:
        """Attempts, newest first; of one date, or of every date."""
        ...

    def run_record(self, run_date: dt.date) -> RunRecord | None: ...

    def ledger(self) -> list[RunRecord]:
        """Every run, newest first."""
        ...

    def latest_published(self) -> RunRecord | None: ...

    def read_forecast(self, run_date: dt.date, where: SlotFilter | None = None) -> pa.Table:
        """Forecast rows of a run (columns as in the forecast Parquet), ordered by
        signal, program_code, date."""
        ...
