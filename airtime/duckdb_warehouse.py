"""The embedded warehouse: one DuckDB file.

DuckDB lets one process write a file, or several read it, not both. Every operation
therefore opens a short-lived connection and retries while another process holds the
lock, so `airtime run` and a polling `airtime serve` can share the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from airtime import checksum, faults
from airtime.errors import StorageError
from airtime.warehouse import (
    FAILED,
    LOADED,
    PUBLISHED,
    TABLE_NAMES,
    TABLES,
    Figures,
    ForecastFilter,
    LedgerReads,
    RunLoad,
    RunRecord,
    filter_clauses,
)

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_audience (
    run_date DATE NOT NULL, signal VARCHAR NOT NULL, program_code VARCHAR NOT NULL,
    exhibition_date DATE NOT NULL, program_start_time TIMESTAMPTZ NOT NULL,
    average_audience DOUBLE NOT NULL);
CREATE TABLE IF NOT EXISTS raw_availability (
    run_date DATE NOT NULL, signal VARCHAR NOT NULL, program_code VARCHAR NOT NULL,
    date DATE NOT NULL, available_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS forecast (
    run_date DATE NOT NULL, signal VARCHAR NOT NULL, program_code VARCHAR NOT NULL,
    date DATE NOT NULL, weekday TINYINT NOT NULL, available_time INTEGER NOT NULL,
    predicted_audience DOUBLE, history_size TINYINT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_date DATE PRIMARY KEY, state VARCHAR NOT NULL, input_digest VARCHAR NOT NULL,
    audience_rows BIGINT, availability_rows BIGINT, forecast_rows BIGINT,
    quarantined_rows BIGINT, audience_checksum BIGINT, availability_checksum BIGINT,
    forecast_checksum BIGINT, started_at TIMESTAMPTZ, loaded_at TIMESTAMPTZ,
    published_at TIMESTAMPTZ, failed_step VARCHAR, error VARCHAR);
"""

RUN_COLUMNS = (
    "run_date, state, input_digest, audience_rows, availability_rows, forecast_rows,"
    " quarantined_rows, audience_checksum, availability_checksum, forecast_checksum,"
    " started_at, loaded_at, published_at, failed_step, error"
)

LOCK_WAIT_SECONDS = 60.0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DuckDBWarehouse(LedgerReads):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.02
        while True:
            try:
                if not read_only:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
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

    # -- writes ---------------------------------------------------------------------

    def load_run(self, load: RunLoad) -> None:
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                params = {"run_date": load.run_date}
                for table in TABLES:
                    name = TABLE_NAMES[table]
                    con.execute(f"DELETE FROM {name} WHERE run_date = $run_date", params)
                    con.execute(
                        f"INSERT INTO {name} BY NAME SELECT CAST($run_date AS DATE) AS run_date, *"
                        f" FROM read_parquet($path)",
                        {**params, "path": str(load.files[table])},
                    )
                faults.crash_point("load-before-commit")
                fig = load.figures
                con.execute(
                    f"INSERT OR REPLACE INTO runs ({RUN_COLUMNS}) VALUES"
                    " ($run_date, $state, $digest, $a_rows, $v_rows, $f_rows, $q_rows,"
                    "  $a_sum, $v_sum, $f_sum, $started, $loaded, NULL, NULL, NULL)",
                    {
                        **params,
                        "state": LOADED,
                        "digest": load.input_digest,
                        "a_rows": fig["audience"].rows,
                        "v_rows": fig["availability"].rows,
                        "f_rows": fig["forecast"].rows,
                        "q_rows": load.quarantined_rows,
                        "a_sum": fig["audience"].checksum,
                        "v_sum": fig["availability"].checksum,
                        "f_sum": fig["forecast"].checksum,
                        "started": load.started_at or _now(),
                        "loaded": _now(),
                    },
                )
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

    def record_failure(self, run_date: dt.date, step: str, message: str) -> None:
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
                    "published": PUBLISHED,
                    "now": _now(),
                    "step": step,
                    "error": message[:2000],
                },
            )

    # -- reads ----------------------------------------------------------------------

    def figures(self, run_date: dt.date) -> dict[str, Figures]:
        result = {}
        with self._connect(read_only=True) as con:
            for table in TABLES:
                rows, total = con.execute(
                    checksum.duckdb_select(
                        table, TABLE_NAMES[table], "WHERE run_date = $run_date"
                    ),
                    {"run_date": run_date},
                ).fetchone()
                result[table] = Figures(rows=int(rows), checksum=int(total))
        return result

    def _records(self, where: str = "", params: dict | None = None) -> list[RunRecord]:
        if not self._readable():
            return []
        with self._connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY run_date DESC", params or {}
            ).fetchall()
        return [_record(row) for row in rows]

    def read_forecast(self, run_date: dt.date, where: ForecastFilter | None = None) -> pa.Table:
        clauses, params = filter_clauses(run_date, where, "$")
        with self._connect(read_only=True) as con:
            return con.execute(
                "SELECT signal, program_code, date, weekday, available_time, predicted_audience,"
                f" history_size FROM forecast WHERE {' AND '.join(clauses)}"
                " ORDER BY signal, program_code, date",
                params,
            ).to_arrow_table()


def _record(row: tuple) -> RunRecord:
    (run_date, state, digest, a_rows, v_rows, f_rows, q_rows, a_sum, v_sum, f_sum,
     started, loaded, published, failed_step, error) = row
    return RunRecord(
        run_date=run_date,
        state=state,
        input_digest=digest,
        audience_rows=a_rows or 0,
        availability_rows=v_rows or 0,
        forecast_rows=f_rows or 0,
        quarantined_rows=q_rows or 0,
        checksums={"audience": a_sum, "availability": v_sum, "forecast": f_sum},
        started_at=started,
        loaded_at=loaded,
        published_at=published,
        failed_step=failed_step,
        error=error,
    )
