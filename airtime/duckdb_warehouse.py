"""The embedded warehouse: one DuckDB file.

DuckDB lets one process write a file, or several read it, not both. Every operation
therefore opens a short-lived connection and retries while another process holds the
lock, so `airtime run` and a polling `airtime serve` can share the file.
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
from airtime.errors import IntegrityError, StorageError
from airtime.schema import ATTEMPTS, DATA_TABLES, FORECAST, RUNS, TABLES, TableKey
from airtime.warehouse import (
    FAILED,
    LOADED,
    PUBLISHED,
    Attempt,
    Figures,
    LedgerReads,
    RunLoad,
    RunRecord,
    SlotFilter,
    attempt_of,
    filter_clauses,
    ledger_row,
    record_of,
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

    @contextlib.contextmanager
    def _connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
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
                                             "preserve_insertion_order": False})
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
            if not read_only:
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
                params = {"run_date": load.run_date}
                for key, table in DATA_TABLES.items():
                    con.execute(f"DELETE FROM {table.name} WHERE run_date = $run_date", params)
                    con.execute(
                        f"INSERT INTO {table.name} BY NAME SELECT CAST($run_date AS DATE) AS run_date, *"
                        f" FROM read_parquet($path)",
                        {**params, "path": str(load.files[key])},
                    )
                faults.crash_point("load-before-commit")
                con.execute(f"INSERT OR REPLACE INTO runs BY NAME SELECT {_PARAMS}", ledger_row(load, _now()))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def publish(self, run_date: dt.date, input_digest: str) -> None:
        with self._connect() as con:
            updated = con.execute(
                "UPDATE runs SET state = $published, published_at = $now, failed_step = NULL,"
                " error = NULL WHERE run_date = $run_date AND input_digest = $digest"
                " AND state IN ($loaded, $published) RETURNING run_date",
                {
                    "published": PUBLISHED,
                    "loaded": LOADED,
                    "now": _now(),
                    "run_date": run_date,
                    "digest": input_digest,
                },
            ).fetchall()
        if not updated:
            raise StorageError(
                f"cannot publish run {run_date}: the ledger has no loaded run with digest "
                f"{input_digest[:12]} (loaded by another attempt?)"
            )

    def record_failure(self, run_date: dt.date, step: str, message: str, *, demote: bool = False) -> None:
        with self._connect() as con:
            con.execute(
                f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ($run_date, $failed, '', NULL, NULL,"
                " NULL, NULL, NULL, NULL, NULL, $now, NULL, NULL, $step, $error)"
                " ON CONFLICT (run_date) DO UPDATE SET failed_step = excluded.failed_step,"
                " error = excluded.error,"
                " state = CASE WHEN runs.state = $published THEN runs.state ELSE $failed END",
                {
                    "run_date": run_date,
                    "failed": FAILED,
                    # the state a failure leaves alone: none when demoting
                    "published": "" if demote else PUBLISHED,
                    "now": _now(),
                    "step": step,
                    "error": message[:2000],
                },
            )

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

    def figures(self, run_date: dt.date, versions: Mapping[TableKey, int] | None = None) -> dict[str, Figures]:
        result = {}
        with self._connect(read_only=True) as con:
            for key, table in DATA_TABLES.items():
                version = (versions or {}).get(key, checksum.CURRENT)
                rows, total = con.execute(
                    checksum.duckdb_select(key, table.name, "WHERE run_date = $run_date", version),
                    {"run_date": run_date},
                ).fetchone()
                result[key] = Figures(rows=int(rows), checksum=int(total))
        return result

    def _records(self, where: str = "", params: dict | None = None) -> list[RunRecord]:
        if not self._readable():
            return []
        with self._connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY run_date DESC", params or {}
            ).fetchall()
        return [record_of(dict(zip(RUNS.names, row, strict=True))) for row in rows]

    def read_forecast(self, run_date: dt.date, where: SlotFilter | None = None) -> pa.Table:
        clauses, params = filter_clauses(run_date, where, "$")
        with self._connect(read_only=True) as con:
            return con.execute(
                f"SELECT {', '.join(FORECAST.names)} FROM forecast WHERE {' AND '.join(clauses)}"
                " ORDER BY signal, program_code, date",
                params,
            ).to_arrow_table()



# a row's values as named parameters, in column order
_PARAMS = ", ".join(f"${name} AS {name}" for name in RUNS.names)
_ATTEMPT_PARAMS = ", ".join(f"${name} AS {name}" for name in ATTEMPTS.names)
