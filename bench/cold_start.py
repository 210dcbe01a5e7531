"""Cold start of the query service: process start of `airtime serve` to its first answers.

    .venv/bin/python -m bench.cold_start [--slots 1000000] [--runs 5]
    .venv/bin/python -m bench.cold_start --sample [--runs 5]

What a scale-to-zero deployment (Cloud Run, deploy/cloudrun/service.yaml) pays when a request
finds no instance: the interpreter and the imports, the gRPC server up, the latest published
run read from the warehouse into the in-memory snapshot, the first call answered. Publishes a
run first, in a scratch AIRTIME_HOME (local profile, DuckDB warehouse): with --sample the
bundled sample through the real pipeline (`airtime run`), otherwise a generated run of
--slots slots (bench/grpc_service.py, build_dataset). Then, --runs times, starts the
console script `airtime serve` on free ports and polls, every 5 ms, from the moment of the
spawn:
- live:    GET /healthz on the metrics port answers 200 (the process is up);
- ready:   GET /readyz answers 200 (first ledger look done: what Cloud Run's startup probe
           waits for before it sends traffic);
- serving: grpc.health.v1 Check of airtime.v1.ForecastService says SERVING (snapshot loaded);
- answer:  a real GetProgramSlots returns the program's slots.
Prints each run and the medians, and the server's peak RSS (VmHWM), for sizing the
instance's memory. The page cache is warm after the first run, as on a host that keeps
the image; the medians are of all runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from bench.grpc_service import build_dataset, free_port

ROOT = Path(__file__).resolve().parents[1]
AIRTIME = Path(sys.executable).with_name("airtime")  # the console script the image runs
SERVICE = pb.DESCRIPTOR.services_by_name["ForecastService"].full_name
POLL_SECONDS = 0.005
TIMEOUT_SECONDS = 120.0
SAMPLE_RUN_DATE = dt.date(2026, 11, 30)  # the bundled sample's delivery day (Makefile, run)
# reconnect at once: grpc's default backoff after a refused connection is about a second,
# which would be measured as start-up time
FAST_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 5), ("grpc.min_reconnect_backoff_ms", 5),
                  ("grpc.max_reconnect_backoff_ms", 20)]


@dataclass
class Start:
    live: float
    ready: float
    serving: float
    answer: float
    slots: int
    peak_rss_mib: float


def publish_sample(home: Path) -> None:
    env = {**os.environ, "AIRTIME_HOME": str(home), "AIRTIME_PROFILE": "local"}
    subprocess.run([str(AIRTIME), "run", "--date", SAMPLE_RUN_DATE.isoformat()], cwd=ROOT, env=env,
                   check=True, capture_output=True)


def a_program_slot(home: Path) -> tuple[str, dt.date]:
    """A (program_code, date) of the published forecast, to ask for."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute("SELECT program_code, date FROM forecast ORDER BY program_code, date LIMIT 1").fetchone()
    if row is None:
        raise SystemExit(f"no forecast row in {home / 'warehouse.duckdb'}")
    return row[0], row[1]


def _http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_start(home: Path, program: str, date: dt.date) -> Start:
    grpc_port, metrics_port = free_port(), free_port()
    env = {**os.environ, "AIRTIME_HOME": str(home), "AIRTIME_PROFILE": "local", "AIRTIME_LOG_LEVEL": "WARNING"}
    start = time.perf_counter()
    process = subprocess.Popen([str(AIRTIME), "serve", "--port", str(grpc_port), "--metrics-port", str(metrics_port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marks: dict[str, float] = {}
    slots = 0
    deadline = start + TIMEOUT_SECONDS
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=FAST_RECONNECT) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            forecast = pb_grpc.ForecastServiceStub(channel)
            while len(marks) < 4:  # live, ready, serving, answer
                if process.poll() is not None:
                    raise SystemExit(f"airtime serve exited {process.returncode}: {process.stderr.read().decode()}")
                if time.perf_counter() > deadline:
                    raise SystemExit(f"no answer within {TIMEOUT_SECONDS:.0f} s; reached {sorted(marks)}")
                if "live" not in marks and _http_ok(metrics_port, "/healthz"):
                    marks["live"] = time.perf_counter()
                if "live" in marks and "ready" not in marks and _http_ok(metrics_port, "/readyz"):
                    marks["ready"] = time.perf_counter()
                if "serving" not in marks:
                    try:
                        reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            marks["serving"] = time.perf_counter()
                    except grpc.RpcError:
                        pass
                if "serving" in marks and "answer" not in marks:
                    response = forecast.GetProgramSlots(
                        pb.GetProgramSlotsRequest(program_code=program, date=date.isoformat()), timeout=5)
                    slots = len(response.slots)
                    marks["answer"] = time.perf_counter()
                if len(marks) < 4:
                    time.sleep(POLL_SECONDS)
        rss = _peak_rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return Start(*(marks[k] - start for k in ("live", "ready", "serving", "answer")), slots, rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n")[0])
    parser.add_argument("--slots", type=int, default=1_000_000, help="slots of the generated run (default 1M)")
    parser.add_argument("--sample", action="store_true", help="publish the bundled sample instead")
    parser.add_argument("--runs", type=int, default=5, help="cold starts to time (default 5)")
    args = parser.parse_args(argv)
    if not AIRTIME.exists():
        raise SystemExit(f"{AIRTIME} is missing: make install")
    home = Path(tempfile.mkdtemp(prefix="airtime-cold-start-"))
    try:
        t0 = time.perf_counter()
        if args.sample:
            publish_sample(home)
            what = "the bundled sample"
        else:
            n, _ = build_dataset(home, args.slots)
            what = f"a generated run of {n:,} slots"
        program, date = a_program_slot(home)
        print(f"published {what} in {time.perf_counter() - t0:.1f} s; asking GetProgramSlots {program} {date}")
        print(f"{'run':>4} {'live s':>8} {'ready s':>8} {'serving s':>10} {'answer s':>9} {'slots':>6} {'peak RSS MiB':>13}")
        starts = []
        for i in range(1, args.runs + 1):
            s = one_start(home, program, date)
            starts.append(s)
            print(f"{i:>4} {s.live:8.3f} {s.ready:8.3f} {s.serving:10.3f} {s.answer:9.3f} {s.slots:>6} {s.peak_rss_mib:13.0f}")
        med = {k: statistics.median(getattr(s, k) for s in starts) for k in ("live", "ready", "serving", "answer",
                                                                            "peak_rss_mib")}
        print(f"median of {len(starts)}: live {med['live']:.3f} s, ready {med['ready']:.3f} s, "
              f"serving {med['serving']:.3f} s, first answer {med['answer']:.3f} s; peak RSS {med['peak_rss_mib']:.0f} MiB")
        if any(s.slots == 0 for s in starts):
            raise SystemExit("a first answer had no slots: the query did not read the published run")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
