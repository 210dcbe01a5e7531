"""Benchmark: the preprocess step's DuckDB forecast against a pandas groupby-apply baseline.

    python -m bench.preprocess [--rows 10000000] [--repeat 3] [--baseline-repeat 1]

Generates the synthetic delivery (cached under bench/out/), types it to Parquet as ingest
does, then runs, side by side and alternating, each contender in its own process:
- duckdb: what steps/preprocess.py runs: typed Parquet -> merged history Parquet ->
  forecast Parquet, with the SQL of airtime/forecast.py;
- pandas: bench/baseline.py, typed Parquet -> forecast Parquet.
Each process times its own work (imports excluded) and its peak RSS is taken from
`/usr/bin/time -v` (or getrusage in the worker when that is missing). Medians of the
repetitions are printed with the ratio, and the two forecasts are checked to agree.
Not a test: it asserts nothing about time (see ../shared/notes/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.agreement import agreement

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TIME = Path("/usr/bin/time")
TARGET_RATIO = 10.0
TARGET_RSS_MIB = 2048.0


# ---- the two contenders, each run in a fresh process by `--worker` ----------------------
# Each imports its own libraries inside its function, so a worker's peak RSS holds only
# what its contender loads.


def run_duckdb(audience: Path, availability: Path, out: Path) -> dict:
    import duckdb

    from airtime.forecast import forecast_query, merged_history_sql

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET temp_directory = '{out / 'spill'}'")
    history, forecast = out / "history.parquet", out / "forecast.parquet"
    sql = merged_history_sql(None, f"read_parquet('{audience}')")
    con.execute(
        f"COPY ({sql} ORDER BY signal, program_code, exhibition_date) TO '{history}' (FORMAT parquet)",
        {"run_date": "2100-01-01"},
    )
    merged = time.perf_counter()
    con.execute(
        f"COPY ({forecast_query(con, f'read_parquet({str(history)!r})', f'read_parquet({str(availability)!r})')})"
        f" TO '{forecast}' (FORMAT parquet)"
    )
    done = time.perf_counter()
    return {"seconds": done - started, "forecast_seconds": done - merged}


def run_pandas(audience: Path, availability: Path, out: Path) -> dict:
    import pandas as pd

    from bench.baseline import baseline_forecast

    started = time.perf_counter()
    history = pd.read_parquet(audience, columns=["signal", "program_code", "exhibition_date", "average_audience"])
    slots = pd.read_parquet(availability)
    # Parquet DATE columns arrive as Python dates; the baseline works on datetime64
    history["exhibition_date"] = pd.to_datetime(history["exhibition_date"])
    slots["date"] = pd.to_datetime(slots["date"])
    baseline_forecast(history, slots).to_parquet(out / "forecast.parquet", index=False)
    return {"seconds": time.perf_counter() - started}


WORKERS = {"duckdb": run_duckdb, "pandas": run_pandas}


def worker(kind: str, audience: Path, availability: Path, out: Path) -> None:
    import resource

    out.mkdir(parents=True, exist_ok=True)
    result = WORKERS[kind](audience, availability, out)
    result["self_max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


# ---- the driver -----------------------------------------------------------------------


def prepare(rows: int, seed: int, out: Path) -> tuple[Path, Path, dict]:
    """The delivery as CSV (generated once per rows/seed) and as typed Parquet, as ingest
    writes it (same column types)."""
    import duckdb

    from airtime import sample

    folder = out / f"data-{rows}-{seed}"
    stamp = folder / "ready.json"
    if not stamp.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        csv_audience, csv_availability = sample.generate(folder / "csv", rows=rows, seed=seed)
        generated = time.perf_counter() - started
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY (SELECT * FROM read_csv('{csv_audience}', header=true, delim=',', columns={{"
            "'signal': 'VARCHAR', 'program_code': 'VARCHAR', 'exhibition_date': 'DATE',"
            "'program_start_time': 'TIMESTAMPTZ', 'average_audience': 'DOUBLE'}))"
            f" TO '{folder / 'audience.parquet'}' (FORMAT parquet)"
        )
        con.execute(
            f"COPY (SELECT * FROM read_csv('{csv_availability}', header=true, delim=';', dateformat='%d/%m/%Y',"
            " columns={'signal': 'VARCHAR', 'program_code': 'VARCHAR', 'date': 'DATE', 'available_time': 'INTEGER'}))"
            f" TO '{folder / 'availability.parquet'}' (FORMAT parquet)"
        )
        facts = con.execute(
            f"SELECT (SELECT count(*) FROM '{folder / 'audience.parquet'}'),"
            f" (SELECT count(*) FROM '{folder / 'availability.parquet'}'),"
            f" (SELECT count(*) FROM (SELECT DISTINCT signal, program_code FROM '{folder / 'audience.parquet'}'))"
        ).fetchone()
        con.close()
        stamp.write_text(
            json.dumps(
                {"audience_rows": facts[0], "availability_rows": facts[1], "pairs": facts[2],
                 "generate_seconds": round(generated, 1)}
            )
        )
    return folder / "audience.parquet", folder / "availability.parquet", json.loads(stamp.read_text())


def measure(kind: str, audience: Path, availability: Path, out: Path) -> dict:
    command = [sys.executable, "-m", "bench.preprocess", "--worker", kind,
               str(audience), str(availability), str(out)]
    timed = TIME.is_file()
    if timed:
        command = [str(TIME), "-v", *command]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr) if timed else None
    kib = int(found.group(1)) if found else result["self_max_rss_kib"]
    result["max_rss_mib"] = kib / 1024
    result["rss_source"] = "/usr/bin/time -v" if found else "getrusage(RUSAGE_SELF)"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="audience rows (default 10M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="DuckDB repetitions")
    parser.add_argument("--baseline-repeat", type=int, default=1,
                        help="pandas repetitions (slow: one at 10M takes minutes)")
    parser.add_argument("--out", type=Path, default=OUT, help="cache and scratch folder")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "AUDIENCE", "AVAILABILITY", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, audience, availability, out = args.worker
        worker(kind, Path(audience), Path(availability), Path(out))
        return 0

    audience, availability, facts = prepare(args.rows, args.seed, args.out)
    print(f"input: {facts['audience_rows']:,} audience rows ({facts['pairs']:,} signal/program pairs),"
          f" {facts['availability_rows']:,} availability rows; cached in {audience.parent}")
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    scratch = args.out / "scratch"
    runs: dict[str, list[dict]] = {"duckdb": [], "pandas": []}
    # Alternate the contenders so both see the same background load on a shared machine.
    for i in range(max(args.repeat, args.baseline_repeat)):
        for kind, wanted in (("duckdb", args.repeat), ("pandas", args.baseline_repeat)):
            if i < wanted:
                result = measure(kind, audience, availability, scratch / kind)
                runs[kind].append(result)
                print(f"  {kind:6} run {i + 1}: {result['seconds']:8.2f} s, peak RSS {result['max_rss_mib']:7.0f} MiB",
                      flush=True)
    agree = agreement(scratch / "duckdb" / "forecast.parquet", scratch / "pandas" / "forecast.parquet", "duckdb")

    duck = statistics.median(r["seconds"] for r in runs["duckdb"])
    duck_forecast = statistics.median(r["forecast_seconds"] for r in runs["duckdb"])
    panda = statistics.median(r["seconds"] for r in runs["pandas"])
    duck_rss = max(r["max_rss_mib"] for r in runs["duckdb"])
    panda_rss = max(r["max_rss_mib"] for r in runs["pandas"])
    ratio = panda / duck
    print()
    print(f"{'contender':44} {'median s':>9} {'runs':>5} {'peak RSS MiB':>13}")
    print(f"{'duckdb preprocess (history + forecast)':44} {duck:9.2f} {len(runs['duckdb']):5} {duck_rss:13.0f}")
    print(f"{'  of which forecast':44} {duck_forecast:9.2f}")
    print(f"{'pandas groupby-apply baseline (forecast)':44} {panda:9.2f} {len(runs['pandas']):5} {panda_rss:13.0f}")
    print(f"ratio baseline / duckdb preprocess: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x);"
          f" baseline / duckdb forecast only: {panda / duck_forecast:.1f}x")
    print(f"peak RSS from {runs['duckdb'][0]['rss_source']}; duckdb {duck_rss:.0f} MiB"
          f" (target < {TARGET_RSS_MIB:.0f} MiB)")
    print(f"outputs agree: {agree['unmatched'] == 0 and agree['different'] == 0} ({agree['duckdb_rows']:,} rows each side,"
          f" {agree['unmatched']} unmatched, {agree['different']} different,"
          f" max relative difference of predictions {agree['max_relative_difference']:.1e})")
    summary = {"input": facts, "runs": runs, "agreement": agree, "ratio": ratio,
               "ratio_forecast_only": panda / duck_forecast,
               "duckdb_median_seconds": duck, "pandas_median_seconds": panda,
               "duckdb_peak_rss_mib": duck_rss, "pandas_peak_rss_mib": panda_rss}
    (args.out / f"result-{args.rows}.json").write_text(json.dumps(summary, indent=2))
    return 0 if agree["unmatched"] == 0 and agree["different"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
