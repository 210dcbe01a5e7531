"""`airtime runs`: every run date, its state in the ledger, every generation (delivery) of
it with its own state and report (a held or failed one stays inspectable beside the
published one), and every attempt of its steps, including attempts still running and
attempts killed on the way (they never recorded an end: shown as `interrupted` once a
later attempt of the same step followed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json

from rich.console import Console
from rich.table import Table

from airtime.warehouse import PUBLISHED, RUNNING, Attempt, RunRecord, Warehouse

INTERRUPTED = "interrupted"


def _state(attempt: Attempt, later: list[Attempt]) -> str:
    followed = any(a.step == attempt.step and a.started_at > attempt.started_at for a in later)
    return INTERRUPTED if attempt.state == RUNNING and followed else attempt.state


def _jsonable(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def runs_report(warehouse: Warehouse, run_date: dt.date | None = None) -> list[dict]:
    """One entry per run date, newest first: the ledger row of its published generation (or
    of its newest one), every generation newest first, and its attempts, oldest first."""
    by_date: dict[dt.date, list[RunRecord]] = {}
    for r in warehouse.ledger():  # newest first
        if run_date is None or r.run_date == run_date:
            by_date.setdefault(r.run_date, []).append(r)
    records: dict[dt.date, RunRecord] = {
        day: next((r for r in rs if r.state == PUBLISHED), rs[0]) for day, rs in by_date.items()}
    attempts = sorted(warehouse.attempts(run_date), key=lambda a: a.started_at)
    dates = sorted({*records, *(a.run_date for a in attempts)}, reverse=True)
    report = []
    for day in dates:
        record = records.get(day)
        mine = [a for a in attempts if a.run_date == day]
        entry = {k: _jsonable(v) for k, v in dataclasses.asdict(record).items()} if record else {
            "run_date": day.isoformat(), "state": "not loaded"}
        entry["generations"] = [
            {k: _jsonable(getattr(r, k)) for k in _GENERATION_FIELDS} for r in by_date.get(day, [])]
        entry["attempts"] = [
            {**{k: _jsonable(v) for k, v in dataclasses.asdict(a).items() if k != "run_date"},
             "state": _state(a, mine[i + 1:])}
            for i, a in enumerate(mine)
        ]
        report.append(entry)
    return report


_GENERATION_FIELDS = ("generation", "state", "input_digest", "started_at", "loaded_at", "published_at",
                      "failed_step", "error")


def render_runs(report: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    generations = Table(title="generations: each delivery of a date (newest first)")
    for name in ("run_date", "generation", "state", "loaded (UTC)", "published (UTC)", "report"):
        generations.add_column(name, no_wrap=name != "report")
    for run in report:
        for i, g in enumerate(run["generations"]):
            report_line = f"{g['failed_step']}: {g['error']}" if g.get("error") else ""
            generations.add_row(run["run_date"] if i == 0 else "", g["generation"], g["state"],
                                _stamp(g.get("loaded_at")), _stamp(g.get("published_at")), report_line)
    if any(run["generations"] for run in report):
        console.print(generations)
    table = Table(title="runs and their attempts (newest run first)")
    for name in ("run_date", "run state", "step", "attempt", "started (UTC)", "ended (UTC)", "host", "error"):
        table.add_column(name, no_wrap=name != "error")
    for run in report:
        for i, a in enumerate(run["attempts"] or [{}]):
            table.add_row(run["run_date"] if i == 0 else "", run["state"] if i == 0 else "",
                          a.get("step", "-"), a.get("state", "-"), _stamp(a.get("started_at")),
                          _stamp(a.get("ended_at")), a.get("host") or "", a.get("error") or "")
    console.print(table)
    return console.file.getvalue()


def _stamp(text: str | None) -> str:
    return text.replace("T", " ")[:19] if text else "-"
