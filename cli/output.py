"""The one way forecast rows, and a run's codes, are printed: a table for people, JSON,
JSON lines or CSV for programs. Rows from the warehouse and from the gRPC service print the
same.

Every format names the published run the rows come from, so an answer can be reproduced
(`airtime query ... --run D`): the table in its title, JSON, JSON lines and CSV as a
`run_date` field of every row (a column is what any CSV reader parses; a comment line is
not CSV)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json

from rich.console import Console
from rich.table import Table

from airtime.run_codes import RunCodes
from airtime.schema import FORECAST, ForecastRow

_TEXT_COLUMNS = ("signal", "program_code")
CODE_COLUMNS = ("signal", "program_code", "slots")


RUN_FIELD = "run_date"


def _jsonable(row: ForecastRow, run_date: dt.date | None) -> dict:
    body = dataclasses.asdict(row)
    named = {RUN_FIELD: run_date.isoformat()} if run_date is not None else {}
    return {**named, **body, "date": row.date.isoformat()}


def render(rows: list[ForecastRow], fmt: str, title: str = "", run_date: dt.date | None = None) -> str:
    """rows in a format; run_date: the run they come from, named in every row."""
    if fmt == "table":
        return _table(rows, title)
    names = ([RUN_FIELD] if run_date is not None else []) + list(FORECAST.names)
    return _records([_jsonable(r, run_date) for r in rows], names, fmt)


def render_codes(codes: RunCodes, fmt: str) -> str:
    """The signals and programs of a run (`airtime query codes`): one row per (signal,
    program) with its slots, the run named as `render` names it."""
    if fmt == "table":
        return _codes_table(codes)
    records = [{RUN_FIELD: codes.run_date.isoformat(), **dataclasses.asdict(s)} for s in codes.series]
    return _records(records, [RUN_FIELD, *CODE_COLUMNS], fmt)


def _records(records: list[dict], names: list[str], fmt: str) -> str:
    """Records (dicts of names' keys) as JSON lines, one JSON array, or CSV."""
    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in records)
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def _cell(name: str, value: object) -> str:
    if name == "predicted_audience":
        return "-" if value is None else f"{value:,.1f}"
    return value.isoformat() if name == "date" else str(value)


def _table(rows: list[ForecastRow], title: str) -> str:
    table = Table(title=title or None)
    for name in FORECAST.names:
        table.add_column(name, justify="left" if name in _TEXT_COLUMNS else "right")
    for row in rows:
        table.add_row(*(_cell(name, getattr(row, name)) for name in FORECAST.names))
    return _printed(table)


def _printed(table: Table) -> str:
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    console.print(table)
    return console.file.getvalue()


def _codes_table(codes: RunCodes) -> str:
    signals, programs = codes.codes("signal"), codes.codes("program_code")
    slots = sum(s.slots for s in codes.series)
    # a line of its own: a table's title wraps at the width of its few narrow columns
    head = (f"signals and programs of run {codes.run_date}: {len(signals)} signals, {len(programs)} programs,"
            f" {slots:,} slots\n")
    table = Table()
    for name in CODE_COLUMNS:
        table.add_column(name, justify="left" if name in _TEXT_COLUMNS else "right")
    for s in codes.series:
        table.add_row(s.signal, s.program_code, f"{s.slots:,}")
    return head + _printed(table)
