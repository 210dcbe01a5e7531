"""`airtime query codes` lists the signals and programs of a published run with their slots,
as the warehouse holds them, in every format, for the latest run or the one --run names."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import NotPublishedError
from tests.integration.grpc_fixtures import forecast_table, publish_run
from tests.pipeline_helpers import cli

OLD, LATEST = dt.date(2026, 11, 29), dt.date(2026, 11, 30)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("codes")
    warehouse = DuckDBWarehouse(tmp / "home" / "warehouse.duckdb")
    publish_run(warehouse, OLD, forecast_table(OLD, programs=("HUCK", "OLD1"), days=3), tmp)
    publish_run(warehouse, LATEST, forecast_table(LATEST), tmp)
    return tmp / "home"


def _slots(home: Path, run: dt.date) -> dict[tuple[str, str], int]:
    """(signal, program) -> slots, counted from the run's rows in the warehouse."""
    rows = DuckDBWarehouse(home / "warehouse.duckdb").read_forecast(run).to_pylist()
    return dict(collections.Counter((r["signal"], r["program_code"]) for r in rows))


def test_codes_lists_every_signal_and_program_of_the_latest_run_with_its_slots(home: Path) -> None:
    done = cli(home, "query", "codes", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(rows[0]) == ["run_date", "signal", "program_code", "slots"]
    assert {(r["signal"], r["program_code"]): int(r["slots"]) for r in rows} == _slots(home, LATEST)
    assert {r["run_date"] for r in rows} == {LATEST.isoformat()}
    assert [(r["signal"], r["program_code"]) for r in rows] == sorted((r["signal"], r["program_code"]) for r in rows)
    assert ("DF", "VALE") not in {(r["signal"], r["program_code"]) for r in rows}  # DF never airs VALE


def test_codes_of_a_pinned_run_are_that_runs(home: Path) -> None:
    done = cli(home, "query", "codes", "--run", OLD.isoformat(), "--format", "json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert {(r["signal"], r["program_code"]): r["slots"] for r in listed} == _slots(home, OLD)
    assert {r["program_code"] for r in listed} == {"HUCK", "OLD1"} and {r["run_date"] for r in listed} == {"2026-11-29"}


def test_codes_table_names_the_run_and_counts(home: Path) -> None:
    done = cli(home, "query", "codes")
    assert done.returncode == 0, done.stderr
    # 3 signals x 4 programs, less DF's VALE: 11 series of 28 days
    assert done.stdout.startswith(f"signals and programs of run {LATEST}: 3 signals, 4 programs, 308 slots\n")
    assert "OLD1" not in done.stdout


def test_codes_of_a_run_that_is_not_published_is_exit_6(home: Path) -> None:
    done = cli(home, "query", "codes", "--run", "2026-11-28")
    assert done.returncode == NotPublishedError.exit_code
    assert "no published run of 2026-11-28 (never run)" in done.stderr
