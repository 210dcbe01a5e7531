"""The one way forecast rows are printed: a table for people, JSON, JSON lines or CSV
for programs. Rows from the warehouse and from the gRPC service print the same."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

from rich.console import Console
from rich.table import Table

from airtime.schema import FORECAST, ForecastRow

FORMATS = ("table", "json", "jsonl", "csv")
_TEXT_COLUMNS = ("signal", "program_code")


def _jsonable(row: ForecastRow) -> dict:
    body = dataclasses.asdict(row)
    return {**body, "date": row.date.isoformat()}


def render(rows: list[ForecastRow], fmt: str, title: str = "") -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(_jsonable(r)) + "\n" for r in rows)
    if fmt == "json":
        return json.dumps([_jsonable(r) for r in rows], indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=FORECAST.names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_jsonable(r) for r in rows)
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
