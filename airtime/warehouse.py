"""The warehouse interface: raw tables, forecast, and the `runs` ledger.

Every row carries `run_date` and `generation` (one delivery of the date, see
airtime/generation.py). A generation's rows are replaced as a whole inside one
transaction, so loading it twice leaves one copy and a crash leaves the previous state;
loading a new generation never touches the published one's rows. The ledger holds one row
per generation and is what "the write really succeeded" means: a generation is served
only once verify compared the warehouse's figures with the manifests and published it,
which in the same transaction supersedes the date's previous published generation and
removes its rows. At most one generation of a date is published.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from airtime.errors import StorageError
from airtime.schema import ATTEMPTS, DATA_TABLES, RUNS, TableKey

# generation states, in the order a generation goes through them. HELD: the gate refused
# the delivery (it waits for `airtime accept`); SUPERSEDED: was published, a newer
# generation of the date replaced it; PRUNED: its rows and artifacts were removed.
LOADED, PUBLISHED, FAILED = "loaded", "published", "failed"
HELD, SUPERSEDED, PRUNED = "held", "superseded", "pruned"
# the generation of what was written before generations existed (one per date)
LEGACY = "legacy"
# attempt states: an attempt still `running` after a later one started was killed
RUNNING, SUCCEEDED, SKIPPED = "running", "succeeded", "skipped"


@dataclass(frozen=True)
class Figures:
    rows: int
    checksum: int


@dataclass
class RunLoad:
    """What the load step hands the warehouse for one run date."""

    run_date: dt.date
    generation: str
    input_digest: str  # digest of the manifests the load came from
    files: dict[TableKey, Path]  # local Parquet file per table
    figures: dict[TableKey, Figures]  # expected, from the manifests
    quarantined_rows: int = 0
    started_at: dt.datetime | None = None


@dataclass
class RunRecord:
    """One row of the `runs` ledger: one generation of a date."""

    run_date: dt.date
    state: str
    input_digest: str
    audience_rows: int
    availability_rows: int
    forecast_rows: int
    quarantined_rows: int
    checksums: dict[str, int] = field(default_factory=dict)
    started_at: dt.datetime | None = None
    loaded_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    failed_step: str | None = None
    error: str | None = None
    generation: str = LEGACY  # which delivery of the date this row is about


@dataclass(frozen=True)
class Attempt:
    """One row of the `attempts` table: one try of one step for one date."""

    attempt_id: str
    run_date: dt.date
    step: str
    state: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    host: str | None = None
    error: str | None = None


def attempt_of(row: Mapping[str, object]) -> Attempt:
    return Attempt(**{name: row[name] for name in ATTEMPTS.names})


@dataclass(frozen=True)
class SlotFilter:
    """Which forecast slots a read wants: a date range (either end open) and, optionally,
    one signal and one program. The one filter type of every query path."""

    start: dt.date | None = None
    end: dt.date | None = None
    signal: str | None = None
    program_code: str | None = None


def generation_of_row(mark: str, column: str = "generation") -> str:
    """`column` = the bound generation; NULL (a row from before generations) is LEGACY."""
    return f"COALESCE({column}, '{LEGACY}') = {mark}generation"


def filter_clauses(run_date: dt.date, where: SlotFilter | None, mark: str, generation: str | None = None,
                   runs: str = "runs") -> tuple[list[str], dict[str, object]]:
    """WHERE clauses and bound parameters of a forecast read of one generation (by default
    the date's published one); `mark` is the engine's parameter prefix (`$` in DuckDB, `@`
    in BigQuery), `runs` the ledger table's name in SQL."""
    where = where or SlotFilter()
    clauses, params = [f"run_date = {mark}run_date"], {"run_date": run_date}
    if generation is None:
        clauses.append(f"COALESCE(generation, '{LEGACY}') = (SELECT COALESCE(generation, '{LEGACY}') FROM {runs}"
                       f" WHERE run_date = {mark}run_date AND state = '{PUBLISHED}' LIMIT 1)")
    else:
        clauses.append(generation_of_row(mark))
        params["generation"] = generation
    for clause, name, value in (("date >=", "start", where.start), ("date <=", "end", where.end),
                                ("signal =", "signal", where.signal),
                                ("program_code =", "program_code", where.program_code)):
        if value is not None:
            clauses.append(f"{clause} {mark}{name}")
            params[name] = value
    return clauses, params


def ledger_row(load: RunLoad, now: dt.datetime) -> dict[str, object]:
    """The `runs` row a load writes (state `loaded`), by column name."""
    row: dict[str, object] = {name: None for name in RUNS.names}
    row |= {"run_date": load.run_date, "generation": load.generation, "state": LOADED,
            "input_digest": load.input_digest,
            "quarantined_rows": load.quarantined_rows, "started_at": load.started_at or now,
            "loaded_at": now}
    for table, figures in load.figures.items():
        row[f"{table}_rows"], row[f"{table}_checksum"] = figures.rows, figures.checksum
    return row


def record_of(row: Mapping[str, object]) -> RunRecord:
    """A ledger row (by column name, from either engine) as a RunRecord."""
    return RunRecord(
        run_date=row["run_date"],
        generation=row["generation"] or LEGACY,
        state=row["state"],
        input_digest=row["input_digest"],
        audience_rows=row["audience_rows"] or 0,
        availability_rows=row["availability_rows"] or 0,
        forecast_rows=row["forecast_rows"] or 0,
        quarantined_rows=row["quarantined_rows"] or 0,
        checksums={table: row[f"{table}_checksum"] for table in DATA_TABLES},
        started_at=row["started_at"],
        loaded_at=row["loaded_at"],
        published_at=row["published_at"],
        failed_step=row["failed_step"],
        error=row["error"],
    )


# A failure noted in the ledger starts with the exit code of the error that caused it, so
# the query server can tell a verification mismatch (4) or damaged state (9) from a held
# delivery (3) or a transient fault (5) from the ledger alone (grpc_server/ledger_metrics.py),
# with no column added to the ledger of either engine.
_EXIT_NOTE = re.compile(r"^\[exit (\d+)\] ")


def failure_message(exit_code: int, message: str) -> str:
    """The ledger's `error` of a failure that ends a process with exit_code."""
    return f"[exit {exit_code}] {message}"


def exit_code_of(error: str | None) -> int:
    """The exit code a ledger `error` records: 0 for none, 1 for a note without one (a row
    written before notes carried it)."""
    if not error:
        return 0
    found = _EXIT_NOTE.match(error)
    return int(found.group(1)) if found else 1


def superseded_message(run_date: dt.date, generation: str, later: str, loaded_at: object) -> str:
    return (f"generation {generation} of {run_date} is not published: generation {later} of the same date,"
            f" loaded after it (at {loaded_at}), is published already (two runs of the date at once?);"
            f" `airtime runs --date {run_date}` shows both; to serve this delivery instead, run the date"
            " again with it")


def check_expirable(run_date: dt.date, generation: str, state: str | None, newest: dt.date | None) -> None:
    """Refuse to expire a generation that is not published, or whose date is the newest
    published one (`newest`): the one served."""
    if state != PUBLISHED:
        raise StorageError(f"run {run_date} generation {generation} is {state or 'not in the ledger'}, not"
                           " published: not expired (an unpublished generation is removed, not expired)")
    if newest is None or newest <= run_date:
        raise StorageError(f"run {run_date} generation {generation} is of the newest published date, the one"
                           " served: not expired")


def newest_first(records: list[RunRecord]) -> list[RunRecord]:
    """Dates newest first; within a date, its newest generation first."""
    stamp = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(records, key=lambda r: (r.run_date, r.started_at or stamp), reverse=True)


class LedgerReads:
    """The ledger questions, asked the same way of every engine through `_records`."""

    PARAM_MARK = "$"

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Nothing here: an engine that pays for each connection keeps one open in it."""
        yield

    def release(self) -> None:
        """Nothing here (see `session`)."""

    def _records(self, where: str = "", params: dict[str, object] | None = None) -> list[RunRecord]:
        raise NotImplementedError

    def run_record(self, run_date: dt.date) -> RunRecord | None:
        """The date's published generation, else its newest one."""
        found = newest_first(self._records(f"WHERE run_date = {self.PARAM_MARK}run_date", {"run_date": run_date}))
        published = [r for r in found if r.state == PUBLISHED]
        return (published or found or [None])[0]

    def generation_record(self, run_date: dt.date, generation: str) -> RunRecord | None:
        mark = self.PARAM_MARK
        found = self._records(f"WHERE run_date = {mark}run_date AND {generation_of_row(mark)}",
                              {"run_date": run_date, "generation": generation})
        return found[0] if found else None

    def generations(self, run_date: dt.date) -> list[RunRecord]:
        """Every generation of the date, newest first."""
        return newest_first(self._records(f"WHERE run_date = {self.PARAM_MARK}run_date", {"run_date": run_date}))

    def ledger(self) -> list[RunRecord]:
        return newest_first(self._records())

    def latest_published(self) -> RunRecord | None:
        found = newest_first(self._records(f"WHERE state = {self.PARAM_MARK}state", {"state": PUBLISHED}))
        return found[0] if found else None

    def published_before(self, run_date: dt.date) -> RunRecord | None:
        """The latest published generation of an earlier date: what a day builds on."""
        mark = self.PARAM_MARK
        found = newest_first(self._records(f"WHERE state = {mark}state AND run_date < {mark}run_date",
                                           {"state": PUBLISHED, "run_date": run_date}))
        return found[0] if found else None


class Warehouse(Protocol):
    def session(self) -> contextlib.AbstractContextManager[None]:
        """While the block runs, the ledger operations may share one connection, opened by
        the first of them and kept until `release()` or the block's end: the bookkeeping
        between a run's steps (attempts, ledger reads) is a dozen small operations."""
        ...

    def release(self) -> None:
        """Close the session's connection before long work (a step's), so that other
        processes reach the warehouse meanwhile; the next operation opens it again."""
        ...

    def load_run(self, load: RunLoad) -> None:
        """Replace the rows of the load's generation in every table and set its ledger row
        to `loaded`, atomically. Other generations of the date (the published one) are
        left alone."""
        ...

    def figures(self, run_date: dt.date, generation: str,
                versions: Mapping[TableKey, int] | None = None) -> dict[TableKey, Figures]:
        """Row count and checksum of each table's rows of the generation, read back; each
        table's checksum in the airtime.checksum version `versions` names (default: the
        current one)."""
        ...

    def publish(self, run_date: dt.date, generation: str, input_digest: str) -> None:
        """Publish a loaded generation (only if its ledger row has this digest), in one
        transaction: the date's previous published generation becomes superseded and its
        rows go. Refused (SupersededError) when the published generation was loaded after
        this one: the later delivery of the date stays served."""
        ...

    def record_failure(self, run_date: dt.date, generation: str, step: str, message: str, *,
                       state: str = FAILED, demote: bool = False) -> None:
        """Note a failed (or HELD) step of a generation in the ledger. A published
        generation stays published (a failed re-run does not take away verified data)
        unless `demote`: one that fails a re-check of its own rows is served no more."""
        ...

    def remove_generation(self, run_date: dt.date, generation: str) -> None:
        """Delete an unpublished generation's rows and mark its ledger row pruned."""
        ...

    def expire_generation(self, run_date: dt.date, generation: str) -> None:
        """Delete a published generation's rows and mark its ledger row pruned, in one
        transaction: warehouse retention (airtime/retention.py). Refused (StorageError)
        unless it is published and a later date is published too, so the newest published
        date, the one served, is never expired; nothing to do when it is pruned already (a
        prune killed after it)."""
        ...

    def start_attempt(self, attempt: Attempt) -> None:
        """Record an attempt before its work starts (a killed one stays `running`)."""
        ...

    def end_attempt(self, attempt_id: str, state: str, ended_at: dt.datetime, error: str | None = None) -> None: ...

    def attempts(self, run_date: dt.date | None = None) -> list[Attempt]:
        """Attempts, newest first; of one date, or of every date."""
        ...

    def run_record(self, run_date: dt.date) -> RunRecord | None: ...

    def generation_record(self, run_date: dt.date, generation: str) -> RunRecord | None: ...

    def generations(self, run_date: dt.date) -> list[RunRecord]: ...

    def ledger(self) -> list[RunRecord]:
        """Every generation of every date, newest first."""
        ...

    def latest_published(self) -> RunRecord | None: ...

    def published_before(self, run_date: dt.date) -> RunRecord | None: ...

    def read_forecast(self, run_date: dt.date, where: SlotFilter | None = None,
                      generation: str | None = None) -> pa.Table:
        """Forecast rows of a generation (default: the date's published one; none when no
        generation is published), columns as in the forecast Parquet, ordered by signal,
        program_code, date."""
        ...
