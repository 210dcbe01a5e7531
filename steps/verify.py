"""Verify: read back what the warehouse holds for the run, compare with what load
loaded, and only then publish. A mismatch fails the run and publishes nothing.

`recheck` (`airtime verify --date D`) compares a day again at any time: a published day
whose rows no longer match is demoted (served no more: the service falls back to the
latest day that still verifies) and the next `airtime run` for it loads it again.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from airtime.errors import UpstreamMissingError, VerificationError
from airtime.publication import announce
from airtime.schema import DATA_TABLES, TableKey
from airtime.warehouse import FAILED, PUBLISHED, Figures
from steps.entry import step_main
from steps.load import STEP as LOAD
from steps.load import Loaded
from steps.scaffold import Context, Planned, Step, Upstream, read_outputs


@dataclass(frozen=True)
class Verified:
    figures: dict[str, list[int]]  # table -> [rows, checksum] read back from the warehouse
    published_digest: str  # the load it published
    # table -> airtime.checksum version of `figures` (absent in older manifests: 1)
    checksum_versions: dict[str, int] = field(default_factory=dict)


def plan(ctx: Context, upstream: Upstream) -> Planned[Verified]:
    loaded = upstream[Loaded]
    return Planned({"load": loaded.warehouse_digest}, lambda: _verify(ctx, loaded))


def compare(ctx: Context, loaded: Loaded) -> dict[TableKey, Figures]:
    """The warehouse's figures of the run, if they are what load loaded (each checksum in
    the version load's manifest recorded, so a day loaded by an older release still verifies)."""
    expected = {table: Figures(*figures) for table, figures in loaded.expected.items()}
    ctx.progress.phase("reading the run back from the warehouse")
    found = ctx.figures(loaded.versions)
    ctx.progress.add(sum(f.rows for f in found.values()))
    wrong = [
        f"table {DATA_TABLES[table].name} (run_date {ctx.run_date}): expected {want.rows} rows, checksum "
        f"{want.checksum}; warehouse holds {found[table].rows} rows, checksum {found[table].checksum}"
        for table, want in expected.items() if found[table] != want
    ]
    if wrong:
        raise VerificationError("the warehouse does not hold what was loaded:\n  " + "\n  ".join(wrong))
    return found


def _verify(ctx: Context, loaded: Loaded) -> Verified:
    try:
        found = compare(ctx, loaded)
    except VerificationError as exc:
        raise VerificationError(f"{exc}\nnothing published") from None
    ctx.warehouse.publish(ctx.run_date, loaded.warehouse_digest)
    announce(ctx.artifacts, ctx.run_date, PUBLISHED)  # the query service looks at the ledger now
    return Verified({t: [f.rows, f.checksum] for t, f in found.items()}, loaded.warehouse_digest,
                    loaded.versions)


def still_published(ctx: Context, verified: Verified) -> bool:
    """Published, from this load, and its rows still read back the same."""
    record = ctx.warehouse.run_record(ctx.run_date)
    return record is not None and record.state == PUBLISHED \
        and record.input_digest == verified.published_digest \
        and ctx.figures({t: verified.checksum_versions.get(t, 1) for t in verified.figures}) \
        == {t: Figures(*f) for t, f in verified.figures.items()}


def recheck(ctx: Context) -> dict[TableKey, Figures]:
    """Compare a loaded day with its load manifest again; a mismatch demotes it."""
    loaded = read_outputs(LOAD, ctx)
    if loaded is None:
        raise UpstreamMissingError(f"verify {ctx.run_date}: the day was never loaded (no load manifest)")
    try:
        return compare(ctx, loaded)
    except VerificationError as exc:
        message = (f"{exc}\nrun {ctx.run_date} is not served any more; `airtime run --date"
                   f" {ctx.run_date}` loads it again from its artifacts")
        ctx.warehouse.record_failure(ctx.run_date, "verify", message, demote=True)
        announce(ctx.artifacts, ctx.run_date, FAILED)
        raise VerificationError(message) from None


STEP = Step("verify", upstream=(LOAD,), writes=Verified, plan=plan, still_done=still_published)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
