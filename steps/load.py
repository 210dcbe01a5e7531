"""Load: the generation's raw rows and forecast into the warehouse, in one transaction.

Loading a generation again replaces its rows (one copy), a crash mid-load leaves the
previous state, and the date's published generation is never touched: it stays served
until verify publishes this one. The ledger row records the digest of what was loaded, so verify can
only publish exactly this load.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from dataclasses import dataclass, field

from airtime.artifacts import fetch_checked
from airtime.manifest import Output, digest_of
from airtime.publication import announce
from airtime.schema import TableKey
from airtime.warehouse import LOADED, PUBLISHED, Figures, RunLoad
from steps.entry import step_main
from steps.gate import STEP as GATE
from steps.ingest import STEP as INGEST
from steps.ingest import Ingested
from steps.preprocess import STEP as PREPROCESS
from steps.preprocess import Forecasted
from steps.scaffold import Context, Planned, Step, Upstream


@dataclass(frozen=True)
class Loaded:
    warehouse_digest: str  # the ledger row of this load carries it; publish must match it
    expected: dict[str, list[int]]  # table -> [rows, checksum] loaded, for verify
    # table -> airtime.checksum version of `expected` (absent in older manifests: 1)
    checksum_versions: dict[str, int] = field(default_factory=dict)

    @property
    def versions(self) -> dict[TableKey, int]:
        return {t: self.checksum_versions.get(t, 1) for t in self.expected}  # type: ignore[misc]


def loaded_files(upstream: Upstream) -> dict[TableKey, Output]:
    ingested, forecasted = upstream[Ingested], upstream[Forecasted]
    return {"audience": ingested.audience, "availability": ingested.availability,
            "forecast": forecasted.forecast}


def plan(ctx: Context, upstream: Upstream) -> Planned[Loaded]:
    outputs = loaded_files(upstream)
    inputs = {table: out.sha256 for table, out in outputs.items()}
    digest = digest_of(inputs)
    quarantined = upstream[Ingested].quarantined_rows

    def work() -> Loaded:
        started = dt.datetime.now(dt.UTC)
        ctx.progress.phase("loading " + ", ".join(outputs))
        with contextlib.ExitStack() as stack:
            files = {table: stack.enter_context(fetch_checked(ctx.artifacts, out)) for table, out in outputs.items()}
            ctx.warehouse.load_run(RunLoad(
                run_date=ctx.run_date,
                generation=ctx.gen,
                input_digest=digest,
                files=files,
                figures={table: Figures(out.rows, out.checksum) for table, out in outputs.items()},
                quarantined_rows=quarantined,
                started_at=started,
            ))
        ctx.forget_figures()  # the run's rows just changed
        ctx.progress.add(sum(out.rows for out in outputs.values()))
        announce(ctx.artifacts, ctx.run_date, LOADED)  # the served day may have changed
        return Loaded(digest, {table: [out.rows, out.checksum] for table, out in outputs.items()},
                      {table: out.checksum_version for table, out in outputs.items()})

    return Planned(inputs, work)


def still_loaded(ctx: Context, loaded: Loaded) -> bool:
    """The manifest alone is not enough: the warehouse must still hold this very load,
    row for row (an altered or deleted row makes the next run load the day again)."""
    record = ctx.warehouse.generation_record(ctx.run_date, ctx.gen)
    return record is not None and record.input_digest == loaded.warehouse_digest \
        and record.state in (LOADED, PUBLISHED) \
        and ctx.figures(loaded.versions) == {t: Figures(*f) for t, f in loaded.expected.items()}


STEP = Step("load", upstream=(INGEST, PREPROCESS, GATE), writes=Loaded, plan=plan, still_done=still_loaded)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
