"""Queries on the published forecast, read straight from the warehouse.

The local query (`airtime query`) and the remote one (`--server`, over gRPC) both answer
with `ForecastRow`s, so the command line prints either the same way. The rules a query must
keep are airtime/query_rules.py's; "which run is published" is `published_record` here, the
one place every reader (this module, the server's backends) asks it.
"""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa

from airtime.errors import NotPublishedError, RunNotPublishedError
from airtime.query_rules import check_known
from airtime.run_codes import RunCodes, WarehouseCodes
from airtime.schema import FORECAST, ForecastRow
from airtime.warehouse import PUBLISHED, RunRecord, SlotFilter, Warehouse


def published_record(warehouse: Warehouse, run_date: dt.date | None = None) -> RunRecord | None:
    """The ledger record of the published run of run_date (None: the latest published
    run), or None when there is none. Asks only `latest_published` and `run_record`, so what
    "published" means stays the ledger's to say."""
    if run_date is None:
        return warehouse.latest_published()
    record = warehouse.run_record(run_date)
    return record if record is not None and record.state == PUBLISHED else None


def published_run(warehouse: Warehouse, run_date: dt.date | None = None) -> RunRecord:
    """published_record, or NotPublishedError saying why there is none (RunNotPublishedError
    for a named date: every published run's rows stay in the warehouse, keyed by run_date)."""
    record = published_record(warehouse, run_date)
    if record is not None:
        return record
    if run_date is None:
        raise NotPublishedError("no run is published yet: run `airtime run` first")
    found = warehouse.run_record(run_date)
    state = "never run" if found is None else f"{found.state}, not published"
    raise RunNotPublishedError(f"no published run of {run_date} ({state}): see `airtime runs`", run_date)


def run_query(warehouse: Warehouse, where: SlotFilter, *, run_date: dt.date | None = None
              ) -> tuple[RunRecord, list[ForecastRow]]:
    """Rows of the latest published run (or of the published run of run_date) matching a
    filter the rules accepted (query_rules.period_query / program_query), ordered by
    signal, program_code, date. A signal or program the run does not have is
    UnknownProgramError; a known one with no slot in the range is an empty answer."""
    run = published_run(warehouse, run_date)
    table = warehouse.read_forecast(run.run_date, where)
    check_known(where, WarehouseCodes(warehouse, run.run_date), answered=table.num_rows)
    return run, rows_of(table)


def run_codes(warehouse: Warehouse, run_date: dt.date | None = None) -> RunCodes:
    """The signals and programs of the latest published run (or of run_date's), with their
    slots (`airtime query codes`)."""
    return WarehouseCodes(warehouse, published_run(warehouse, run_date).run_date).codes()


def rows_of(table: pa.Table) -> list[ForecastRow]:
    """Forecast rows of an Arrow table with FORECAST's columns (NaN audiences as None)."""
    columns = [table.column(name).to_pylist() for name in FORECAST.names]
    audience = FORECAST.names.index("predicted_audience")
    rows = []
    for values in zip(*columns, strict=True):
        value = values[audience]
        if value is not None and math.isnan(value):
            values = (*values[:audience], None, *values[audience + 1:])
        rows.append(ForecastRow(*values))
    return rows
