"""Preprocess: merged history and the forecast, in DuckDB, in memory.

The history of run D is the history of the latest earlier run merged with D's delivery
(latest delivery wins). Its digest is one of this step's inputs, so re-delivering an
earlier day makes later days recompute on their next run.
"""

from __future__ import annotations

import contextlib
import logging

import duckdb

from airtime import faults
from airtime.artifacts import parquet_rel, publish_parquet, sql_string, workdir
from airtime.errors import AirtimeError
from airtime.forecast import forecast_sql, merged_history_sql
from airtime.manifest import (
    Manifest,
    fresh_manifest,
    read_manifest,
    run_dates_with,
    run_prefix,
    write_manifest,
)
from airtime.pipeline import Context, StepResult

log = logging.getLogger(__name__)

STEP = "preprocess"


def previous_history(ctx: Context) -> tuple[str, Manifest | None]:
    earlier = [d for d in run_dates_with(ctx.artifacts, STEP) if d < ctx.run_date]
    if not earlier:
        return "none", None
    manifest = read_manifest(ctx.artifacts, earlier[-1], STEP)
    return f"{earlier[-1].isoformat()}:{manifest.outputs['history'].sha256}", manifest


def run(ctx: Context) -> StepResult:
    ingest = read_manifest(ctx.artifacts, ctx.run_date, "ingest")
    if ingest is None:
        raise AirtimeError(f"preprocess {ctx.run_date}: ingest has not finished for this date")
    previous_id, previous = previous_history(ctx)
    inputs = {
        "audience": ingest.outputs["audience"].sha256,
        "availability": ingest.outputs["availability"].sha256,
        "previous_history": previous_id,
    }
    done = fresh_manifest(ctx.artifacts, ctx.run_date, STEP, inputs)
    if done is not None:
        return StepResult(STEP, done, ctx.artifacts.uri(f"{run_prefix(ctx.run_date)}/{STEP}/manifest.json"), True)

    manifest = Manifest(step=STEP, run_date=ctx.run_date, inputs=inputs)
    with workdir() as tmp, ctx.artifacts.fetch(ingest.outputs["audience"].key) as audience, \
            ctx.artifacts.fetch(ingest.outputs["availability"].key) as availability:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET temp_directory = {sql_string(tmp / 'spill')}")
        history_file, forecast_file = tmp / "history.parquet", tmp / "forecast.parquet"
        with contextlib.ExitStack() as stack:
            previous_rel = None
            if previous is not None:
                prev = stack.enter_context(ctx.artifacts.fetch(previous.outputs["history"].key))
                previous_rel = parquet_rel(prev)
            history = merged_history_sql(previous_rel, parquet_rel(audience))
            con.execute(f"COPY ({history} ORDER BY signal, program_code, exhibition_date)"
                        f" TO {sql_string(history_file)} (FORMAT parquet)", {"run_date": ctx.run_date})
        forecast = forecast_sql(parquet_rel(history_file), parquet_rel(availability))
        con.execute(f"COPY ({forecast}) TO {sql_string(forecast_file)} (FORMAT parquet)")
        con.close()
        manifest.outputs["forecast"] = publish_parquet(
            ctx.artifacts, forecast_file, ctx.run_date, STEP, "forecast", "forecast")
        manifest.outputs["history"] = publish_parquet(
            ctx.artifacts, history_file, ctx.run_date, STEP, "history", None)
    manifest.extra = {"previous_run": previous.run_date.isoformat() if previous else None}
    uri = write_manifest(ctx.artifacts, manifest)
    faults.crash_point("after-preprocess")
    return StepResult(STEP, manifest, uri, False)


def main() -> None:
    from airtime.entrypoint import run as run_entry

    run_entry(STEP)


if __name__ == "__main__":
    main()
