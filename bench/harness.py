"""What every whole-process benchmark shares: the delivery it runs on, the command that runs
this checkout's `airtime`, and one process timed from outside (seconds, peak RSS from
`/usr/bin/time -v`, and on request the peak size of a scratch folder while it ran)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
TIME = Path("/usr/bin/time")
# This checkout's command line (pyproject's `airtime = "cli.main:main"`), run with cwd = ROOT
# so its packages come first on sys.path: the `airtime` script beside sys.executable may be an
# editable install of another checkout.
AIRTIME = [sys.executable, "-m", "cli"]
SCRATCH_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Measured:
    seconds: float
    max_rss_mib: float  # the largest single process (GNU time's "Maximum resident set size")
    output: str  # stdout and stderr
    scratch_peak_mib: float | None = None  # sampled every SCRATCH_POLL_SECONDS: a shorter peak is missed


def measure(command: list[str], env: dict[str, str] | None = None, expect: int = 0,
            scratch: Path | None = None) -> Measured:
    """One command as its own process, in ROOT; exits the benchmark, with the command's
    output, when it does not exit `expect`."""
    full = [str(TIME), "-v", *command] if TIME.is_file() else command
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(SCRATCH_POLL_SECONDS):
            peak[0] = max(peak[0], folder_bytes(scratch))

    watcher = threading.Thread(target=watch, daemon=True) if scratch is not None else None
    started = time.perf_counter()
    if watcher:
        watcher.start()
    try:
        finished = subprocess.run(full, cwd=ROOT, capture_output=True, text=True,
                                  env={**os.environ, **(env or {})})
    finally:
        done.set()
    seconds = time.perf_counter() - started
    if watcher:
        watcher.join()
    if finished.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {finished.returncode}, not {expect}:\n"
                         f"{finished.stdout[-2000:]}\n{finished.stderr[-3000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", finished.stderr)
    return Measured(seconds, int(found.group(1)) / 1024 if found else float("nan"),
                    finished.stdout + finished.stderr, peak[0] / 2**20 if watcher else None)


def timed(command: list[str], env: dict[str, str] | None = None, expect: int = 0) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB, stdout and stderr) of a command run as its own process."""
    run = measure(command, env, expect)
    return run.seconds, run.max_rss_mib, run.output


def folder_bytes(folder: Path | None) -> int:
    """Disk space the files under `folder` take (allocated blocks); 0 when it is absent.
    Files may vanish while it walks: a step removes its scratch as it goes."""
    total = 0
    if folder is None:
        return total
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def prepare(rows: int, seed: int, out: Path) -> tuple[Path, dict]:
    """The delivery's two CSV files (`airtime sample-data`), generated once per rows/seed."""
    folder = out / f"day-{rows}-{seed}"
    stamp = folder / "ready.json"
    if not stamp.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([*AIRTIME, "sample-data", str(folder / "csv"), "--rows", str(rows), "--seed", str(seed)],
                       cwd=ROOT, check=True, capture_output=True)
        lines = {p.name: count_lines(p) - 1 for p in (folder / "csv").glob("*.csv")}
        stamp.write_text(json.dumps({"rows": lines, "bytes": sum(p.stat().st_size for p in (folder / "csv").iterdir()),
                                     "generate_seconds": round(time.perf_counter() - started, 1)}))
    return folder / "csv", json.loads(stamp.read_text())


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))


def run_pandas(csv: Path, scratch: Path) -> dict:
    """bench/baseline.py's script on the delivery, its forecast written to scratch/pandas."""
    out = scratch / "pandas"
    out.mkdir(parents=True, exist_ok=True)
    seconds, rss, _ = timed([sys.executable, "-m", "bench.baseline", str(csv), str(out)])
    return {"seconds": seconds, "max_rss_mib": rss}
