"""Benchmark: the whole day as a user runs it, `airtime run` from the two CSV files, against
the simplest thing a user would otherwise write: a pandas script reading the same CSVs.

    python -m bench.day [--rows 10000000] [--repeat 3] [--baseline-repeat 3] [--steps]

Generates the delivery once with `airtime sample-data` (cached under bench/out/), then runs,
side by side and alternating so both see the same background load, each contender as its
own process under `/usr/bin/time -v`:
- airtime: `airtime run --date D --source <csv folder>` on a fresh AIRTIME_HOME (local
  profile: artifacts in a folder, the DuckDB warehouse file), step times from its output;
- pandas: bench/baseline.py `read_delivery` + `rolling_forecast` (vectorised: rolling
  median per signal/program/weekday and merge_asof) and the result written to Parquet.
Prints medians, the ratio, rows per second of each step and peak RSS, and checks that the
two forecasts agree. Each round also runs the next day on the same files in the same home
(what every later daily run does: the history merged, the gate comparing with it), and the
same delivery with one bad value appended as its last line: it must be refused (exit 3)
naming that line, and its time is compared with the good run's. `--steps` also runs each
step alone (`python -m steps.<step>`) once for its peak RSS: what a pod of that step needs
(docs/operations-argo.md, "Pod sizes").
Not a test: it asserts nothing about time (see ../shared/notes/benchmarks.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
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
AIRTIME = Path(sys.executable).parent / "airtime"
RUN_DATE = dt.date(2026, 11, 30)  # the sample's delivery day (history ends 2026-11-28)
TARGET_RATIO = 4.0
TARGET_RSS_MIB = 1536.0
STEP_LINE = re.compile(r"✓ (\w+)\s+([\d.]+)s")


def prepare(rows: int, seed: int, out: Path) -> tuple[Path, dict]:
    """The delivery's two CSV files, generated once per rows/seed."""
    folder = out / f"day-{rows}-{seed}"
    stamp = folder / "ready.json"
    if not stamp.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([str(AIRTIME), "sample-data", str(folder / "csv"), "--rows", str(rows), "--seed", str(seed)],
                       check=True, capture_output=True)
        lines = {p.name: _count_lines(p) - 1 for p in (folder / "csv").glob("*.csv")}
        stamp.write_text(json.dumps({"rows": lines, "bytes": sum(p.stat().st_size for p in (folder / "csv").iterdir()),
                                     "generate_seconds": round(time.perf_counter() - started, 1)}))
    return folder / "csv", json.loads(stamp.read_text())


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))


def timed(command: list[str], env: dict[str, str] | None = None, expect: int = 0) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout and stderr) of a command run as its own process."""
    full = [str(TIME), "-v", *command] if TIME.is_file() else command
    started = time.perf_counter()
    done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}, not {expect}:\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-3000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return seconds, int(found.group(1)) / 1024 if found else float("nan"), done.stdout + done.stderr


def prepare_bad(csv: Path) -> tuple[Path, int]:
    """The same delivery with one more audience line whose value breaks a rule (-1: must be
    >= 0), last in the file; and that line's number. Made once beside the delivery."""
    folder = csv.parent / "last-line-bad"
    audience = next(csv.glob("*program_audience*.csv"))
    lines = _count_lines(audience) + 1  # the header is line 1
    if not (folder / "ready").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for source in csv.iterdir():  # copies: a source folder refuses links leading out of it
            shutil.copyfile(source, folder / source.name)
        with (folder / audience.name).open("a") as fh:
            fh.write("SP1,LASTBAD,2026-11-28,2026-11-28T15:01:00.000Z,-1\n")
        (folder / "ready").write_text("")
    return folder, lines


def _airtime_run(home: Path, day: dt.date, csv: Path, expect: int = 0) -> dict:
    """`airtime run` of one day on the local profile in `home`: seconds, peak RSS, step times
    and its output."""
    env = {"AIRTIME_HOME": str(home), "AIRTIME_PROFILE": "local", "AIRTIME_LOG_FORMAT": "text"}
    seconds, rss, output = timed([str(AIRTIME), "run", "--date", day.isoformat(), "--source", str(csv)], env,
                                 expect=expect)
    steps = {name: float(s) for name, s in STEP_LINE.findall(output)}
    return {"seconds": seconds, "max_rss_mib": rss, "steps": steps, "output": output}


def run_bad(csv: Path, scratch: Path, line: int) -> dict:
    """`airtime run` on the delivery with a bad last line: refused (exit 3, InputError), naming the line."""
    run = _airtime_run(_home(scratch, "airtime-bad"), RUN_DATE, csv, expect=3)
    return {"seconds": run["seconds"], "max_rss_mib": run["max_rss_mib"], "names_line": f"line {line}" in run["output"]}


def _home(scratch: Path, name: str) -> Path:
    home = scratch / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    return home


def run_airtime(csv: Path, scratch: Path) -> dict:
    run = _airtime_run(_home(scratch, "airtime"), RUN_DATE, csv)
    return {k: run[k] for k in ("seconds", "max_rss_mib", "steps")}


def run_next_day(csv: Path, scratch: Path) -> dict:
    """The day after, on the home `run_airtime` just left: the same files delivered again (the
    audience file is the whole history), so preprocess merges them into the history the first
    day kept and the gate compares them with it. What every daily run after the first does."""
    run = _airtime_run(scratch / "airtime", RUN_DATE + dt.timedelta(days=1), csv)
    return {k: run[k] for k in ("seconds", "max_rss_mib", "steps")}


def run_steps_alone(csv: Path, scratch: Path) -> dict[str, float]:
    """Peak RSS of each step in its own process, as Argo runs it (one pod a step)."""
    from steps.dag import STEPS

    home = _home(scratch, "steps")
    env = {"AIRTIME_HOME": str(home), "AIRTIME_PROFILE": "local", "AIRTIME_SOURCE": str(csv)}
    return {step.name: timed([sys.executable, "-m", f"steps.{step.name}", "--date", RUN_DATE.isoformat()], env)[1]
            for step in STEPS}


def run_pandas(csv: Path, scratch: Path) -> dict:
    out = scratch / "pandas"
    out.mkdir(parents=True, exist_ok=True)
    seconds, rss, _ = timed([sys.executable, "-m", "bench.day", "--baseline-worker", str(csv), str(out)])
    return {"seconds": seconds, "max_rss_mib": rss}


def baseline_worker(csv: Path, out: Path) -> None:
    from bench.baseline import read_delivery, rolling_forecast

    audience, availability = read_delivery(str(next(csv.glob("*program_audience*.csv"))),
                                           str(next(csv.glob("*inventory_availability*.csv"))))
    rolling_forecast(audience, availability).to_parquet(out / "forecast.parquet", index=False)


def forecasts_agree(scratch: Path) -> dict:
    ours = next((scratch / "airtime" / "artifacts").glob("runs/*/*/preprocess/forecast-*.parquet"))
    return agreement(ours, scratch / "pandas" / "forecast.parquet", "airtime")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="audience rows (default 10M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="airtime runs")
    parser.add_argument("--baseline-repeat", type=int, default=3, help="pandas runs")
    parser.add_argument("--steps", action="store_true", help="also each step alone, for its peak RSS")
    parser.add_argument("--out", type=Path, default=OUT, help="cache and scratch folder")
    parser.add_argument("--baseline-worker", nargs=2, metavar=("CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_worker:
        baseline_worker(Path(args.baseline_worker[0]), Path(args.baseline_worker[1]))
        return 0

    csv, facts = prepare(args.rows, args.seed, args.out)
    input_rows = sum(facts["rows"].values())
    print(f"input: {', '.join(f'{n} {r:,} rows' for n, r in sorted(facts['rows'].items()))},"
          f" {facts['bytes'] / 2**20:,.0f} MiB; cached in {csv}")
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    scratch = args.out / "scratch-day"
    bad_csv, bad_line = prepare_bad(csv)
    runs: dict[str, list[dict]] = {"airtime": [], "next": [], "pandas": [], "bad": []}
    contenders = (("airtime", args.repeat, run_airtime), ("next", args.repeat, run_next_day),
                  ("pandas", args.baseline_repeat, run_pandas),
                  ("bad", args.repeat, lambda _csv, scratch: run_bad(bad_csv, scratch, bad_line)))
    for i in range(max(args.repeat, args.baseline_repeat)):
        for kind, wanted, run in contenders:
            if i < wanted:
                result = run(csv, scratch)
                runs[kind].append(result)
                print(f"  {kind:7} run {i + 1}: {result['seconds']:7.2f} s, peak RSS {result['max_rss_mib']:6.0f} MiB"
                      + ("".join(f", {k} {v:.2f}s" for k, v in result.get("steps", {}).items()))
                      + (f", names line {bad_line}: {result['names_line']}" if kind == "bad" else ""), flush=True)
    agree = forecasts_agree(scratch)
    ours = statistics.median(r["seconds"] for r in runs["airtime"])
    theirs = statistics.median(r["seconds"] for r in runs["pandas"])
    ours_rss = max(r["max_rss_mib"] for r in runs["airtime"])
    theirs_rss = max(r["max_rss_mib"] for r in runs["pandas"])
    step_names = list(runs["airtime"][0]["steps"])
    step_median = {s: statistics.median(r["steps"][s] for r in runs["airtime"]) for s in step_names}
    print()
    print(f"{'contender':44} {'median s':>9} {'runs':>5} {'peak RSS MiB':>13}")
    print(f"{'airtime run (whole day, from the CSVs)':44} {ours:9.2f} {len(runs['airtime']):5} {ours_rss:13.0f}")
    for step in step_names:
        rate = input_rows / step_median[step] if step_median[step] else float("inf")
        print(f"{'  ' + step:44} {step_median[step]:9.2f} {'':5} {'':13} {rate / 1e6:6.1f}M rows/s")
    nxt = statistics.median(r["seconds"] for r in runs["next"])
    nxt_rss = max(r["max_rss_mib"] for r in runs["next"])
    nxt_steps = {s: statistics.median(r["steps"][s] for r in runs["next"]) for s in step_names}
    print(f"{'airtime run, the next day (history merged)':44} {nxt:9.2f} {len(runs['next']):5} {nxt_rss:13.0f}")
    print(f"{'':44} " + ", ".join(f"{k} {v:.2f}" for k, v in nxt_steps.items()))
    print(f"{'pandas script (read CSVs, rolling, asof)':44} {theirs:9.2f} {len(runs['pandas']):5} {theirs_rss:13.0f}")
    ratio = theirs / ours
    print(f"ratio pandas / airtime run: {ratio:.1f}x (target >= {TARGET_RATIO:.0f}x), the next day"
          f" {theirs / nxt:.1f}x; airtime peak RSS {max(ours_rss, nxt_rss):.0f} MiB (target <= {TARGET_RSS_MIB:.0f} MiB)")
    print("rows/s: the day's input rows (audience + availability) over the step's median time")
    bad = statistics.median(r["seconds"] for r in runs["bad"])
    named = all(r["names_line"] for r in runs["bad"])
    print(f"bad value on the last line ({bad_line:,}): refused in {bad:.2f} s, {bad / ours:.2f}x the good run"
          f" (target <= 2x); its line number named in every report: {named}")
    summary = {"input": facts, "runs": runs, "agreement": agree, "ratio": ratio, "step_median_seconds": step_median,
               "airtime_median_seconds": ours, "pandas_median_seconds": theirs,
               "airtime_peak_rss_mib": ours_rss, "pandas_peak_rss_mib": theirs_rss,
               "next_day_median_seconds": nxt, "next_day_peak_rss_mib": nxt_rss, "next_day_steps": nxt_steps,
               "next_day_ratio": theirs / nxt,
               "last_line_bad_seconds": bad, "last_line_bad_ratio": bad / ours, "last_line_named": named}
    if args.steps:
        alone = run_steps_alone(csv, scratch)
        print("peak RSS of each step alone (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in alone.items()))
        summary["step_peak_rss_mib"] = alone
    ok = agree["unmatched"] == 0 and agree["different"] == 0 and agree["max_relative_difference"] < 1e-9 and named
    print(f"outputs agree: {ok} ({agree['airtime_rows']:,} rows each side, {agree['unmatched']} unmatched,"
          f" {agree['different']} different, max relative difference {agree['max_relative_difference']:.1e})")
    (args.out / f"day-result-{args.rows}.json").write_text(json.dumps(summary, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
