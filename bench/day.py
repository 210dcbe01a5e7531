"""Benchmark: the whole day as a user runs it, `airtime run` from the two CSV files, beside
the least a day can do (bench/floor.py) and the simplest thing a user would otherwise write:
a pandas script reading the same CSVs.

    python -m bench.day [--rows 10000000] [--repeat 3] [--baseline-repeat 3] [--steps]

Generates the delivery once with `airtime sample-data` (cached under bench/out/), then runs,
side by side and alternating so all see the same background load, each contender as its
own process under `/usr/bin/time -v`:
- floor: bench/floor.py's worker (read the CSVs checking nothing, forecast, write a DuckDB
  file, read it back);
- floor with artifacts: the same with each step's output stored as Parquet and read by the
  next (bench/floor.py's stored worker), the least a day that resumes from storage keeps;
- airtime: `airtime run --date D --source <csv folder>` on a fresh AIRTIME_HOME (local
  profile: artifacts in a folder, the DuckDB warehouse file), step times from its output;
  the command line of this checkout (`python -m cli` in the repository), not whichever
  `airtime` script is installed;
- the next day: the same files on the following date in the home the first day left (what
  every later daily run does: the history merged, the gate comparing with it);
- pandas: bench/baseline.py (vectorised: rolling median per signal/program/weekday and
  merge_asof), the result written to Parquet;
- the same delivery with one bad value appended as its last line: it must be refused
  (exit 3) naming that line, and its time is compared with the good run's.
Prints medians, each day's ratio to the floor and to pandas (the median of the ratios of
each round's neighbouring runs, with their range), issue 25's targets beside them, rows per
second of each step and peak RSS, and checks that airtime's and pandas' forecasts agree.
`--steps` also runs each step alone (`python -m steps.<step>`) once for its peak RSS: what a
pod of that step needs (docs/operations-argo.md, "Pod sizes").
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
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.agreement import agreement
from bench.floor import run_floor
from bench.harness import AIRTIME, OUT, ROOT, count_lines, prepare, run_pandas, timed

RUN_DATE = dt.date(2026, 11, 30)  # the sample's delivery day (history ends 2026-11-28)
# issue 25, at 10M audience rows on the 2-core machine: each day's time over the floor's
TARGET_ROWS = 10_000_000
TARGET_FIRST_OVER_FLOOR = 1.25
TARGET_NEXT_OVER_FLOOR = 1.35
TARGET_RSS_MIB = 1536.0
STEP_LINE = re.compile(r"✓ (\w+)\s+([\d.]+)s")


def prepare_bad(csv: Path) -> tuple[Path, int]:
    """The same delivery with one more audience line whose value breaks a rule (-1: must be
    >= 0), last in the file; and that line's number. Made once beside the delivery."""
    folder = csv.parent / "last-line-bad"
    audience = next(csv.glob("*program_audience*.csv"))
    lines = count_lines(audience) + 1  # the header is line 1
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
    seconds, rss, output = timed([*AIRTIME, "run", "--date", day.isoformat(), "--source", str(csv)], env,
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


def forecasts_agree(scratch: Path) -> dict:
    ours = next((scratch / "airtime" / "artifacts").glob("runs/*/*/preprocess/forecast-*.parquet"))
    return agreement(ours, scratch / "pandas" / "forecast.parquet", "airtime")


def paired(over: list[dict], under: list[dict]) -> dict:
    """over/under of the runs of the same round (neighbours in time, so under the same load):
    their median, min and max."""
    values = [o["seconds"] / u["seconds"] for o, u in zip(over, under, strict=False)]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _ratio(name: str, ratio: dict, target: str = "") -> str:
    return (f"  {name:36} {ratio['median']:5.2f}x  (rounds {ratio['min']:.2f}-{ratio['max']:.2f})"
            + (f"  target {target}" if target else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="audience rows (default 10M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the floor and the airtime runs")
    parser.add_argument("--baseline-repeat", type=int, default=3, help="pandas runs")
    parser.add_argument("--steps", action="store_true", help="also each step alone, for its peak RSS")
    parser.add_argument("--out", type=Path, default=OUT, help="cache and scratch folder")
    args = parser.parse_args(argv)

    csv, facts = prepare(args.rows, args.seed, args.out)
    input_rows = sum(facts["rows"].values())
    print(f"input: {', '.join(f'{n} {r:,} rows' for n, r in sorted(facts['rows'].items()))},"
          f" {facts['bytes'] / 2**20:,.0f} MiB; cached in {csv}")
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; load average"
          f" {os.getloadavg()[0]:.1f} at the start; airtime: {' '.join(AIRTIME)} in {ROOT}")
    scratch = args.out / "scratch-day"
    bad_csv, bad_line = prepare_bad(csv)
    runs: dict[str, list[dict]] = {"floor": [], "stored": [], "airtime": [], "next": [], "pandas": [], "bad": []}
    contenders = (("floor", args.repeat, lambda csv, scratch: run_floor(csv, scratch / "floor")),
                  ("stored", args.repeat, lambda csv, scratch: run_floor(csv, scratch / "floor", stored=True)),
                  ("airtime", args.repeat, run_airtime), ("next", args.repeat, run_next_day),
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
    median = {kind: statistics.median(r["seconds"] for r in found) for kind, found in runs.items()}
    peak = {kind: max(r["max_rss_mib"] for r in found) for kind, found in runs.items()}
    ours, nxt, theirs, floor = median["airtime"], median["next"], median["pandas"], median["floor"]
    step_names = list(runs["airtime"][0]["steps"])
    step_median = {s: statistics.median(r["steps"][s] for r in runs["airtime"]) for s in step_names}
    nxt_steps = {s: statistics.median(r["steps"][s] for r in runs["next"]) for s in step_names}
    print()
    print(f"{'contender':44} {'median s':>9} {'runs':>5} {'peak RSS MiB':>13}")
    print(f"{'floor (read, forecast, write, read back)':44} {floor:9.2f} {len(runs['floor']):5} {peak['floor']:13.0f}")
    print(f"{'floor with artifacts (each step stored)':44} {median['stored']:9.2f} {len(runs['stored']):5}"
          f" {peak['stored']:13.0f}")
    print(f"{'airtime run (first day, from the CSVs)':44} {ours:9.2f} {len(runs['airtime']):5} {peak['airtime']:13.0f}")
    for step in step_names:
        rate = input_rows / step_median[step] if step_median[step] else float("inf")
        print(f"{'  ' + step:44} {step_median[step]:9.2f} {'':5} {'':13} {rate / 1e6:6.1f}M rows/s")
    print(f"{'airtime run, the next day (history merged)':44} {nxt:9.2f} {len(runs['next']):5} {peak['next']:13.0f}")
    print(f"{'':44} " + ", ".join(f"{k} {v:.2f}" for k, v in nxt_steps.items()))
    print(f"{'pandas script (read CSVs, rolling, asof)':44} {theirs:9.2f} {len(runs['pandas']):5} {peak['pandas']:13.0f}")
    print("rows/s: the day's input rows (audience + availability) over the step's median time")
    ratios = {"first_over_floor": paired(runs["airtime"], runs["floor"]),
              "next_over_floor": paired(runs["next"], runs["floor"]),
              "pandas_over_first": paired(runs["pandas"], runs["airtime"]),
              "pandas_over_next": paired(runs["pandas"], runs["next"]),
              "pandas_over_floor": paired(runs["pandas"], runs["floor"]),
              "stored_over_floor": paired(runs["stored"], runs["floor"]),
              "first_over_stored": paired(runs["airtime"], runs["stored"]),
              "next_over_stored": paired(runs["next"], runs["stored"])}
    airtime_rss = max(peak["airtime"], peak["next"])
    print("ratios of each round's runs:")
    print(_ratio("first day / floor", ratios["first_over_floor"], f"<= {TARGET_FIRST_OVER_FLOOR}x"))
    print(_ratio("next day / floor", ratios["next_over_floor"], f"<= {TARGET_NEXT_OVER_FLOOR}x"))
    print(_ratio("pandas / first day", ratios["pandas_over_first"], ">= 1x at 1M rows (small days)"))
    print(_ratio("pandas / next day", ratios["pandas_over_next"]))
    print(_ratio("pandas / floor", ratios["pandas_over_floor"]))
    print(_ratio("floor with artifacts / floor", ratios["stored_over_floor"]))
    print(_ratio("first day / floor with artifacts", ratios["first_over_stored"]))
    print(_ratio("next day / floor with artifacts", ratios["next_over_stored"]))
    print(f"  airtime peak RSS {airtime_rss:.0f} MiB (target <= {TARGET_RSS_MIB:.0f} MiB)")
    met = {"first_over_floor": ratios["first_over_floor"]["median"] <= TARGET_FIRST_OVER_FLOOR,
           "next_over_floor": ratios["next_over_floor"]["median"] <= TARGET_NEXT_OVER_FLOOR,
           "peak_rss": airtime_rss <= TARGET_RSS_MIB}
    print("targets met: " + ", ".join(f"{k} {v}" for k, v in met.items())
          + ("" if args.rows == TARGET_ROWS else f" (at {args.rows:,} rows: the targets are set at {TARGET_ROWS:,})"))
    bad = median["bad"]
    named = all(r["names_line"] for r in runs["bad"])
    print(f"bad value on the last line ({bad_line:,}): refused in {bad:.2f} s, {bad / ours:.2f}x the good run"
          f" (target <= 2x); its line number named in every report: {named}")
    summary = {"input": facts, "runs": runs, "agreement": agree, "ratio": theirs / ours,
               "step_median_seconds": step_median,
               "floor_median_seconds": floor, "floor_peak_rss_mib": peak["floor"],
               "stored_floor_median_seconds": median["stored"],
               "airtime_median_seconds": ours, "pandas_median_seconds": theirs,
               "airtime_peak_rss_mib": peak["airtime"], "pandas_peak_rss_mib": peak["pandas"],
               "next_day_median_seconds": nxt, "next_day_peak_rss_mib": peak["next"], "next_day_steps": nxt_steps,
               "next_day_ratio": theirs / nxt, "ratios": ratios, "targets_met": met,
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
