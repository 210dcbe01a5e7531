"""Verify: read back what the warehouse holds for the run, compare with the manifests,
and only then publish. A mismatch fails the run and publishes nothing."""

from __future__ import annotations

from airtime import faults
from airtime.errors import AirtimeError, VerificationError
from airtime.manifest import Manifest, fresh_manifest, read_manifest, run_prefix, write_manifest
from airtime.pipeline import Context, StepResult
from airtime.warehouse import PUBLISHED, TABLE_NAMES, Figures
from steps.load import SOURCES, upstream

STEP = "verify"


def run(ctx: Context) -> StepResult:
    load = read_manifest(ctx.artifacts, ctx.run_date, "load")
    if load is None:
        raise AirtimeError(f"verify {ctx.run_date}: load has not finished for this date")
    digest = load.extra["warehouse_digest"]
    inputs = {"load": digest}
    key = f"{run_prefix(ctx.run_date)}/{STEP}/manifest.json"
    done = fresh_manifest(ctx.artifacts, ctx.run_date, STEP, inputs)
    record = ctx.warehouse.run_record(ctx.run_date)
    if done is not None and record is not None and record.state == PUBLISHED and record.input_digest == digest:
        return StepResult(STEP, done, ctx.artifacts.uri(key), True)

    manifests = upstream(ctx)
    expected = {table: Figures(manifests[step].outputs[table].rows, manifests[step].outputs[table].checksum)
                for table, step in SOURCES.items()}
    found = ctx.warehouse.figures(ctx.run_date)
    wrong = [
        f"table {TABLE_NAMES[table]} (run_date {ctx.run_date}): expected {want.rows} rows, checksum "
        f"{want.checksum}; warehouse holds {found[table].rows} rows, checksum {found[table].checksum}"
        for table, want in expected.items() if found[table] != want
    ]
    if wrong:
        raise VerificationError("the warehouse does not hold what was loaded; nothing published:\n  "
                                + "\n  ".join(wrong))
    ctx.warehouse.publish(ctx.run_date, digest)
    manifest = Manifest(step=STEP, run_date=ctx.run_date, inputs=inputs,
                        extra={"figures": {t: [f.rows, f.checksum] for t, f in found.items()}})
    uri = write_manifest(ctx.artifacts, manifest)
    faults.crash_point("after-verify")
    return StepResult(STEP, manifest, uri, False)


def main() -> None:
    from airtime.entrypoint import run as run_entry

    run_entry(STEP)


if __name__ == "__main__":
    main()
