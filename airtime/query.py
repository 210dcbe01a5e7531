"""Queries on the published forecast, and the one way rows are printed.

Both the local query (the warehouse) and the remote one (`--server`, over gRPC) produce
the same row dicts, and `render` prints them, so the two paths are interchangeable."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from dataclasses import dataclass

from airtime.errors import AirtimeError, ConfigError, NotPublishedError
from airtime.warehouse import ForecastFilter, RunRecord, Warehouse

FIELDS = ("signal", "program_code", "date", "weekday", "available_time", "predicted_audience", "history_size")
FORMATS = ("table", "json", "jsonl", "csv")


class UnknownProgramError(AirtimeError):
    """The program query names a program the published run does not have."""

    exit_code = 7


@dataclass(frozen=True)
class PeriodQuery:
    start: dt.date
    end: dt.date
    signal: str | None = None
    program_code: str | None = None


@dataclass(frozen=True)
class ProgramQuery:
    program_code: str
    start: dt.date | None = None
    end: dt.date | None = None
    signal: str | None = None


def check_range(start: dt.date | None, end: dt.date | None, max_days: int) -> None:
    if start is None or end is None:
        return
    if end < start:
        raise ConfigError(f"end {end} is before start {start}")
    if (end - start).days + 1 > max_days:
        raise ConfigError(f"range {start}..{end} is {(end - start).days + 1} days; the maximum is {max_days}")


def published_run(warehouse: Warehouse) -> RunRecord:
    run = warehouse.latest_published()
    if run is None:
        raise NotPublishedError("no run is published yet: run `airtime run` first")
    return run


def run_query(warehouse: Warehouse, query: PeriodQuery | ProgramQuery, max_days: int = 366
              ) -> tuple[RunRecord, list[dict]]:
    """Rows of the latest published run matching the query, ordered by signal,
    program_code, date."""
    check_range(query.start, query.end, max_days)
    run = published_run(warehouse)
    where = ForecastFilter(start=query.start, end=query.end, signal=query.signal,
                           program_code=query.program_code)
    rows = warehouse.read_forecast(run.run_date, where).to_pylist()
    if isinstance(query, ProgramQuery) and not rows:
        known = warehouse.read_forecast(run.run_date, ForecastFilter(program_code=query.program_code))
        if known.num_rows == 0:
            raise UnknownProgramError(
                f"program {query.program_code!r} is not in the published run {run.run_date}")
    return run, [_clean(row) for row in rows]


def _clean(row: dict) -> dict:
    value = row["predicted_audience"]
    return {
        "signal": row["signal"],
        "program_code": row["program_code"],
        "date": row["date"],
        "weekday": int(row["weekday"]),
        "available_time": int(row["available_time"]),
        "predicted_audience": None if value is None or math.isnan(value) else float(value),
        "history_size": int(row["history_size"]),
    }


def _jsonable(row: dict) -> dict:
    return {**row, "date": row["date"].isoformat()}


def render(rows: list[dict], fmt: str, title: str = "") -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(_jsonable(r)) + "\n" for r in rows)
    if fmt == "json":
        return json.dumps([_jsonable(r) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_jsonable(r) for r in rows)
        return out.getvalue()
    return _table(rows, title)


def _table(rows: list[dict], title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title or None)
    for name in FIELDS:
        table.add_column(name, justify="right" if name not in ("signal", "program_code") else "left")
    for r in rows:
        audience = "-" if r["predicted_audience"] is None else f"{r['predicted_audience']:,.1f}"
        table.add_row(r["signal"], r["program_code"], r["date"].isoformat(), str(r["weekday"]),
                      str(r["available_time"]), audience, str(r["history_size"]))
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    console.print(table)
    return console.file.getvalue()
