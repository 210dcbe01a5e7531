"""The embedded warehouse: one DuckDB file.

DuckDB lets one process write a file, or several read it, not both. Every operation
therefore opens a short-lived connection and retries while another process holds the
lock, so `airtime run` and a polling `airtime serve` can share the file. Inside a
`session()` (the bookkeeping between a run's steps) the operations share one connection
until `release()`: an open and close cost 15-25 ms whatever the file's size (most of it
DuckDB starting a database instance), and a day made 20 of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from airtime import checksum, faults
from airtime.artifacts import DEFAULT_MEMORY_LIMIT
from airtime.errors import IntegrityError, StorageError, SupersededError
from airtime.schema import ATTEMPTS, DATA_TABLES, FORECAST, RUNS, TABLES, TableKey
from airtime.warehouse import (
    FAILED,
    LEGACY,
    LOADED,
    PRUNED,
    PUBLISHED,
    SUPERSEDED,
    Attempt,
    Figures,
    LedgerReads,
    RunLoad,
    RunRecord,
    SlotFilter,
    attempt_of,
    check_expirable,
    filter_clauses,
    generation_of_row,
    ledger_row,
    record_of,
    superseded_message,
)

log = logging.getLogger(__name__)

SCHEMA = "\n".join(table.duckdb_ddl() for table in TABLES)
RUN_COLUMNS = ", ".join(RUNS.names)

LOCK_WAIT_SECONDS = 60.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DuckDBWarehouse(LedgerReads):
    def __init__(self, path: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> None:
        self.path = Path(path)
        # past it, a load or a checksum spills beside the file (<file>.tmp/) instead of
        # growing the process: Settings.duckdb_memory_limit
        self.memory_limit = memory_limit
        self._layout_checked = False
        self._in_session = False
        self._kept: contextlib.ExitStack | None = None  # the session's open connection
        self._kept_con: duckdb.DuckDBPyConnection | None = None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        if self._in_session:
            yield
            return
        self._in_session = True
        try:
            yield
        finally:
            self._in_session = False
            self.release()

    def release(self) -> None:
        kept, self._kept, self._kept_con = self._kept, None, None
        if kept is not None:
            kept.close()

    @contextlib.contextmanager
    def _connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if not self._layout_checked:
            self._layout_checked = True
            self._migrate_layout()
        if not self._in_session:
            with self._open(read_only) as con:
                yield con
            return
        if self._kept_con is None:  # one read-write connection serves the session's reads too
            kept = contextlib.ExitStack()
            self._kept_con = kept.enter_context(self._open())
            self._kept = kept
        try:
            yield self._kept_con
        except duckdb.Error as exc:
            raise StorageError(f"warehouse {self.path}: {exc}") from exc

    def _migrate_layout(self) -> None:
        """A file written before generations: its tables gain `generation` (existing rows
        become the date's LEGACY generation), once, by the first process that opens it."""
        if not self.path.exists():
            return
        with self._open(read_only=True) as con:
            columns = {name for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'").fetchall()}
        if not columns or "generation" in columns:
            return
        with self._open(read_only=False, schema=False) as con:
            con.execute("BEGIN TRANSACTION")
            for table in DATA_TABLES.values():
                con.execute(f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS generation VARCHAR"
                            f" DEFAULT '{LEGACY}'")
            con.execute(RUNS.duckdb_ddl().replace(f"EXISTS {RUNS.name} (", "EXISTS runs_by_generation ("))
            con.execute(f"INSERT INTO runs_by_generation BY NAME SELECT *, '{LEGACY}' AS generation FROM runs")
            con.execute("DROP TABLE runs")
            con.execute("ALTER TABLE runs_by_generation RENAME TO runs")
            con.execute("COMMIT")
        log.info("warehouse %s: migrated to one ledger row per generation (existing runs: %r)", self.path, LEGACY)

    # No vacuum merges (max_vacuum_tasks 0). A load's rows land in row groups of their own,
    # so a date's rows never share a group with another date's: retention's and publish's
    # deletes empty whole groups, which every checkpoint drops without a rewrite
    # (RowGroupCollection::InitializeVacuumState, src/storage/table/row_group_collection.cpp).
    # With merges on, a checkpoint packs the small tail groups that small days leave (a day's
    # 68k slots of availability and of forecast, each load its own group) into full ones
    # whenever they fit (ScheduleVacuumTasks, same file), mixing dates, so the next deletion
    # left partly empty groups to merge again: at 1M rows, every second day's checkpoint
    # took 0.37-0.40 s instead of 0.06 s, the most of a month's day-30 drift. The file stays
    # the same size (189.3 and 189.5 MiB after the same five days with and without merges).
    @contextlib.contextmanager
    def _open(self, read_only: bool = False, schema: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.02
        while True:
            try:
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                # rows of a table have no order (every read has an ORDER BY): without
                # preserving it, a load inserts in parallel and needs no checkpoint rewrite
                con = duckdb.connect(str(self.path), read_only=read_only,
                                     config={"memory_limit": self.memory_limit,
                                             "preserve_insertion_order": False,
                                             "max_vacuum_tasks": 0})
                break
            except duckdb.IOException as exc:
                if "not a valid duckdb database" in str(exc).lower():  # a retry cannot fix it
                    raise IntegrityError(f"warehouse {self.path} is not a DuckDB database file (damaged?):"
                                         " restore it from a backup, or move it away and backfill") from exc
                # another process holds the file's lock: wait for it, up to a point
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StorageError(f"cannot open warehouse {self.path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        try:
            if not read_only and schema:
                con.execute(SCHEMA)
            con.execute("SET TimeZone = 'UTC'")
            yield con
        except duckdb.Error as exc:
            raise StorageError(f"warehouse {self.path}: {exc}") from exc
        finally:
            con.close()

    def _readable(self) -> bool:
        return self.path.exists()

    def _has_table(self, name: str) -> bool:
        with self._connect(read_only=True) as con:
            return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = $t",
                                    {"t": name}).fetchone()[0])

    # -- writes ---------------------------------------------------------------------

    def load_run(self, load: RunLoad) -> None:
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                params = {"run_date": load.run_date, "generation": load.generation}
                for key, table in DATA_TABLES.items():
                    con.execute(f"DELETE FROM {table.name} WHERE run_date = $run_date"
                                f" AND {generation_of_row('$')}", params)
                    con.execute(
                        f"INSERT INTO {table.name} BY NAME SELECT CAST($run_date AS DATE) AS run_date,"
                        f" CAST($generation AS VARCHAR) AS generation, * FROM read_parquet($path)",
                        {**params, "path": str(load.files[key])},
                    )
                faults.crash_point("load-before-commit")
                con.execute(f"INSERT OR REPLACE INTO runs BY NAME SELECT {_PARAMS}", ledger_row(load, _now()))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def publish(self, run_date: dt.date, generation: str, input_digest: str) -> None:
        params = {"run_date": run_date, "generation": generation}
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                mine = con.execute(
                    f"SELECT loaded_at FROM runs WHERE run_date = $run_date AND {generation_of_row('$')}"
                    " AND input_digest = $digest AND state IN ($loaded, $published)",
                    {**params, "digest": input_digest, "loaded": LOADED, "published": PUBLISHED}).fetchone()
                if mine is None:
                    raise StorageError(
                        f"cannot publish run {run_date} generation {generation}: the ledger has no loaded"
                        f" generation with digest {input_digest[:12]} (loaded by another attempt?)")
                later = con.execute(
                    f"SELECT generation, loaded_at FROM runs WHERE run_date = $run_date AND state = $published"
                    f" AND NOT {generation_of_row('$')} AND loaded_at > $loaded_at",
                    {**params, "published": PUBLISHED, "loaded_at": mine[0]}).fetchone()
                if later is not None:
                    raise SupersededError(superseded_message(run_date, generation, later[0], later[1]))
                con.execute(f"UPDATE runs SET state = $superseded WHERE run_date = $run_date"
                            f" AND state = $published AND NOT {generation_of_row('$')}",
                            {**params, "superseded": SUPERSEDED, "published": PUBLISHED})
                con.execute(f"UPDATE runs SET state = $published, published_at = $now, failed_step = NULL,"
                            f" error = NULL WHERE run_date = $run_date AND {generation_of_row('$')}",
                            {**params, "published": PUBLISHED, "now": _now()})
                # the superseded generations' rows go with the switch: no reader resolves them
                # any more (every read names the published generation), and the warehouse keeps
                # one copy of each date
                for table in DATA_TABLES.values():
                    con.execute(f"DELETE FROM {table.name} WHERE run_date = $run_date"
                                f" AND NOT {generation_of_row('$')} AND COALESCE(generation, '{LEGACY}') IN"
                                f" (SELECT COALESCE(generation, '{LEGACY}') FROM runs WHERE run_date = $run_date"
                                f" AND state = '{SUPERSEDED}')", params)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def record_failure(self, run_date: dt.date, generation: str, step: str, message: str, *,
                       state: str = FAILED, demote: bool = False) -> None:
        with self._connect() as con:
            con.execute(
                f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ($run_date, $generation, $failed, '', NULL, NULL,"
                " NULL, NULL, NULL, NULL, NULL, $now, NULL, NULL, $step, $error)"
                " ON CONFLICT (run_date, generation) DO UPDATE SET failed_step = excluded.failed_step,"
                " error = excluded.error,"
                " state = CASE WHEN runs.state = $published THEN runs.state ELSE $failed END",
                {
                    "run_date": run_date,
                    "generation": generation,
                    "failed": state,
                    # the state a failure leaves alone: none when demoting
                    "published": "" if demote else PUBLISHED,
                    "now": _now(),
                    "step": step,
                    "error": message[:2000],
                },
            )

    def remove_generation(self, run_date: dt.date, generation: str) -> None:
        params = {"run_date": run_date, "generation": generation}
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            state = con.execute(f"SELECT state FROM runs WHERE run_date = $run_date AND {generation_of_row('$')}",
                                params).fetchone()
            if state is not None and state[0] == PUBLISHED:
                con.execute("ROLLBACK")
                raise StorageError(f"run {run_date} generation {generation} is published: not removed")
            for table in DATA_TABLES.values():
                con.execute(f"DELETE FROM {table.name} WHERE run_date = $run_date AND {generation_of_row('$')}",
                            params)
            con.execute(f"UPDATE runs SET state = $pruned WHERE run_date = $run_date AND {generation_of_row('$')}",
                        {**params, "pruned": PRUNED})
            con.execute("COMMIT")

    def expire_generation(self, run_date: dt.date, generation: str) -> None:
        # A separate operation, not a looser remove_generation: removing a published
        # generation takes its date away from every reader, which only retention may decide,
        # and only for a date older than another published one
        params = {"run_date": run_date, "generation": generation}
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                state = con.execute(f"SELECT state FROM runs WHERE run_date = $run_date"
                                    f" AND {generation_of_row('$')}", params).fetchone()
                if state is not None and state[0] == PRUNED:
                    con.execute("ROLLBACK")
                    return
                newest = con.execute("SELECT max(run_date) FROM runs WHERE state = $published",
                                     {"published": PUBLISHED}).fetchone()[0]
                check_expirable(run_date, generation, state and state[0], newest)
                for table in DATA_TABLES.values():
                    con.execute(f"DELETE FROM {table.name} WHERE run_date = $run_date"
                                f" AND {generation_of_row('$')}", params)
                con.execute(f"UPDATE runs SET state = $pruned WHERE run_date = $run_date"
                            f" AND {generation_of_row('$')}", {**params, "pruned": PRUNED})
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            # a checkpoint turns the deleted rows' space into free blocks the next load fills:
            # the file stops growing under retention (it never shrinks). Closing the last
            # connection checkpoints too (bench/month levelled off with or without this one);
            # made here so it does not hang on whether another connection of this process is open
            con.execute("CHECKPOINT")

    def start_attempt(self, attempt: Attempt) -> None:
        with self._connect() as con:
            con.execute(f"INSERT INTO attempts BY NAME SELECT {_ATTEMPT_PARAMS}", dataclasses.asdict(attempt))

    def end_attempt(self, attempt_id: str, state: str, ended_at: dt.datetime, error: str | None = None) -> None:
        with self._connect() as con:
            con.execute("UPDATE attempts SET state = $state, ended_at = $ended_at, error = $error"
                        " WHERE attempt_id = $attempt_id",
                        {"attempt_id": attempt_id, "state": state, "ended_at": ended_at, "error": error})

    def attempts(self, run_date: dt.date | None = None) -> list[Attempt]:
        if not self._readable() or not self._has_table("attempts"):  # a file older than attempts
            return []
        where, params = ("WHERE run_date = $run_date", {"run_date": run_date}) if run_date else ("", {})
        with self._connect(read_only=True) as con:
            rows = con.execute(f"SELECT {', '.join(ATTEMPTS.names)} FROM attempts {where}"
                               " ORDER BY started_at DESC", params).fetchall()
        return [attempt_of(dict(zip(ATTEMPTS.names, row, strict=True))) for row in rows]

    # -- reads ----------------------------------------------------------------------

    def figures(self, run_date: dt.date, generation: str,
                versions: Mapping[TableKey, int] | None = None) -> dict[str, Figures]:
        result = {}
        with self._connect(read_only=True) as con:
            for key, table in DATA_TABLES.items():
                version = (versions or {}).get(key, checksum.CURRENT)
                rows, total = con.execute(
                    checksum.duckdb_select(key, table.name,
                                           f"WHERE run_date = $run_date AND {generation_of_row('$')}", version),
                    {"run_date": run_date, "generation": generation},
                ).fetchone()
                result[key] = Figures(rows=int(rows), checksum=int(total))
        return result

    def _records(self, where: str = "", params: dict | None = None) -> list[RunRecord]:
        if not self._readable():
            return []
        with self._connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY run_date DESC, started_at DESC", params or {}
            ).fetchall()
        return [record_of(dict(zip(RUNS.names, row, strict=True))) for row in rows]

    def read_forecast(self, run_date: dt.date, where: SlotFilter | None = None,
                      generation: str | None = None) -> pa.Table:
        clauses, params = filter_clauses(run_date, where, "$", generation)
        with self._connect(read_only=True) as con:
            return con.execute(
                f"SELECT {', '.join(FORECAST.names)} FROM forecast WHERE {' AND '.join(clauses)}"
                " ORDER BY signal, program_code, date",
                params,
            ).to_arrow_table()



# a row's values as named parameters, in column order
_PARAMS = ", ".join(f"${name} AS {name}" for name in RUNS.names)
_ATTEMPT_PARAMS = ", ".join(f"${name} AS {name}" for name in ATTEMPTS.names)
