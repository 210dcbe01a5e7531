"""Gate: hold a delivery that is valid line by line but implausible as a whole.

Before anything is loaded, the day's delivery is compared with the delivery (and the
history) of the latest earlier published run. It is held (InputError, exit 3: nothing published, the day stays failed in
the ledger with the report) when:

- a file keeps no row at all (every line was bad and `--max-bad-rows` let them through);
- a file has far fewer rows than the previous delivery (`dq_min_rows_ratio`);
- signals, or more than a share of the (signal, program) series, vanished
  (`dq_max_vanished_signals`, `dq_max_vanished_series_ratio`);
- the audience rewrites many values the history already held (`dq_max_rewritten_ratio`).

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
from dataclasses import dataclass

import duckdb

from airtime.artifacts import fetch_checked, parquet_rel, scratch_connection, workdir
from airtime.errors import DeliveryHeldError, InputError
from airtime.manifest import run_prefix
from airtime.settings import Settings
from airtime.warehouse import HELD, Attempt, RunRecord
from steps.entry import step_main
from steps.ingest import STEP as INGEST
from steps.ingest import Ingested
from steps.preprocess import STEP as PREPROCESS
from steps.preprocess import Forecasted
from steps.scaffold import Context, Planned, Step, Upstream, read_outputs

NAME = "gate"
PASSED, ACCEPTED = "passed", "accepted"
REWRITE_MIN_ROWS = 20  # fewer rewritten rows than this is noise, not a rewritten history


@dataclass(frozen=True)
class Gated:
    decision: str  # passed | accepted
    previous_run: str | None  # the delivery it was compared with
    findings: list[str]  # what would have held it (empty when it passed)


def acceptance_key(run_date: dt.date, generation: str) -> str:
    """The acceptance of exactly this generation (another delivery of the date is another
    generation, judged anew)."""
    return f"{run_prefix(run_date, generation)}/{NAME}/accepted.json"


def _previous(ctx: Context) -> tuple[RunRecord, Ingested] | None:
    """The latest earlier published generation, with its ingest outputs."""
    record = ctx.previous()
    if record is None:
        return None
    ingested = read_outputs(INGEST, ctx, record)
    return None if ingested is None else (record, ingested)


def plan(ctx: Context, upstream: Upstream) -> Planned[Gated]:
    ingested = upstream[Ingested]
    previous = _previous(ctx)
    accepted = ctx.artifacts.exists(acceptance_key(ctx.run_date, ctx.gen))
    s = ctx.settings
    inputs = {
        "audience": ingested.audience.sha256,
        "availability": ingested.availability.sha256,
        "previous": f"{previous[0].run_date}:{previous[1].audience.sha256}" if previous else "none",
        "accepted": str(accepted),
        "thresholds": f"{s.dq_min_rows_ratio}/{s.dq_max_vanished_signals}/"
                      f"{s.dq_max_vanished_series_ratio}/{s.dq_max_rewritten_ratio}",
    }
    return Planned(inputs, lambda: _judge(ctx, ingested, previous, accepted))


def _judge(ctx: Context, ingested: Ingested, previous: tuple[RunRecord, Ingested] | None,
           accepted: bool) -> Gated:
    ctx.progress.phase("comparing the delivery with " + (str(previous[0].run_date) if previous else "nothing"))
    findings = findings_of(ctx, ingested, previous)
    previous_run = previous[0].run_date.isoformat() if previous else None
    if not findings:
        return Gated(PASSED, previous_run, [])
    if accepted:
        return Gated(ACCEPTED, previous_run, findings)
    raise DeliveryHeldError(
        f"delivery of {ctx.run_date} held by the data-quality gate (compared with the delivery of "
        f"{previous_run or 'no earlier published run'}):\n  " + "\n  ".join(findings)
        + f"\nthe delivery is kept, unpublished, as generation {ctx.gen} (`airtime runs --date {ctx.run_date}`);"
        f" the data served and what later days build on are unchanged"
        + f"\nif the delivery is right: airtime accept --date {ctx.run_date} --reason '...' publishes exactly"
        " this generation")


def findings_of(ctx: Context, ingested: Ingested, previous: tuple[RunRecord, Ingested] | None) -> list[str]:
    with fetch_checked(ctx.artifacts, ingested.audience) as audience, \
            fetch_checked(ctx.artifacts, ingested.availability) as availability:
        today = {"audience": parquet_rel(audience), "availability": parquet_rel(availability)}
        findings = [f"{table} has no valid row" for table, out in
                    (("audience", ingested.audience), ("availability", ingested.availability)) if out.rows == 0]
        if previous is None:
            return findings
        findings += _size_findings(ctx.settings, ingested, previous[1])
        # bounded like every step's DuckDB: the rewrite check joins the day's audience with the
        # whole history (10M x 10M rows on a daily full-history delivery), which without a
        # limit takes whatever the pod has
        with workdir() as tmp, contextlib.closing(
                scratch_connection(tmp / "spill", ctx.settings.duckdb_memory_limit)) as con:
            with fetch_checked(ctx.artifacts, previous[1].availability) as before:
                findings += _vanished(con, ctx.settings, today["availability"], parquet_rel(before))
            history: Forecasted | None = read_outputs(PREPROCESS, ctx, previous[0])
            if history is not None:
                with fetch_checked(ctx.artifacts, history.history) as old:
                    findings += _rewritten(con, ctx.settings, today["audience"], parquet_rel(old))
    return findings


def _size_findings(settings: Settings, now: Ingested, before: Ingested) -> list[str]:
    found = []
    for table in ("audience", "availability"):
        rows, usual = getattr(now, table).rows, getattr(before, table).rows
        if usual and rows < settings.dq_min_rows_ratio * usual:
            found.append(f"{table} has {rows:,} rows, {rows / usual:.0%} of the previous delivery's {usual:,}"
                         f" (below AIRTIME_DQ_MIN_ROWS_RATIO={settings.dq_min_rows_ratio})")
    return found


def _vanished(con: duckdb.DuckDBPyConnection, settings: Settings, today: str, before: str) -> list[str]:
    signals = [s for (s,) in con.execute(
        f"SELECT DISTINCT signal FROM {before} EXCEPT SELECT DISTINCT signal FROM {today} ORDER BY 1").fetchall()]
    found = []
    if len(signals) > settings.dq_max_vanished_signals:
        found.append(f"signals with availability before and none now: {', '.join(signals[:20])}"
                     f" (AIRTIME_DQ_MAX_VANISHED_SIGNALS={settings.dq_max_vanished_signals})")
    gone, total = con.execute(
        f"SELECT (SELECT count(*) FROM (SELECT DISTINCT signal, program_code FROM {before}"
        f" EXCEPT SELECT DISTINCT signal, program_code FROM {today})),"
        f" (SELECT count(*) FROM (SELECT DISTINCT signal, program_code FROM {before}))").fetchone()
    if total and gone / total > settings.dq_max_vanished_series_ratio:
        found.append(f"{gone:,} of the previous delivery's {total:,} (signal, program) series have no"
                     f" availability now ({gone / total:.0%}, above AIRTIME_DQ_MAX_VANISHED_SERIES_RATIO="
                     f"{settings.dq_max_vanished_series_ratio})")
    return found


def _rewritten(con: duckdb.DuckDBPyConnection, settings: Settings, today: str, history: str) -> list[str]:
    overlap, changed = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE abs(t.average_audience - h.average_audience)"
        f" > 1e-9 * greatest(abs(h.average_audience), 1))"
        f" FROM {today} t JOIN {history} h USING (signal, program_code, exhibition_date)").fetchone()
    if changed >= REWRITE_MIN_ROWS and changed > settings.dq_max_rewritten_ratio * overlap:
        return [f"the audience rewrites {changed:,} of the {overlap:,} exhibitions the history already held"
                f" ({changed / overlap:.0%}, above AIRTIME_DQ_MAX_REWRITTEN_RATIO={settings.dq_max_rewritten_ratio})"]
    return []


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
