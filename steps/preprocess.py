"""Preprocess: merged history and the forecast, in DuckDB, in memory.

The history of run D is the history of the latest earlier PUBLISHED generation (the
ledger names it) merged with D's delivery (latest delivery wins): a held or failed
delivery never enters a later day's history. That generation is part of D's generation's
name, so re-publishing an earlier day makes later days recompute on their next run.

A history is stored in two parts (forecast.history_sql): D's audience, ingest's artifact,
by reference, and the rows D kept from the previous history, written here (on a daily
full-history delivery, a few; on a first day, none).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

from airtime.artifacts import fetch_checked, parquet_rel, publish_parquet, scratch_connection, sql_string, workdir
from airtime.errors import IntegrityError
from airtime.forecast import create_history_delta, delivery_changes_sql, forecast_query, history_sql, kept_history_sql
from airtime.manifest import Output, run_prefix
from steps.entry import step_main
from steps.ingest import STEP as INGEST
from steps.ingest import Ingested
from steps.scaffold import Context, Planned, Step, Upstream, read_outputs

log = logging.getLogger(__name__)

NAME = "preprocess"


@dataclass(frozen=True)
class Forecasted:
    forecast: Output
    # the history's rows kept from the previous run's history; with `history_delivery`,
    # every exhibition delivered up to this run, what the next run starts from (a manifest
    # without `history_delivery`, written before the two parts: every row)
    history: Output
    previous_run: str | None  # the run whose history this one extended
    previous_generation: str | None = None  # and its generation (absent before generations)
    # the day's rows new or rewritten against the previous run's history (`held`), found by
    # the merge (forecast.delivery_changes_sql): the gate reads them instead of joining the
    # day with that history again (None: no previous run, or an older manifest)
    changes: Output | None = None
    # the rest of the history: this run's audience (ingest's artifact of the same
    # generation, by reference), delivered on the run date
    history_delivery: Output | None = None

    @property
    def history_rows(self) -> int:
        return self.history.rows + (self.history_delivery.rows if self.history_delivery else 0)

    def history_identity(self) -> str:
        return self.history.sha256 + (f"+{self.history_delivery.sha256}" if self.history_delivery else "")

    def history_relation(self, run_date: dt.date, local: Callable[[Output], str]) -> str:
        """The whole history as one relation; `local(output)` gives an artifact's relation."""
        delivery = local(self.history_delivery) if self.history_delivery else None
        return history_sql(local(self.history), delivery, run_date)


def previous_history(ctx: Context) -> tuple[str, Forecasted | None, dt.date | None]:
    """Identity, outputs and date of the history of the latest earlier published generation."""
    record = ctx.previous()
    if record is None:
        return "none", None, None
    previous = read_outputs(STEP, ctx, record)
    if previous is None:
        raise IntegrityError(
            f"run {record.run_date} is published (generation {record.generation}) but its preprocess manifest"
            f" {ctx.artifacts.uri(run_prefix(record.run_date, record.generation) + '/' + NAME)}/manifest.json"
            f" is missing or unreadable: restore it, or run {record.run_date} again")
    return f"{record.run_date.isoformat()}:{previous.history_identity()}", previous, record.run_date


def plan(ctx: Context, upstream: Upstream) -> Planned[Forecasted]:
    ingested = upstream[Ingested]
    previous_id, previous, previous_date = previous_history(ctx)
    inputs = {
        "audience": ingested.audience.sha256,
        "availability": ingested.availability.sha256,
        "previous_history": previous_id,
    }
    return Planned(inputs, lambda: _forecast(ctx, ingested, previous, previous_date))


def _forecast(ctx: Context, ingested: Ingested, previous: Forecasted | None,
              previous_date: dt.date | None) -> Forecasted:
    folder = f"{run_prefix(ctx.run_date, ctx.gen)}/{NAME}"
    built_on = ctx.previous()
    with workdir() as tmp, fetch_checked(ctx.artifacts, ingested.audience) as audience, \
            fetch_checked(ctx.artifacts, ingested.availability) as availability, \
            contextlib.ExitStack() as files:
        con = scratch_connection(tmp / "spill", ctx.settings.duckdb_memory_limit)
        kept_file, forecast_file = tmp / "history.parquet", tmp / "forecast.parquet"
        delta, changes_file = None, None
        ctx.progress.phase("merging the history")
        if previous is not None:
            assert previous_date is not None
            previous_rel = previous.history_relation(
                previous_date, lambda out: parquet_rel(files.enter_context(fetch_checked(ctx.artifacts, out))))
            delta, changes_file = "history_delta", tmp / "changes.parquet"
            # one join of the day with the previous history: the rows it keeps, and the
            # day's new and rewritten ones for the gate
            create_history_delta(con, delta, previous_rel, parquet_rel(audience), ctx.run_date)
            con.execute(f"COPY ({delivery_changes_sql(delta)}) TO {sql_string(changes_file)} (FORMAT parquet)")
        # No ORDER BY, and no insertion order kept: nothing reads the history's row order
        # (the forecast groups or sorts what it needs), and at 10M rows sorting it for a
        # canonical order cost 4-5 s, most of preprocess, spilling at the memory limit;
        # keeping insertion order cost 0.3 s on a first day and 0.5-1 s on a merge. The
        # rows come in the order DuckDB's parallel scan and anti join give them
        # (https://duckdb.org/docs/stable/sql/dialect/order_preservation), so the same
        # inputs always give the same rows, not always the same bytes: the manifest
        # records the history's row count, no checksum, and a history written again with
        # other bytes only makes the next day's preprocess run again.
        con.execute(f"COPY ({kept_history_sql(parquet_rel(audience), delta)}) TO {sql_string(kept_file)}"
                    " (FORMAT parquet)")
        if delta is not None:
            con.execute(f"DROP TABLE {delta}")
        ctx.progress.phase("forecasting every slot")
        history = history_sql(parquet_rel(kept_file), parquet_rel(audience), ctx.run_date)
        forecast = forecast_query(con, history, parquet_rel(availability))
        con.execute(f"COPY ({forecast}) TO {sql_string(forecast_file)} (FORMAT parquet)")
        con.close()
        return Forecasted(
            forecast=publish_parquet(ctx.artifacts, forecast_file, folder, "forecast", "forecast"),
            history=publish_parquet(ctx.artifacts, kept_file, folder, "history", None),
            previous_run=previous_date.isoformat() if previous_date else None,
            previous_generation=built_on.generation if built_on else None,
            changes=publish_parquet(ctx.artifacts, changes_file, folder, "changes", None) if changes_file else None,
            history_delivery=ingested.audience,
        )


STEP = Step(NAME, upstream=(INGEST,), writes=Forecasted, plan=plan)

if __name__ == "__main__":
    sys.exit(step_main(STEP))
