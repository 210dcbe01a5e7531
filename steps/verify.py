"""Verify: read back what the warehouse holds for the run, compare with what load
loaded, and only then publish. A mismatch fails the run and publishes nothing."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from airtime.errors import VerificationError
from airtime.schema import DATA_TABLES
from airtime.warehouse import PUBLISHED, Figures
from steps.entry import step_main
from steps.load import STEP as LOAD
from steps.load import Loaded
from steps.scaffold import Context, Planned, Step, Upstream


@dataclass(frozen=True)
class Verified:
    figures: dict[str, list[int]]  # table -> [rows, checksum] read back from the warehouse
    published_digest: str  # the load it published


def plan(ctx: Context, upstream: Upstream) -> Planned[Verified]:
    loaded = upstream[Loaded]
    return Planned({"load": loaded.warehouse_digest}, lambda: _verify(ctx, loaded))


def _verify(ctx: Context, loaded: Loaded) -> Verified:
    expected = {table: Figures(*figures) for table, figures in loaded.expected.items()}
    found = ctx.warehouse.figures(ctx.run_date)
    wrong = [
        f"table {DATA_TABLES[table].name} (run_date {ctx.run_date}): expected {want.rows} rows, checksum "
        f"{want.checksum}; warehouse holds {found[table].rows} rows, checksum {found[table].checksum}"
        for table, want in expected.items() if found[table] != want
    ]
    if wrong:
        raise VerificationError("the warehouse does not hold what was loaded; nothing published:\n  "
                                + "\n  ".join(wrong))
    ctx.warehouse.publish(ctx.run_date, loaded.warehouse_digest)
    return Verified({t: [f.rows, f.checksum] for t, f in found.items()}, loaded.warehouse_digest)


def still_published(ctx: Context, verified: Verified) -> bool:
    record = ctx.warehouse.run_record(ctx.run_date)
    return record is not None and record.state == PUBLISHED \
        and record.input_digest == verified.published_digest


STEP = Step("verify", upstream=(LOAD,), writes=Verified, plan=plan, still_done=still_published)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
