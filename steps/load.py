"""Load: the run's raw rows and forecast into the warehouse, in one transaction.

Loading a date again replaces its rows (one copy), and a crash mid-load leaves the
previous state. The ledger row records the digest of what was loaded, so verify can
only publish exactly this load.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from airtime import faults
from airtime.errors import AirtimeError
from airtime.manifest import Manifest, digest_of, fresh_manifest, read_manifest, run_prefix, write_manifest
from airtime.pipeline import Context, StepResult
from airtime.warehouse import LOADED, PUBLISHED, Figures, RunLoad

STEP = "load"
SOURCES = {"audience": "ingest", "availability": "ingest", "forecast": "preprocess"}


def upstream(ctx: Context) -> dict[str, Manifest]:
    manifests = {step: read_manifest(ctx.artifacts, ctx.run_date, step) for step in ("ingest", "preprocess")}
    missing = [step for step, m in manifests.items() if m is None]
    if missing:
        raise AirtimeError(f"load {ctx.run_date}: {', '.join(missing)} has not finished for this date")
    return manifests


def load_inputs(manifests: dict[str, Manifest]) -> dict[str, str]:
    return {table: manifests[step].outputs[table].sha256 for table, step in SOURCES.items()}


def run(ctx: Context) -> StepResult:
    manifests = upstream(ctx)
    inputs = load_inputs(manifests)
    digest = digest_of(inputs)
    key = f"{run_prefix(ctx.run_date)}/{STEP}/manifest.json"
    done = fresh_manifest(ctx.artifacts, ctx.run_date, STEP, inputs)
    record = ctx.warehouse.run_record(ctx.run_date)
    # the manifest alone is not enough: the warehouse must still hold this very load
    if done is not None and record is not None and record.input_digest == digest \
            and record.state in (LOADED, PUBLISHED):
        return StepResult(STEP, done, ctx.artifacts.uri(key), True)

    started = dt.datetime.now(dt.UTC)
    outputs = {table: manifests[step].outputs[table] for table, step in SOURCES.items()}
    with contextlib.ExitStack() as stack:
        files = {table: stack.enter_context(ctx.artifacts.fetch(out.key)) for table, out in outputs.items()}
        ctx.warehouse.load_run(RunLoad(
            run_date=ctx.run_date,
            input_digest=digest,
            files=files,
            figures={table: Figures(out.rows, out.checksum) for table, out in outputs.items()},
            quarantined_rows=int(manifests["ingest"].extra.get("quarantined_rows", 0)),
            started_at=started,
        ))
    manifest = Manifest(step=STEP, run_date=ctx.run_date, inputs=inputs,
                        extra={"warehouse_digest": digest})
    uri = write_manifest(ctx.artifacts, manifest)
    faults.crash_point("after-load")
    return StepResult(STEP, manifest, uri, False)


def main() -> None:
    from airtime.entrypoint import run as run_entry

    run_entry(STEP)


if __name__ == "__main__":
    main()
