"""Benchmark: the least work any day can do that still stores and verifies, against pandas.

    python -m bench.floor [--rows 10000000] [--repeat 3]

Why it exists: issue 11 asked for the whole `airtime run` at least 4x faster than the pandas
script of bench/baseline.py; this showed the floor itself is only about 3x faster, and issue 25
moved the targets to it (first day <= 1.25x the floor, next day <= 1.35x). `make bench`
(bench/day.py) times this floor in the same run as the day, alternating; this module alone
times it against pandas only. Each contender its own process under `/usr/bin/time -v`:
- floor: read both CSV files with pyarrow's multi-threaded reader straight into typed
  columns (no rule checked, no line numbers, no duplicate keys looked for), the forecast
  (airtime/forecast.py) on those tables, the three tables written into a fresh DuckDB file in
  one transaction, and read back once for their row counts and checksums (checksum v2, as
  verify does). No artifacts, no manifests, no ledger, no resume, no progress.
- pandas: bench/baseline.py, as in bench/day.py.
Not a test: it asserts nothing about time (see ../shared/notes/benchmarks.md).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.harness import OUT, prepare, run_pandas, timed

TABLES = (("audience", "raw_audience"), ("availability", "raw_availability"), ("forecast", "forecast"))


def _read_audience(csv: Path):  # noqa: ANN202 (pyarrow imported in the worker only)
    """The audience file straight into typed columns, checking nothing."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    codes = pa.dictionary(pa.int32(), pa.string())
    return pacsv.read_csv(
        next(csv.glob("*program_audience*.csv")),
        convert_options=pacsv.ConvertOptions(column_types={
            "signal": codes, "program_code": codes, "exhibition_date": pa.date32(),
            "program_start_time": pa.timestamp("us", tz="UTC"), "average_audience": pa.float64()}))


def _read_availability(csv: Path):  # noqa: ANN202
    import pyarrow as pa
    import pyarrow.csv as pacsv

    codes = pa.dictionary(pa.int32(), pa.string())
    availability = pacsv.read_csv(
        next(csv.glob("*inventory_availability*.csv")), parse_options=pacsv.ParseOptions(delimiter=";"),
        convert_options=pacsv.ConvertOptions(
            column_types={"signal": codes, "program_code": codes, "available_time": pa.int32()},
            timestamp_parsers=["%d/%m/%Y"]))
    return availability.set_column(2, "date", availability.column("date").cast(pa.date32()))


def _open_warehouse(warehouse: Path):  # noqa: ANN202
    import duckdb

    from airtime.duckdb_warehouse import SCHEMA

    con = duckdb.connect(str(warehouse), config={"preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SCHEMA)
    return con


def _read_back(warehouse: Path) -> None:
    """Each table's row count and checksum (checksum v2, as verify reads them)."""
    import duckdb

    from airtime import checksum

    con = duckdb.connect(str(warehouse), read_only=True)
    for key, table in TABLES:
        con.execute(checksum.duckdb_select(key, table)).fetchone()  # type: ignore[arg-type]
    con.close()


def floor_worker(csv: Path, warehouse: Path) -> None:
    from airtime.forecast import forecast_query

    audience, availability = _read_audience(csv), _read_availability(csv)
    con = _open_warehouse(warehouse)
    con.register("audience_csv", audience)
    con.register("availability_csv", availability)
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO raw_audience BY NAME SELECT DATE '2026-11-30' AS run_date, * FROM audience_csv")
    con.execute("INSERT INTO raw_availability BY NAME SELECT DATE '2026-11-30' AS run_date, * FROM availability_csv")
    con.execute("INSERT INTO forecast BY NAME SELECT DATE '2026-11-30' AS run_date, *"
                f" FROM ({forecast_query(con, 'audience_csv', 'availability_csv')})")
    con.execute("COMMIT")
    con.close()
    _read_back(warehouse)


def stored_floor_worker(csv: Path, warehouse: Path) -> None:
    """The floor plus the least a day that resumes from storage must keep: each step's
    output written once and read by the next (the DAG's artifacts), in one process. Typed
    CSV -> Parquet (as ingest writes it: dictionary pages for codes and dates only),
    Parquet -> forecast -> Parquet, the three Parquet files -> the warehouse in one
    transaction, read back. Still no rule, no manifest, no ledger, no history kept."""
    import duckdb
    import pyarrow.parquet as pq

    from airtime.forecast import forecast_query

    store = warehouse.with_suffix(".artifacts")
    store.mkdir(exist_ok=True)
    pq.write_table(_read_audience(csv), store / "audience.parquet", store_schema=False,
                   use_dictionary=["signal", "program_code", "exhibition_date"])
    pq.write_table(_read_availability(csv), store / "availability.parquet", store_schema=False,
                   use_dictionary=["signal", "program_code", "date"])
    files = {name: "'" + str(store / f"{name}.parquet") + "'" for name, _ in TABLES}
    con = duckdb.connect(config={"preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"CREATE VIEW audience_in AS SELECT * FROM read_parquet({files['audience']})")
    con.execute(f"CREATE VIEW availability_in AS SELECT * FROM read_parquet({files['availability']})")
    con.execute(f"COPY ({forecast_query(con, 'audience_in', 'availability_in')}) TO {files['forecast']}"
                " (FORMAT parquet)")
    con.close()
    con = _open_warehouse(warehouse)
    con.execute("BEGIN TRANSACTION")
    for name, table in TABLES:
        con.execute(f"INSERT INTO {table} BY NAME SELECT DATE '2026-11-30' AS run_date, *"
                    f" FROM read_parquet({files[name]})")
    con.execute("COMMIT")
    con.close()
    _read_back(warehouse)


def run_floor(csv: Path, scratch: Path, *, stored: bool = False) -> dict:
    """The floor's worker in its own process; `stored`: the floor with artifacts."""
    scratch.mkdir(parents=True, exist_ok=True)
    warehouse = scratch / "floor.duckdb"
    warehouse.unlink(missing_ok=True)
    shutil.rmtree(warehouse.with_suffix(".artifacts"), ignore_errors=True)
    seconds, rss, _ = timed([sys.executable, "-m", "bench.floor", "--stored-worker" if stored else "--worker",
                             str(csv), str(warehouse)])
    warehouse.unlink(missing_ok=True)
    shutil.rmtree(warehouse.with_suffix(".artifacts"), ignore_errors=True)
    return {"seconds": seconds, "max_rss_mib": rss}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="audience rows (default 10M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT, help="cache and scratch folder")
    parser.add_argument("--worker", nargs=2, metavar=("CSV", "WAREHOUSE"), help=argparse.SUPPRESS)
    parser.add_argument("--stored-worker", nargs=2, metavar=("CSV", "WAREHOUSE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        floor_worker(Path(args.worker[0]), Path(args.worker[1]))
        return 0
    if args.stored_worker:
        stored_floor_worker(Path(args.stored_worker[0]), Path(args.stored_worker[1]))
        return 0
    csv, facts = prepare(args.rows, args.seed, args.out)
    print(f"input: {', '.join(f'{n} {r:,} rows' for n, r in sorted(facts['rows'].items()))}; cached in {csv}")
    scratch = args.out / "scratch-floor"
    runs: dict[str, list[dict]] = {"floor": [], "pandas": []}
    for i in range(args.repeat):
        for kind, run in (("floor", run_floor), ("pandas", run_pandas)):
            result = run(csv, scratch)
            runs[kind].append(result)
            print(f"  {kind:6} run {i + 1}: {result['seconds']:6.2f} s, peak RSS {result['max_rss_mib']:5.0f} MiB",
                  flush=True)
    ours = statistics.median(r["seconds"] for r in runs["floor"])
    theirs = statistics.median(r["seconds"] for r in runs["pandas"])
    print(f"floor (read, forecast, write, read back) median {ours:.2f} s; pandas median {theirs:.2f} s")
    print(f"ratio pandas / floor: {theirs / ours:.1f}x (a whole run can only be slower than its floor)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
