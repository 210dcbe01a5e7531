"""Helpers for pipeline tests: sources, settings, subprocess runs, warehouse dumps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from airtime import sample
from airtime.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RUNS_STABLE_COLUMNS = (
    "run_date, state, input_digest, audience_rows, availability_rows, forecast_rows, quarantined_rows,"
    " audience_checksum, availability_checksum, forecast_checksum, failed_step, generation"
)


def make_source(folder: Path, rows: int = 3000, seed: int = 3) -> Path:
    sample.generate(folder, rows=rows, seed=seed)
    return folder


def local_settings(home: Path, source: Path | None = None, **extra) -> Settings:
    return Settings(profile="local", home=home, source=str(source) if source else None, **extra)


def cli(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    """`airtime ...` in a fresh process, as an operator (or a crash) would see it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    full_env |= {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)} | (env or {})
    return subprocess.run([sys.executable, "-m", "cli", *args], env=full_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def dump_warehouse(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows, sorted; the ledger without its wall-clock times."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {name: con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
                  for name in ("raw_audience", "raw_availability", "forecast")}
        tables["runs"] = con.execute(f"SELECT {RUNS_STABLE_COLUMNS} FROM runs ORDER BY run_date, generation").fetchall()
        return tables
    finally:
        con.close()


def generation_dir(home: Path, day, state: str = "published") -> Path:
    """The artifact folder of the date's generation in `state` (its newest one), by the ledger."""
    from airtime.duckdb_warehouse import DuckDBWarehouse
    from airtime.manifest import run_prefix

    records = [r for r in DuckDBWarehouse(Path(home) / "warehouse.duckdb").generations(day) if r.state == state]
    assert records, f"no {state} generation of {day}"
    return Path(home) / "artifacts" / run_prefix(day, records[0].generation)


def history_relation(artifacts: Path, preprocess_manifest, run_date) -> str:
    """The whole history a preprocess manifest records, as a DuckDB relation over the
    files in the local artifact folder `artifacts` (the rows kept from before, and the
    day's audience by reference)."""
    from airtime.artifacts import parquet_rel
    from steps.preprocess import Forecasted
    from steps.scaffold import from_manifest

    forecasted = from_manifest(Forecasted, preprocess_manifest)
    assert forecasted is not None
    return forecasted.history_relation(run_date, lambda out: parquet_rel(Path(artifacts) / out.key))
