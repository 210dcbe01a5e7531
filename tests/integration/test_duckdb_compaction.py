"""The local warehouse holds no deleted rows after prune: airtime/duckdb_warehouse.py, `_compact`.

Small days (a day's availability and forecast below DuckDB's 122,880-row row group) share
row groups; removing one date left deleted rows in groups the next loads appended to, and
every checkpoint after a load rewrote them (bench/month.py: the run of day 30 took 1.17x
day 2's). After expiry or removal, each data table holding deleted rows is rewritten in one
transaction: the other dates' rows, their figures and the tables' constraints unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from airtime.duckdb_warehouse import DuckDBWarehouse, _deleted_rows
from airtime.schema import DATA_TABLES
from airtime.warehouse import Figures
from tests.warehouse_backends import parquet_figures, run_load, write_run_files

DAYS = [dt.date(2026, 12, 1) + dt.timedelta(days=i) for i in range(4)]


def _deleted(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {table.name: _deleted_rows(con, table.name) for table in DATA_TABLES.values()}


def test_expiry_and_removal_leave_no_deleted_row_and_every_other_row_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path)
    files = {}
    for i, day in enumerate(DAYS[:3]):  # 120 rows a day: the three days share one row group
        files[day] = write_run_files(tmp_path / day.isoformat(), day, rows=120)
        warehouse.load_run(run_load(day, files[day], f"g{i}"))
        warehouse.publish(day, f"g{i}", f"g{i}")
    held = write_run_files(tmp_path / "held", DAYS[3], rows=120)
    warehouse.load_run(run_load(DAYS[3], held, "held"))  # loaded, never published

    with duckdb.connect(str(path)) as con:  # what a bare DELETE leaves: the row group keeps them
        con.execute("CREATE TABLE probe AS SELECT * FROM raw_availability")
        con.execute(f"DELETE FROM probe WHERE run_date = DATE '{DAYS[0]}'")
        con.execute("CHECKPOINT")
        assert _deleted_rows(con, "probe") > 0
        con.execute("DROP TABLE probe")

    warehouse.expire_generation(DAYS[0], "g0")
    assert _deleted(path) == {table.name: 0 for table in DATA_TABLES.values()}
    warehouse.remove_generation(DAYS[3], "held")
    assert _deleted(path) == {table.name: 0 for table in DATA_TABLES.values()}

    for i, day in enumerate(DAYS[1:3], start=1):
        assert warehouse.figures(day, f"g{i}") == parquet_figures(files[day])
    assert warehouse.figures(DAYS[0], "g0") == {t: Figures(0, 0) for t in parquet_figures(files[DAYS[0]])}
    with duckdb.connect(str(path)) as con:  # rewritten from the schema: NOT NULL holds
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO raw_availability (run_date, signal, program_code, date, available_time)"
                        " VALUES (DATE '2026-12-09', NULL, 'P', DATE '2026-12-09', 30)")
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%compacted'"
                           ).fetchone() == (0,)
