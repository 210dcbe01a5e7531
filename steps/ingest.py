"""Ingest: the day's two delivered files -> typed Parquet + manifest.

Strict by default: any bad row fails the run with a report (file, line, column, value,
rule). With `max_bad_rows = N`, up to N bad rows are set aside in a quarantine file
beside the run's artifacts and counted in the manifest and the ledger.

The rules of time are the delivery day's (airtime/validation.py, DateWindow): an exhibition
after it, or any date outside the window of settings `dq_earliest_date` and
`dq_horizon_days`, is a bad row. A slot dated before the delivery day is not: a file
delivered again a day late holds yesterday's slots. They are counted (`past_slots`), logged,
and the gate judges their share.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import sys
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from airtime.artifacts import publish_parquet, workdir
from airtime.errors import InputError
from airtime.manifest import Output, run_prefix
from airtime.resources import open_store
from airtime.store import ObjectStore, find_one
from airtime.validation import AUDIENCE, AVAILABILITY, DateWindow, FileResult, FileSpec, read_file, report
from steps.entry import step_main
from steps.scaffold import Context, Planned, Step, Upstream

log = logging.getLogger(__name__)

# bump when validation rules change, so finished ingests are redone (2: audience <= 1e12;
# 3: the rules of time, DateWindow)
RULES_VERSION = "3"
SPECS = (AUDIENCE, AVAILABILITY)


@dataclass(frozen=True)
class Ingested:
    audience: Output
    availability: Output
    quarantined_rows: int
    sources: dict[str, str]  # table -> URI of the delivered file
    past_slots: int = 0  # availability rows dated before the delivery day (kept; the gate judges)


def delivery_folder(run_date: dt.date) -> str:
    return f"dt={run_date.isoformat()}/"


def day_prefix(source: ObjectStore, run_date: dt.date) -> str:
    """A `dt=YYYY-MM-DD/` folder holds that day's delivery; without one, the root does."""
    prefix = delivery_folder(run_date)
    return prefix if source.list(prefix) else ""


def _find(source: ObjectStore, prefix: str, spec: FileSpec, run_date: dt.date) -> str:
    try:
        return find_one(source, prefix, spec.pattern, spec.table)
    except InputError as exc:
        if prefix:
            raise
        raise InputError(f"{exc} (and there is no {source.uri(delivery_folder(run_date))} folder"
                         " for this date)") from None


def plan(ctx: Context, upstream: Upstream) -> Planned[Ingested]:
    source = open_store(ctx.source)
    prefix = day_prefix(source, ctx.run_date)
    keys = {spec.table: _find(source, prefix, spec, ctx.run_date) for spec in SPECS}
    inputs = {f"source:{table}": source.identity(key) for table, key in keys.items()}
    window = date_window(ctx)
    inputs |= {"max_bad_rows": str(ctx.settings.max_bad_rows), "rules": RULES_VERSION,
               "date_window": f"{window.earliest}/{window.horizon_days}"}
    return Planned(inputs, lambda: _ingest(ctx, source, keys))


def date_window(ctx: Context) -> DateWindow:
    return DateWindow(ctx.run_date, ctx.settings.dq_earliest_date, ctx.settings.dq_horizon_days)


def _ingest(ctx: Context, source: ObjectStore, keys: dict[str, str]) -> Ingested:
    results: dict[str, FileResult] = {}
    window = date_window(ctx)
    with workdir() as tmp:  # the typed rows stream to Parquet here as each file is read
        for spec in (spec.within(window) for spec in SPECS):
            key = keys[spec.table]
            with source.fetch(key) as path:
                log.info("validating %s", source.uri(key))
                ctx.progress.phase(f"validating {spec.table}")
                results[spec.table] = read_file(path, source.uri(key), spec, tmp / f"{spec.table}.parquet",
                                                memory_limit=ctx.settings.duckdb_memory_limit,
                                                on_rows=ctx.progress.add)

        bad = sum(r.bad_row_count for r in results.values())
        if bad > ctx.settings.max_bad_rows:
            allowed = ctx.settings.max_bad_rows
            raise InputError("\n".join(
                report(r.problems, r.problem_count, f"{r.name} refused")
                for r in results.values() if r.problem_count
            ) + (f"\n{bad} bad rows, {allowed} tolerated (AIRTIME_MAX_BAD_ROWS)" if allowed else ""))

        outputs: dict[str, Output] = {}
        for table, result in results.items():
            assert result.parquet is not None
            folder = f"{run_prefix(ctx.run_date, ctx.gen)}/{STEP.name}"
            outputs[table] = publish_parquet(ctx.artifacts, result.parquet, folder, table, table, result.figures)
            if result.bad_rows is not None:
                key = f"{folder}/quarantine-{table}.csv"
                ctx.artifacts.write_bytes(key, _quarantine_csv(result))
                log.warning("%d bad rows of %s quarantined in %s", result.bad_row_count, result.name,
                            ctx.artifacts.uri(key))
        past = _past_slots(results["availability"], ctx.run_date)
    return Ingested(audience=outputs["audience"], availability=outputs["availability"],
                    quarantined_rows=bad,
                    sources={table: source.uri(key) for table, key in keys.items()}, past_slots=past)


def _past_slots(result: FileResult, run_date: dt.date) -> int:
    """Slots dated before the delivery day: no longer sellable, but not an error."""
    dates = pq.read_table(result.parquet, columns=["date"]).column("date")
    past = pc.sum(pc.less(dates, pa.scalar(run_date, dates.type))).as_py() or 0
    if past:
        log.warning("%s of the %s slots of %s are dated before the delivery day %s: no longer sellable;"
                    " kept and forecast, and the gate judges their share (AIRTIME_DQ_MAX_PAST_SLOTS_RATIO)",
                    f"{past:,}", f"{len(dates):,}", result.name, run_date)
    return past


def _quarantine_csv(result: FileResult) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "line", "text", "problems"])
    for row in result.bad_rows.to_pylist():
        writer.writerow([result.name, row["line"], row["text"], row["problems"]])
    return out.getvalue().encode()


STEP = Step("ingest", upstream=(), writes=Ingested, plan=plan)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
