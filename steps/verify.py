"""Verify: read back what the warehouse holds for the generation, compare with what
load loaded, and only then publish it (which supersedes the date's previous published
generation in the same transaction). A mismatch fails the run and publishes nothing.

`recheck` (`airtime verify --date D`) compares a day's published generation again at any
time, its warehouse rows and every artifact its manifests name (what later days read):
rows that no longer match demote it (served no more: the service falls back to the latest
day that still verifies, and the next `airtime run` for it loads it again); a damaged
artifact is exit 9, each one named.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from airtime.errors import IntegrityError, UpstreamMissingError, VerificationError
from airtime.manifest import read_manifest, run_prefix
from airtime.publication import announce
from airtime.schema import DATA_TABLES, TableKey
from airtime.store import sha256_file
from airtime.warehouse import FAILED, LOADED, PUBLISHED, Figures, failure_message
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
    ctx.warehouse.publish(ctx.run_date, ctx.gen, loaded.warehouse_digest)
    ctx.forget_figures()
    announce(ctx.artifacts, ctx.run_date, PUBLISHED)  # the query service looks at the ledger now
    return Verified({t: [f.rows, f.checksum] for t, f in found.items()}, loaded.warehouse_digest,
                    loaded.versions)


def still_published(ctx: Context, verified: Verified) -> bool:
    """Published, from this load, and its rows still read back the same."""
    record = ctx.warehouse.generation_record(ctx.run_date, ctx.gen)
    return record is not None and record.state == PUBLISHED \
        and record.input_digest == verified.published_digest \
        and ctx.figures({t: verified.checksum_versions.get(t, 1) for t in verified.figures}) \
        == {t: Figures(*f) for t, f in verified.figures.items()}


def checked_generation(ctx: Context) -> str:
    """The generation `airtime verify` checks: the date's published one, else its newest
    loaded one (a load whose verify has not run yet)."""
    records = ctx.warehouse.generations(ctx.run_date)
    for wanted in (PUBLISHED, LOADED):
        for record in records:
            if record.state == wanted:
                return record.generation
    seen = ", ".join(f"{r.generation} {r.state}" for r in records) or "never run"
    raise UpstreamMissingError(f"verify {ctx.run_date}: the day was never loaded (no generation of it is"
                               f" published or loaded: {seen})")


def damaged_artifacts(ctx: Context) -> list[str]:
    """Every artifact of the generation missing or not matching its manifest's digest."""
    prefix = run_prefix(ctx.run_date, ctx.gen) + "/"
    damaged, seen = [], set()
    for key in ctx.artifacts.list(prefix):
        parts = key[len(prefix):].split("/")
        if len(parts) != 2 or parts[1] != "manifest.json":
            continue
        manifest = read_manifest(ctx.artifacts, ctx.run_date, ctx.gen, parts[0])
        for output in manifest.outputs.values() if manifest else ():
            if output.key in seen:  # one file two manifests name (the day's audience, part of the history)
                continue
            seen.add(output.key)
            if not ctx.artifacts.exists(output.key):
                damaged.append(f"{output.uri}: missing ({manifest.step} recorded it)")
                continue
            with ctx.artifacts.fetch(output.key) as path:
                found = sha256_file(path)
            if found != output.sha256:
                damaged.append(f"{output.uri}: sha256 {found[:16]}..., {manifest.step}'s manifest recorded"
                               f" {output.sha256[:16]}...")
    return damaged


def recheck(ctx: Context) -> dict[TableKey, Figures]:
    """Compare the date's published generation with its manifests again: its warehouse rows
    (a mismatch demotes it) and its artifacts (damage is exit 9, every file named)."""
    ctx.generation = ctx.generation or checked_generation(ctx)
    loaded = read_outputs(LOAD, ctx)
    if loaded is None:
        raise UpstreamMissingError(f"verify {ctx.run_date}: generation {ctx.gen} was never loaded"
                                   " (no load manifest)")
    ctx.progress.phase("checking the artifacts' digests")
    damaged = damaged_artifacts(ctx)
    try:
        found = compare(ctx, loaded)
    except VerificationError as exc:
        message = (f"{exc}\nrun {ctx.run_date} is not served any more; `airtime run --date"
                   f" {ctx.run_date}` loads it again from its artifacts")
        ctx.warehouse.record_failure(ctx.run_date, ctx.gen, "verify",
                                     failure_message(VerificationError.exit_code, message), demote=True)
        announce(ctx.artifacts, ctx.run_date, FAILED)
        raise VerificationError(message + "".join(f"\n  damaged artifact: {d}" for d in damaged)) from None
    if damaged:
        raise IntegrityError(
            f"run {ctx.run_date} generation {ctx.gen}: the warehouse holds what was loaded, but"
            f" {len(damaged)} artifact(s) later days read are damaged:\n  " + "\n  ".join(damaged)
            + "\nrestore them (the bucket's object versions or soft delete), or remove the generation's"
            f" manifests ({ctx.artifacts.uri(run_prefix(ctx.run_date, ctx.gen))}/*/manifest.json) and run"
            f" {ctx.run_date} again")
    return found


STEP = Step("verify", upstream=(LOAD,), writes=Verified, plan=plan, still_done=still_published)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
