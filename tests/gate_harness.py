"""A delivery taken through ingest's validation, preprocess's SQL and the gate's rules, on
local files and without a warehouse or manifests: for the tests that judge many deliveries
(a month of days, hundreds of corrupted ones) where a whole `airtime run` per delivery
would cost a second each. The same functions the steps call (validation.read_file with the
day's DateWindow, airtime/forecast.py, plausibility.judge_delivery); what the steps add
around them (manifests, generations, the ledger, which references exist) is tested through
the steps themselves (test_gate_cases.py, test_gate_no_false_holds.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from airtime.artifacts import parquet_rel, scratch_connection, sql_string
from airtime.errors import InputError
from airtime.forecast import create_history_delta, delivery_changes_sql, forecast_query, history_sql, kept_history_sql
from airtime.plausibility import Delivery, Finding, judge_delivery
from airtime.settings import Settings
from airtime.validation import DateWindow, read_file, report
from steps.ingest import SPECS


@dataclass(frozen=True)
class Judged:
    """One delivery after ingest, preprocess and the gate's rules (typed files in `folder`)."""

    run_date: dt.date
    folder: Path  # audience.parquet, availability.parquet, history.parquet, forecast.parquet
    findings: dict[str, list[Finding]]
    figures: dict[str, object]

    @property
    def held(self) -> bool:
        return any(self.findings.values())

    def relation(self, name: str) -> str:
        return parquet_rel(self.folder / f"{name}.parquet")

    def as_reference(self, today_changes: str | None = None) -> Delivery:
        return Delivery(self.run_date, self.relation("audience"), self.relation("availability"),
                        self.relation("history"), today_changes)


def judge_day(source: Path, run_date: dt.date, out: Path, settings: Settings, *,
              previous: Judged | None = None, same_date: Judged | None = None) -> Judged:
    """The delivery in `source` as the delivery of `run_date`, built on `previous` (the latest
    earlier published day) and compared with it and with `same_date` (the date's published
    delivery). Raises InputError as ingest does when more lines are bad than
    `settings.max_bad_rows`."""
    out.mkdir(parents=True)
    window = DateWindow(run_date, settings.dq_earliest_date, settings.dq_horizon_days)
    results = []
    for spec in SPECS:
        [path] = source.glob(spec.pattern)
        results.append(read_file(path, path.name, spec.within(window), out / f"{spec.table}.parquet"))
    if sum(r.bad_row_count for r in results) > settings.max_bad_rows:
        raise InputError("\n".join(report(r.problems, r.problem_count, f"{r.name} refused")
                                   for r in results if r.problem_count))
    with contextlib.closing(scratch_connection()) as con:
        audience, availability = parquet_rel(out / "audience.parquet"), parquet_rel(out / "availability.parquet")
        delta = None
        if previous is not None:  # as preprocess merges: one join, the day's changes kept for the gate
            delta = "history_delta"
            create_history_delta(con, delta, previous.relation("history"), audience, run_date)
            con.execute(f"COPY ({delivery_changes_sql(delta)}) TO {sql_string(out / 'changes.parquet')} (FORMAT parquet)")
        # as preprocess merges: the rows kept and the day's audience (here in one file)
        con.execute(f"COPY ({kept_history_sql(audience, delta)}) TO {sql_string(out / 'kept.parquet')} (FORMAT parquet)")
        history = history_sql(parquet_rel(out / "kept.parquet"), audience, run_date)
        con.execute(f"COPY (SELECT * FROM {history}) TO {sql_string(out / 'history.parquet')} (FORMAT parquet)")
        forecast = forecast_query(con, parquet_rel(out / "history.parquet"), availability)
        con.execute(f"COPY ({forecast}) TO {sql_string(out / 'forecast.parquet')} (FORMAT parquet)")
        # against the previous day, as the gate step does: from the `change` column of the
        # history merged into it; against the same date, by joining
        references = {where: judged.as_reference(merged) for where, judged, merged in
                      (("the same date", same_date, None),
                       ("the previous day", previous, parquet_rel(out / "changes.parquet")))
                      if judged is not None}
        findings, slots = judge_delivery(con, settings, Delivery(run_date, audience, availability), references)
    return Judged(run_date, out, findings, slots.figures())
