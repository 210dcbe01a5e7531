"""Gate: hold a delivery that is valid line by line but implausible as a whole.

Before anything is loaded, the day's delivery is judged by the rules of
airtime/plausibility.py: by itself (a file with no row, a delivery of slots already past)
and against each reference delivery there is: the published generation of the same date (a
re-delivery must not replace it with something implausible, even when no earlier date is
published) and the latest earlier published one (what the day builds on). It is held
(DeliveryHeldError, exit 3: nothing loaded, the published data stays served) when a rule
finds something; the report names each rule, its numbers and its setting (`AIRTIME_DQ_*`).

A held delivery is a generation of its own (state `held` in the ledger): the published
generation stays served and later days keep building on it. An operator who knows the
delivery is right accepts it: `airtime accept --date D --reason R` records the decision
(the `attempts` table, step `gate`, state `accepted`) and an acceptance object in exactly
that generation, then finishes it (gate, load, verify) without reading the source again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import uuid
from dataclasses import dataclass, field

from airtime import plausibility
from airtime.artifacts import fetch_checked, parquet_rel, scratch_connection, workdir
from airtime.errors import DeliveryHeldError, InputError
from airtime.manifest import Output, run_prefix
from airtime.plausibility import Delivery, Finding
from airtime.warehouse import HELD, PUBLISHED, Attempt, RunRecord
from steps.entry import step_main
from steps.ingest import STEP as INGEST
from steps.ingest import Ingested
from steps.preprocess import STEP as PREPROCESS
from steps.preprocess import Forecasted
from steps.scaffold import Context, Planned, Step, Upstream, read_outputs

NAME = "gate"
PASSED, ACCEPTED = "passed", "accepted"


@dataclass(frozen=True)
class Gated:
    decision: str  # passed | accepted
    previous_run: str | None  # the earlier date's delivery it was compared with
    findings: list[str]  # what would have held it (empty when it passed)
    # every delivery it was compared with, as `<date>/<generation>`
    compared_with: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)  # the day's slots (plausibility.Slots)


@dataclass(frozen=True)
class Reference:
    """A published delivery the day's is compared with."""

    why: str  # "the published delivery of the same date" | "the previous published delivery"
    record: RunRecord
    ingested: Ingested

    @property
    def name(self) -> str:
        return f"{self.record.run_date}/{self.record.generation}"


def acceptance_key(run_date: dt.date, generation: str) -> str:
    """The acceptance of exactly this generation (another delivery of the date is another
    generation, judged anew)."""
    return f"{run_prefix(run_date, generation)}/{NAME}/accepted.json"


def references(ctx: Context) -> list[Reference]:
    """The date's published generation (unless it is this one), then the latest earlier
    published one, each with its ingest outputs."""
    found = []
    same = ctx.warehouse.run_record(ctx.run_date)
    for why, record in (("the published delivery of the same date", same if same and same.state == PUBLISHED
                         and same.generation != ctx.gen else None),
                        ("the previous published delivery", ctx.previous())):
        ingested = read_outputs(INGEST, ctx, record) if record is not None else None
        if ingested is not None:
            found.append(Reference(why, record, ingested))
    return found


def plan(ctx: Context, upstream: Upstream) -> Planned[Gated]:
    ingested = upstream[Ingested]
    refs = references(ctx)
    accepted = ctx.artifacts.exists(acceptance_key(ctx.run_date, ctx.gen))
    previous = [r for r in refs if r.record.run_date < ctx.run_date]
    # The previous day is part of the generation's name; the date's published generation is
    # not, and is not part of the decision's identity either: a decision stands for the
    # generation it was made for (the manifest records what it was compared with). Were it an
    # input, a run of the date that publishes while another runs would make the other's gate
    # stale under its load (exit 8) instead of letting the one loaded last win
    # (docs/generations.md, "two runs of one date at once").
    inputs = {
        "audience": ingested.audience.sha256,
        "availability": ingested.availability.sha256,
        "previous": ",".join(f"{r.name}:{r.ingested.audience.sha256}" for r in previous) or "none",
        "accepted": str(accepted),
        "thresholds": ",".join(f"{name}={getattr(ctx.settings, name)}" for name in plausibility.SETTINGS),
    }
    return Planned(inputs, lambda: _judge(ctx, ingested, upstream[Forecasted], refs, accepted))


def _judge(ctx: Context, ingested: Ingested, forecasted: Forecasted, refs: list[Reference],
           accepted: bool) -> Gated:
    ctx.progress.phase("comparing the delivery with " + (", ".join(r.name for r in refs) or "nothing"))
    findings, figures = findings_of(ctx, ingested, forecasted, refs)
    previous = ctx.previous()
    previous_run = previous.run_date.isoformat() if previous else None
    report = [str(finding) for group in findings.values() for finding in group]
    gated = Gated(PASSED, previous_run, report, [r.name for r in refs], figures)
    if not report:
        return gated
    if accepted:
        return Gated(ACCEPTED, previous_run, report, gated.compared_with, figures)
    raise DeliveryHeldError(
        f"delivery of {ctx.run_date} held by the data-quality gate:\n"
        + "\n".join(f"  {where}:\n" + "\n".join(f"    {line}" for line in lines)
                    for where, lines in findings.items() if lines)
        + f"\nthe delivery is kept, unpublished, as generation {ctx.gen} (`airtime runs --date {ctx.run_date}`);"
        f" the data served and what later days build on are unchanged"
        + f"\nif the delivery is right: airtime accept --date {ctx.run_date} --reason '...' publishes exactly"
        " this generation")


def findings_of(ctx: Context, ingested: Ingested, forecasted: Forecasted, refs: list[Reference]
                ) -> tuple[dict[str, list[Finding]], dict[str, object]]:
    """The findings, grouped by what they compare the delivery with, and the day's figures."""
    # bounded like every step's DuckDB: the rewrite check joins the day's audience with the
    # whole history (10M x 10M rows on a daily full-history delivery), which without a
    # limit takes whatever the pod has
    with workdir() as tmp, contextlib.ExitStack() as files, contextlib.closing(
            scratch_connection(tmp / "spill", ctx.settings.duckdb_memory_limit)) as con:
        def local(output: Output) -> str:
            return parquet_rel(files.enter_context(fetch_checked(ctx.artifacts, output)))

        today = Delivery(ctx.run_date, local(ingested.audience), local(ingested.availability))
        compared = {}
        for ref in refs:
            history: Forecasted | None = read_outputs(PREPROCESS, ctx, ref.record)
            where = f"against {ref.why}, {ref.record.run_date} (generation {ref.record.generation})"
            # the day was merged into this reference's history: preprocess's join found its changes
            changes = local(forecasted.changes) if forecasted.changes is not None and history is not None and (
                forecasted.previous_run, forecasted.previous_generation) == (
                ref.record.run_date.isoformat(), ref.record.generation) else None
            compared[where] = Delivery(ref.record.run_date, local(ref.ingested.audience),
                                       local(ref.ingested.availability),
                                       history.history_relation(ref.record.run_date, local) if history else None,
                                       changes)
        found, measured = plausibility.judge_delivery(con, ctx.settings, today, compared)
    return found, measured.figures()


def held_generation(ctx: Context) -> RunRecord:
    """The date's newest generation the gate held: what `airtime accept` publishes."""
    held = [r for r in ctx.warehouse.generations(ctx.run_date) if r.state == HELD]
    if not held:
        states = ", ".join(f"{r.generation} {r.state}" for r in ctx.warehouse.generations(ctx.run_date))
        raise InputError(f"accept {ctx.run_date}: no delivery of this date is held by the gate"
                         f" ({states or 'never run'}); see `airtime runs --date {ctx.run_date}`")
    return held[0]


def accept(ctx: Context, reason: str, by: str) -> str:
    """Accept the held generation `ctx.generation` names; returns the acceptance's URI.

    Refused when the generation was built on a previous day that is no longer the one
    published (its history would be stale): the date must be run again then."""
    ingested = read_outputs(INGEST, ctx)
    forecasted: Forecasted | None = read_outputs(PREPROCESS, ctx)
    if ingested is None or forecasted is None:
        raise InputError(f"accept {ctx.run_date}: generation {ctx.gen} has no ingest or preprocess manifest")
    now_on = ctx.previous()
    built_on = (forecasted.previous_run, forecasted.previous_generation)
    if built_on != ((str(now_on.run_date), now_on.generation) if now_on else (None, None)):
        raise InputError(
            f"accept {ctx.run_date}: generation {ctx.gen} was built on run {built_on[0]} generation {built_on[1]},"
            f" but the day before it published now is {now_on.run_date if now_on else 'none'}; run the date"
            " again (`airtime run --date ...`), which judges the delivery anew")
    key = acceptance_key(ctx.run_date, ctx.gen)
    body = {"run_date": ctx.run_date.isoformat(), "generation": ctx.gen, "reason": reason, "by": by,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "audience_sha256": ingested.audience.sha256, "availability_sha256": ingested.availability.sha256}
    ctx.artifacts.write_bytes(key, json.dumps(body, indent=2).encode())
    # the decision, in the ledger beside the attempts that held the delivery
    now = dt.datetime.now(dt.UTC)
    ctx.warehouse.start_attempt(Attempt(uuid.uuid4().hex, ctx.run_date, NAME, ACCEPTED, now, now, by,
                                        f"accepted generation {ctx.gen} by {by}: {reason}"))
    return ctx.artifacts.uri(key)


# after preprocess (whose outputs are artifacts only), before load: a held day loads nothing
STEP = Step(NAME, upstream=(INGEST, PREPROCESS), writes=Gated, plan=plan)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
