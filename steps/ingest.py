"""Ingest: the day's two delivered files -> typed Parquet + manifest.

Strict by default: any bad row fails the run with a report (file, line, column, value,
rule). With `max_bad_rows = N`, up to N bad rows are set aside in a quarantine file
beside the run's artifacts and counted in the manifest and the ledger.
"""

from __future__ import annotations

import csv
import io
import logging

import pyarrow.parquet as pq

from airtime import faults
from airtime.artifacts import publish_parquet, workdir
from airtime.errors import InputError
from airtime.manifest import Manifest, fresh_manifest, run_prefix, write_manifest
from airtime.pipeline import Context, StepResult
from airtime.store import ObjectStore, find_one, open_store
from airtime.validation import AUDIENCE, AVAILABILITY, FileResult, read_file, report

log = logging.getLogger(__name__)

STEP = "ingest"
RULES_VERSION = "1"  # bump when validation rules change, so finished ingests are redone


def day_prefix(source: ObjectStore, run_date) -> str:
    """A `dt=YYYY-MM-DD/` folder holds that day's delivery; without one, the root does."""
    prefix = f"dt={run_date.isoformat()}/"
    return prefix if source.list(prefix) else ""


def run(ctx: Context) -> StepResult:
    source = open_store(ctx.source)
    prefix = day_prefix(source, ctx.run_date)
    keys = {spec.table: find_one(source, prefix, spec.pattern, spec.table) for spec in (AUDIENCE, AVAILABILITY)}
    inputs = {f"source:{table}": source.identity(key) for table, key in keys.items()}
    inputs |= {"max_bad_rows": str(ctx.settings.max_bad_rows), "rules": RULES_VERSION}

    done = fresh_manifest(ctx.artifacts, ctx.run_date, STEP, inputs)
    if done is not None:
        return StepResult(STEP, done, ctx.artifacts.uri(f"{run_prefix(ctx.run_date)}/{STEP}/manifest.json"), True)

    results: dict[str, FileResult] = {}
    for spec in (AUDIENCE, AVAILABILITY):
        key = keys[spec.table]
        with source.fetch(key) as path:
            log.info("validating %s", source.uri(key))
            results[spec.table] = read_file(path, source.uri(key), spec)

    bad = sum(r.bad_row_count for r in results.values())
    if bad > ctx.settings.max_bad_rows:
        allowed = ctx.settings.max_bad_rows
        raise InputError("\n".join(
            report(r.problems, r.problem_count, f"{r.name} refused")
            for r in results.values() if r.problem_count
        ) + (f"\n{bad} bad rows, {allowed} tolerated (AIRTIME_MAX_BAD_ROWS)" if allowed else ""))

    manifest = Manifest(step=STEP, run_date=ctx.run_date, inputs=inputs)
    with workdir() as tmp:
        for table, result in results.items():
            local = tmp / f"{table}.parquet"
            pq.write_table(result.rows, local)
            manifest.outputs[table] = publish_parquet(ctx.artifacts, local, ctx.run_date, STEP, table, table)
            if result.bad_rows is not None:
                key = f"{run_prefix(ctx.run_date)}/{STEP}/quarantine-{table}.csv"
                ctx.artifacts.write_bytes(key, _quarantine_csv(result))
                log.warning("%d bad rows of %s quarantined in %s", result.bad_row_count, result.name,
                            ctx.artifacts.uri(key))
    manifest.extra = {
        "quarantined_rows": bad,
        "sources": {table: source.uri(key) for table, key in keys.items()},
    }
    uri = write_manifest(ctx.artifacts, manifest)
    faults.crash_point("after-ingest")
    return StepResult(STEP, manifest, uri, False)


def _quarantine_csv(result: FileResult) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["file", "line", "text", "problems"])
    for row in result.bad_rows.to_pylist():
        writer.writerow([result.name, row["line"], row["text"], row["problems"]])
    return out.getvalue().encode()


def main() -> None:
    from airtime.entrypoint import run as run_entry

    run_entry(STEP)


if __name__ == "__main__":
    main()
