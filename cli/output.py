"""The one way forecast rows are printed: a table for people, JSON, JSON lines or CSV
for programs. Rows from the warehouse and from the gRPC service print the same.

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

from airtime.schema import FORECAST, ForecastRow

FORMATS = ("table", "json", "jsonl", "csv")
_TEXT_COLUMNS = ("signal", "program_code")


RUN_FIELD = "run_date"


def _jsonable(row: ForecastRow, run_date: dt.date | None) -> dict:
    body = dataclasses.asdict(row)
    named = {RUN_FIELD: run_date.isoformat()} if run_date is not None else {}
    return {**named, **body, "date": row.date.isoformat()}


def render(rows: list[ForecastRow], fmt: str, title: str = "", run_date: dt.date | None = None) -> str:
    """rows in a format; run_date: the run they come from, named in every row."""
    if fmt == "jsonl":
        return "".join(json.dumps(_jsonable(r, run_date)) + "\n" for r in rows)
    if fmt == "json":
        return json.dumps([_jsonable(r, run_date) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        names = ([RUN_FIELD] if run_date is not None else []) + list(FORECAST.names)
        writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_jsonable(r, run_date) for r in rows)
        return out.getvalue()
    return _table(rows, title)


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
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    console.print(table)
    return console.file.getvalue()
