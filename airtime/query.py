"""Queries on the published forecast, read straight from the warehouse.

The local query (`airtime query`) and the remote one (`--server`, over gRPC) both answer
with `ForecastRow`s, so the command line prints either the same way.
"""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa

from airtime.errors import ConfigError, NotPublishedError, UnknownProgramError
from airtime.schema import FORECAST, ForecastRow
from airtime.warehouse import PUBLISHED, RunRecord, SlotFilter, Warehouse


def check_range(start: dt.date | None, end: dt.date | None, max_days: int) -> None:
    if start is None or end is None:
        return
    if end < start:
        raise ConfigError(f"end {end} is before start {start}")
    if (end - start).days + 1 > max_days:
        raise ConfigError(f"range {start}..{end} is {(end - start).days + 1} days; the maximum is {max_days}")


def published_run(warehouse: Warehouse, run_date: dt.date | None = None) -> RunRecord:
    """The latest published run, or the published run of run_date (every published run's
    rows stay in the warehouse, keyed by run_date)."""
    if run_date is not None:
        run = warehouse.run_record(run_date)
        if run is None or run.state != PUBLISHED:
            state = "never run" if run is None else f"{run.state}, not published"
            raise NotPublishedError(f"no published run of {run_date} ({state}): see `airtime runs`")
        return run
    run = warehouse.latest_published()
    if run is None:
        raise NotPublishedError("no run is published yet: run `airtime run` first")
    return run


def run_query(warehouse: Warehouse, where: SlotFilter, *, program: bool = False, max_days: int = 366,
              run_date: dt.date | None = None) -> tuple[RunRecord, list[ForecastRow]]:
    """Rows of the latest published run (or of the published run of run_date) matching
    the filter, ordered by signal, program_code, date. A program query (`program=True`)
    names a program the run must have: none at all is UnknownProgramError, while none in
    the range is an empty answer."""
    check_range(where.start, where.end, max_days)
    run = published_run(warehouse, run_date)
    table = warehouse.read_forecast(run.run_date, where)
    if program and table.num_rows == 0:
        known = warehouse.read_forecast(run.run_date, SlotFilter(program_code=where.program_code))
        if known.num_rows == 0:
            raise UnknownProgramError(
                f"program {where.program_code!r} is not in the published run {run.run_date}")
    return run, rows_of(table)


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
