"""Benchmark: a month of days in one home, each day a daily delivery as the day before left it.

    python -m bench.month [--rows 10000000] [--days 30] [--retention-days 7] [--warehouse-retention-days 7]

What grows with every run (the merged history, the artifacts, the warehouse, the ledger) shows
only in a sequence of days. The deliveries are airtime/sample_days.py's: each the previous one
shifted by a day (the oldest day of exhibitions gone, a day of new ones, the slots one day
on), about `--rows` audience rows each, written just before its day runs and removed after.
Each day is `airtime run --date D --source <that day's folder>` (this checkout's command line,
local profile) under `/usr/bin/time -v`, with its own TMPDIR, whose size is sampled while it
runs (the steps' scratch); then `airtime prune`, as after every daily job, with
AIRTIME_RETENTION_DAYS=`--retention-days` (7: the default catchup_days, the least the settings
ask retention to keep, so that retention is reached inside the month; 35 is the default) and
AIRTIME_WAREHOUSE_RETENTION_DAYS=`--warehouse-retention-days` (by default the same; 0 keeps every
published date's warehouse rows, the setting's own default). Every day must publish as a normal
next day: a held or failed day ends the benchmark, loudly.

Per day it prints the time, the peak RSS, the peak scratch, the bytes the day added to the
artifact store and to the warehouse, and both totals after prune; then day 30 against day 2
(issue 25's target: within 1.1x in time and memory), the same for the medians of the first
and last three next days, whether the artifact store stays inside what retention keeps, and
how much the warehouse file grows a day once its retention is reached.
A day of the series is one measurement, minutes from the others, on a shared machine: so day 2
and day 30 are also run again at the end, `--pairs` times alternating, each on a fresh copy
of the home as it was before it ran (copied when the month reached it), and their ratio is
quoted pair by pair. The series is plotted to
bench/out/month-<rows>.png (matplotlib, the bench extra) and written to month-result-<rows>.json.
Not a test: it asserts nothing about time (see ../shared/notes/benchmarks.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airtime import sample
from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.sample_days import daily_deliveries
from airtime.warehouse import PUBLISHED
from bench.day import STEP_LINE
from bench.harness import AIRTIME, OUT, ROOT, Measured, count_lines, folder_bytes, measure

FIRST_DAY = dt.date(2026, 11, 1)
TARGET_GROWTH = 1.1  # day 30 over day 2, in time and in peak RSS (issue 25)
MIB = 2**20


def warehouse_bytes(home: Path) -> int:
    """The DuckDB file and its write-ahead log."""
    return sum(folder_bytes(path) if path.is_dir() else (path.stat().st_blocks * 512 if path.exists() else 0)
               for path in (home / "warehouse.duckdb", home / "warehouse.duckdb.wal"))


@dataclass(frozen=True)
class Retention:
    """What `airtime prune` keeps: days of artifacts, and of warehouse rows (0: every date's)."""

    days: int
    warehouse_days: int

    def env(self) -> dict[str, str]:
        return {"AIRTIME_RETENTION_DAYS": str(self.days),
                "AIRTIME_WAREHOUSE_RETENTION_DAYS": str(self.warehouse_days)}

    def __str__(self) -> str:
        rows = f"{self.warehouse_days} days of warehouse rows" if self.warehouse_days else "every warehouse row"
        return f"prune keeps {self.days} days of generations, {rows}"


def run_airtime(day: dt.date, folder: Path, home: Path, tmp: Path, retention: Retention) -> Measured:
    """`airtime run` of the day in `home`, with a fresh TMPDIR whose size is sampled; ends the
    benchmark unless it exits 0 and the day is published."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    run = measure([*AIRTIME, "run", "--date", day.isoformat(), "--source", str(folder)],
                  _env(home, tmp, retention), scratch=tmp)
    record = DuckDBWarehouse(home / "warehouse.duckdb").run_record(day)
    if record is None or record.state != PUBLISHED:
        raise SystemExit(f"{day}: `airtime run` exited 0 but the day is {record.state if record else 'not in the'}"
                         f" ledger, not published:\n{run.output[-3000:]}")
    return run


def _env(home: Path, tmp: Path, retention: Retention) -> dict[str, str]:
    return {"AIRTIME_HOME": str(home), "AIRTIME_PROFILE": "local", "AIRTIME_LOG_FORMAT": "text",
            "TMPDIR": str(tmp), **retention.env()}


def run_day(day: dt.date, folder: Path, home: Path, tmp: Path, retention: Retention) -> dict:
    """One day's `airtime run` then `airtime prune`, with what each left on disk."""
    store_before, warehouse_before = folder_bytes(home / "artifacts"), warehouse_bytes(home)
    run = run_airtime(day, folder, home, tmp, retention)
    store_run, warehouse_run = folder_bytes(home / "artifacts"), warehouse_bytes(home)
    prune = measure([*AIRTIME, "prune"], _env(home, tmp, retention))
    return {"day": day.isoformat(), "seconds": run.seconds, "max_rss_mib": run.max_rss_mib,
            "scratch_peak_mib": run.scratch_peak_mib,
            "steps": {name: float(s) for name, s in STEP_LINE.findall(run.output)},
            "store_added_mib": (store_run - store_before) / MIB,
            "store_mib": folder_bytes(home / "artifacts") / MIB,
            "warehouse_added_mib": (warehouse_run - warehouse_before) / MIB,
            "warehouse_mib": warehouse_bytes(home) / MIB,
            "prune_seconds": prune.seconds,
            "pruned": sum(line.startswith("remove ") for line in prune.output.splitlines())}


@dataclass(frozen=True)
class Kept:
    """A day to run again: its delivery and a copy of the home as it was before it ran."""

    day: dt.date
    folder: Path
    home: Path


def side_by_side(first: Kept, last: Kept, pairs: int, scratch: Path, retention: Retention) -> dict:
    """The first next day and the last day again, alternating, each on a fresh copy of the home
    it ran in: their ratio pair by pair, under the same load (the month's own series is one
    measurement a day, minutes apart)."""
    runs: dict[str, list[Measured]] = {"first": [], "last": []}
    home = scratch / "again"
    for _ in range(pairs):
        for name, kept in (("first", first), ("last", last)):
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(kept.home, home)
            # the copy's pages to disk first, as a home left by yesterday's run is: else the
            # run's first fsync (DuckDB's checkpoint) writes the whole copy, the larger home
            # of the last day the longer (a 190 MiB warehouse: 0.1 s more at 1M rows a day)
            os.sync()
            runs[name].append(run_airtime(kept.day, kept.folder, home, scratch / "tmp", retention))
    shutil.rmtree(home, ignore_errors=True)
    found = {}
    for key in ("seconds", "max_rss_mib"):
        ratios = [getattr(b, key) / getattr(a, key) for a, b in zip(runs["first"], runs["last"], strict=True)]
        found[key] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                      "first": [getattr(r, key) for r in runs["first"]], "last": [getattr(r, key) for r in runs["last"]]}
    return found


def growth(days: list[dict], key: str) -> dict:
    """Day 30 (the last) over day 2 (the first next day), and the median of the last three
    over the median of days 2-4."""
    nxt = days[1:]
    head, tail = nxt[:3], nxt[-3:]
    return {"last_over_day2": nxt[-1][key] / nxt[0][key],
            "tail_over_head": statistics.median(d[key] for d in tail) / statistics.median(d[key] for d in head)}


def plot(days: list[dict], path: Path, title: str, retention: Retention,
         side: dict | None = None) -> Path | None:
    """The series as a PNG. matplotlib is the bench extra's, imported here so the rest of the
    benchmark runs without it."""
    try:
        import matplotlib
    except ImportError:
        print("no plot: matplotlib is not installed (pip install -c constraints.txt -e '.[bench]')")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    number = list(range(1, len(days) + 1))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for ax, key, label in ((axes[0][0], "seconds", "time of airtime run (s)"),
                           (axes[0][1], "max_rss_mib", "peak RSS (MiB)")):
        ax.plot(number, [d[key] for d in days], marker="o")
        if side:
            label += f"; day {len(days)} / day 2 side by side {side[key]['median']:.2f}x"
        if len(days) > 1:
            ax.axhline(days[1][key] * TARGET_GROWTH, color="tab:red", linestyle="--", label=f"{TARGET_GROWTH}x day 2")
            ax.legend(loc="lower right")
        ax.set_title(label)
        ax.set_ylim(bottom=0)
    axes[1][0].plot(number, [d["scratch_peak_mib"] for d in days], marker="o")
    axes[1][0].set_title("peak scratch of the run (MiB, TMPDIR sampled every 0.2 s)")
    axes[1][0].set_ylim(bottom=0)
    ax = axes[1][1]
    ax.plot(number, [d["store_mib"] for d in days], marker="o", label="artifact store after prune")
    ax.plot(number, [d["warehouse_mib"] for d in days], marker="s", label="warehouse file after prune")
    ax.bar(number, [d["store_added_mib"] for d in days], alpha=0.3, label="added to the store by the day")
    ax.set_title(f"stored (MiB); {retention}")
    ax.legend(loc="upper left")
    for ax in axes[1]:
        ax.set_xlabel("day")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.month", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="audience rows of each delivery, about")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--retention-days", type=int, default=7, help="AIRTIME_RETENTION_DAYS of `airtime prune`")
    parser.add_argument("--warehouse-retention-days", type=int, default=None,
                        help="AIRTIME_WAREHOUSE_RETENTION_DAYS of `airtime prune` (default: --retention-days;"
                             " 0 keeps every published date's rows)")
    parser.add_argument("--pairs", type=int, default=3,
                        help="day 2 and the last day run again side by side this many times (0: not)")
    parser.add_argument("--out", type=Path, default=OUT, help="scratch folder, plot and result")
    parser.add_argument("--keep", action="store_true",
                        help="keep the homes before day 2 and the last day, and their deliveries, under --out"
                             " (to run those days again by hand, under a profiler say)")
    args = parser.parse_args(argv)
    if not 2 <= args.days < sample.HISTORY_DAYS:
        parser.error(f"--days must be from 2 to {sample.HISTORY_DAYS - 1}")
    warehouse_days = args.retention_days if args.warehouse_retention_days is None else args.warehouse_retention_days
    if 0 < warehouse_days < args.retention_days:
        parser.error("--warehouse-retention-days must be 0 or at least --retention-days")
    retention = Retention(args.retention_days, warehouse_days)

    root = args.out / f"month-{args.rows}-{args.seed}"
    shutil.rmtree(root, ignore_errors=True)
    home, tmp = root / "home", root / "tmp"
    # one draw of the whole month's history; each delivery keeps the days a single one would
    history_days = sample.HISTORY_DAYS - (args.days - 1)
    draw_rows = round(args.rows * sample.HISTORY_DAYS / history_days)
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; load average"
          f" {os.getloadavg()[0]:.1f} at the start; airtime: {' '.join(AIRTIME)} in {ROOT}")
    print(f"{args.days} days from {FIRST_DAY} in {home}: each delivery {history_days} days of exhibitions"
          f" (~{args.rows:,} rows), the previous one shifted by a day; {retention}")
    deliveries = daily_deliveries(root / "source", FIRST_DAY, args.days, rows=draw_rows, seed=args.seed,
                                  history_days=history_days)
    print(f"{'day':>3} {'date':10} {'rows':>11} {'s':>7} {'RSS MiB':>8} {'scratch':>8} {'store +':>8}"
          f" {'store':>8} {'wh +':>7} {'wh':>8} {'prune s':>7}")
    days: list[dict] = []
    kept: dict[int, Kept] = {}
    started = time.perf_counter()
    generate_seconds = 0.0
    while True:
        ready = time.perf_counter()
        delivered = next(deliveries, None)
        generate_seconds += time.perf_counter() - ready
        if delivered is None:
            break
        day, folder = delivered
        rows = count_lines(folder / sample.AUDIENCE_FILE) - 1
        number = len(days) + 1
        if args.pairs and args.days > 2 and number in (2, args.days):  # run again at the end
            kept[number] = Kept(day, folder, root / f"home-before-day-{number}")
            shutil.copytree(home, kept[number].home)
        result = {"rows": rows, **run_day(day, folder, home, tmp, retention)}
        if number not in kept:
            shutil.rmtree(folder)
        days.append(result)
        print(f"{len(days):3} {result['day']:10} {rows:11,} {result['seconds']:7.2f} {result['max_rss_mib']:8.0f}"
              f" {result['scratch_peak_mib']:8.1f} {result['store_added_mib']:8.1f} {result['store_mib']:8.1f}"
              f" {result['warehouse_added_mib']:7.1f} {result['warehouse_mib']:8.1f} {result['prune_seconds']:7.2f}",
              flush=True)
    print(f"(MiB; store + and wh +: what the day's run added; store and wh: the totals after prune;"
          f" deliveries generated in {generate_seconds:.0f} s, the month took {time.perf_counter() - started:.0f} s)")

    summary: dict = {"rows": args.rows, "days": days, "retention_days": args.retention_days,
                     "warehouse_retention_days": warehouse_days, "history_days": history_days}
    if len(days) > 2:
        last = len(days)
        for key, name in (("seconds", "time"), ("max_rss_mib", "peak RSS")):
            found = summary[f"{key}_growth"] = growth(days, key)
            print(f"{name}: day {last} / day 2 {found['last_over_day2']:.2f}x (target <= {TARGET_GROWTH}x);"
                  f" median of days {max(2, last - 2)}-{last} / median of days 2-{min(4, last)}"
                  f" {found['tail_over_head']:.2f}x")
    side = None
    if kept:
        side = summary["side_by_side"] = side_by_side(kept[2], kept[args.days], args.pairs, root, retention)
        for key, name, places in (("seconds", "time", 1), ("max_rss_mib", "peak RSS", 0)):
            found = side[key]
            print(f"{name}, day {args.days} / day 2 run again side by side, {args.pairs} pairs: {found['median']:.2f}x"
                  f" (pairs {found['min']:.2f}-{found['max']:.2f}; target <= {TARGET_GROWTH}x); day 2 "
                  + ", ".join(f"{v:.{places}f}" for v in found["first"]) + f"; day {args.days} "
                  + ", ".join(f"{v:.{places}f}" for v in found["last"]))
    if args.keep:
        for number, copy in kept.items():
            print(f"kept: day {number} ({copy.day}), home before it {copy.home}, its delivery {copy.folder}")
    else:
        for copy in kept.values():
            shutil.rmtree(copy.home)
        shutil.rmtree(root / "source", ignore_errors=True)
    # what prune keeps: the published generations of retention_days + 1 dates, the one the
    # oldest of them builds on, and the day's own
    bound = (args.retention_days + 2) * max(d["store_added_mib"] for d in days)
    inside = all(d["store_mib"] <= bound for d in days)
    settled = days[args.retention_days + 2:]
    net = statistics.mean(b["store_mib"] - a["store_mib"] for a, b in zip(settled, settled[1:], strict=False)) \
        if len(settled) > 1 else float("nan")
    print(f"artifact store: each day adds {statistics.median(d['store_added_mib'] for d in days):.1f} MiB (median);"
          f" after prune at most {max(d['store_mib'] for d in days):.1f} MiB, inside {args.retention_days} + 2"
          f" generations of the largest day ({bound:.1f} MiB): {inside}"
          + (f"; once retention is reached it grows {net:.1f} MiB a day" if len(settled) > 1 else ""))
    wh = [d["warehouse_added_mib"] for d in days[1:]]
    line = (f"warehouse: each next day's run adds {statistics.median(wh) if wh else float('nan'):.1f} MiB (median),"
            f" {days[-1]['warehouse_mib']:.1f} MiB after {len(days)} days")
    wh_net = float("nan")
    if warehouse_days:
        # prune keeps the rows of warehouse_days + 1 dates and of the one the oldest builds on
        wh_settled = days[warehouse_days + 2:]
        if len(wh_settled) > 1:
            wh_net = statistics.mean(b["warehouse_mib"] - a["warehouse_mib"]
                                     for a, b in zip(wh_settled, wh_settled[1:], strict=False))
            line += (f"; from day {warehouse_days + 3} on, once its retention is reached, it grows"
                     f" {wh_net:.1f} MiB a day (deleted rows' blocks reused, the file never shrinks)")
    else:
        line += ": prune keeps every published date's rows (AIRTIME_WAREHOUSE_RETENTION_DAYS=0), so it grows"
    print(line)
    summary |= {"store_bound_mib": bound, "store_inside_bound": inside, "store_net_mib_per_day_after_retention": net,
                "warehouse_net_mib_per_day_after_retention": wh_net}
    picture = plot(days, args.out / f"month-{args.rows}.png",
                   f"{len(days)} days of ~{args.rows:,} audience rows, one home (python -m bench.month)",
                   retention, side)
    if picture:
        print(f"plot: {picture}")
    (args.out / f"month-result-{args.rows}.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
