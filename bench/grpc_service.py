"""Query service benchmark: gRPC (snapshot backend) vs a bare grpc.aio echo service (the
ceiling of a Python gRPC server here) and a FastAPI + pandas REST baseline.

    .venv/bin/python -m bench.grpc_service [--slots 1000000] [--clients 8] [--seconds 10] [--repeat 3]

Builds a published run of ~1M slots in a DuckDB warehouse under bench/out/, starts each
server in its own process, and drives them with h2load (HTTP/2 for gRPC, HTTP/1.1 for
REST) from another process, scenarios alternating, repeated; the figures are medians:
- program: one program on one date (its 10 slots), gRPC, the echo service answering the
  very same bytes, and REST;
- program under attack: the same gRPC query while another process holds 100 StreamSlots
  calls it never reads and 100 idle health Watch streams;
- period: a 7-day period's first page of 1,000 slots, gRPC and REST;
- stream: StreamSlots of every slot, one client (slots per second).
Prints throughput, p50/p99 latency, the ratios and whether the targets are met.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.schema import FORECAST
from airtime.v1 import forecast_service_pb2 as pb
from airtime.warehouse import Figures, RunLoad
from grpc_server.client import ForecastClient

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "grpc_service"
RUN_DATE = dt.date(2026, 11, 30)
FIRST = dt.date(2026, 12, 1)
PROGRAM_DATE = dt.date(2027, 3, 15)
PERIOD = (dt.date(2027, 2, 1), dt.date(2027, 2, 7))


def build_dataset(home: Path, slots: int, signals: int = 10, days: int = 365) -> tuple[int, str]:
    """A published run of signals x programs x days slots: (slot count, a program code)."""
    programs = max(1, -(-slots // (signals * days)))  # rounded up: at least `slots`
    n = signals * programs * days
    rng = np.random.default_rng(7)
    sig = np.repeat(np.arange(signals), programs * days)
    prog = np.tile(np.repeat(np.arange(programs), days), signals)
    day = np.tile(np.arange(days), signals * programs)
    dates = np.datetime64(FIRST) + day
    history = rng.integers(0, 5, n).astype(np.int8)
    predicted = np.where(history > 0, rng.uniform(1e4, 3e6, n), np.nan)
    forecast = pa.table({
        "signal": pa.array([f"S{i:02d}" for i in range(signals)]).take(pa.array(sig)),
        "program_code": pa.array([f"P{i:04d}" for i in range(programs)]).take(pa.array(prog)),
        "date": pa.array(dates.astype("datetime64[D]"), pa.date32()),
        "weekday": pa.array(((day + FIRST.weekday()) % 7).astype(np.int8)),
        "available_time": pa.array(rng.integers(2, 301, n).astype(np.int32)),
        "predicted_audience": pa.array(predicted, from_pandas=True),
        "history_size": pa.array(history),
    }, schema=FORECAST.arrow_schema)
    availability = forecast.select(["signal", "program_code", "date", "available_time"])
    audience = pa.table({
        "signal": ["S00"], "program_code": ["P0000"], "exhibition_date": pa.array([RUN_DATE], pa.date32()),
        "program_start_time": pa.array([dt.datetime(2026, 11, 30, 20, tzinfo=dt.UTC)], pa.timestamp("ms", tz="UTC")),
        "average_audience": [1.0],
    })
    files = {}
    for name, table in (("audience", audience), ("availability", availability), ("forecast", forecast)):
        files[name] = home / f"{name}.parquet"
        pq.write_table(table, files[name])
    warehouse = DuckDBWarehouse(home / "warehouse.duckdb")
    figures = {"audience": Figures(1, 0), "availability": Figures(n, 0), "forecast": Figures(n, 0)}
    warehouse.load_run(RunLoad(RUN_DATE, "bench", "bench", files, figures))
    warehouse.publish(RUN_DATE, "bench", "bench")
    return n, f"P{programs // 2:04d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpc_frame(message) -> bytes:  # noqa: ANN001
    body = message.SerializeToString()
    return b"\0" + struct.pack(">I", len(body)) + body


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def h2load(url: str, clients: int, seconds: int, *, body: Path | None = None, h1: bool = False,
           requests: int | None = None) -> Result:
    """Closed-loop load for `seconds` (or exactly `requests` requests, timed as a whole)."""
    with tempfile.TemporaryDirectory() as tmp:
        log_file = Path(tmp) / "requests.log"
        cmd = ["h2load", "-t", "1", "-c", str(clients), "-m", "1", "--log-file", str(log_file)]
        cmd += ["-n", str(requests)] if requests else ["-D", str(seconds), "--warm-up-time", "2"]
        if h1:
            cmd.append("--h1")
        if body is not None:
            cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body)]
        output = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
        rows = [line.split("\t") for line in log_file.read_text().splitlines() if line]
    statuses = np.array([int(r[1]) for r in rows])
    latency_ms = np.array([int(r[2]) for r in rows]) / 1000.0
    errors = int((statuses != 200).sum())
    if "succeeded" not in output:
        raise RuntimeError(output)
    if requests:
        seconds = float(latency_ms.sum() / 1000 / clients)
    return Result(len(rows), float(seconds), float(np.percentile(latency_ms, 50)),
                  float(np.percentile(latency_ms, 99)), errors)


def _python_client(args: tuple) -> list[float]:
    """One closed-loop client (in its own process): latencies in ms after a 1s warm-up."""
    kind, target, path, payload, seconds = args
    latencies, warm_until = [], time.monotonic() + 1
    deadline = warm_until + seconds
    if kind == "grpc":
        channel = grpc.insecure_channel(target)
        call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
        send = lambda: call(payload, timeout=30)  # noqa: E731 - raw bytes both ways
    else:
        import http.client

        conn = http.client.HTTPConnection(target, timeout=30)

        def send() -> None:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
    while (now := time.monotonic()) < deadline:
        send()
        if now >= warm_until:
            latencies.append((time.monotonic() - now) * 1000)
    return latencies


def python_load(kind: str, target: str, path: str, payload: bytes | None, clients: int,
                seconds: int) -> Result:
    """Fallback load generator without h2load: one Python client per process."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        per_client = pool.map(_python_client, [(kind, target, path, payload, seconds)] * clients)
    latency_ms = np.concatenate([np.array(c) for c in per_client])
    return Result(len(latency_ms), float(seconds), float(np.percentile(latency_ms, 50)),
                  float(np.percentile(latency_ms, 99)), 0)


def wait_serving(port: int, deadline: float) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gRPC server never became SERVING")
            time.sleep(0.2)


def wait_http(port: int, deadline: float) -> None:
    import urllib.request

    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/period?start=2027-01-01&end=2027-01-01", timeout=5)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("REST baseline never answered") from None
            time.sleep(0.2)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


ATTACK_SLOW_READERS = 100
ATTACK_WATCHES = 100
HALF_OPEN_STREAMS = 1_100  # the issue-20 attack: 11 connections x 100 calls that never send their message
SERVICE = "/airtime.v1.ForecastService"


def serve_echo(port: int, response: bytes) -> None:
    """A bare grpc.aio service answering GetProgramSlots with fixed bytes: no interceptor,
    no parsing, no logging. What a Python gRPC server can do at best on this machine."""
    import asyncio

    async def answer(_request: bytes, _context) -> bytes:  # noqa: ANN001
        return response

    async def run() -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        handler = grpc.unary_unary_rpc_method_handler(answer)  # bytes in, bytes out
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "airtime.v1.ForecastService", {"GetProgramSlots": handler}),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(run())


def attack(port: int, kind: str, streams: int) -> None:
    """Hold `streams` calls open, 10 per connection, print "ready", wait for stdin to close.
    kind "slow": StreamSlots of every slot, read once and then never; "watch": health
    Watch streams (idle: the status does not change). One kind per process: one Python
    client process with both stalls its own later calls once the unread data fills its
    buffers, a limit of the attacker, not of the server."""
    from airtime.v1 import forecast_service_pb2_grpc as pb_grpc

    # without BDP probing the client's window stays at its initial 64 KiB: a true slow reader
    options = [("grpc.http2.bdp_probe", 0)]
    channels = [grpc.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(max(1, streams // 10))]
    request = pb.StreamSlotsRequest(start_date=FIRST.isoformat(), end_date=(FIRST + dt.timedelta(days=364)).isoformat())
    held = []
    for i in range(streams):
        channel = channels[i % len(channels)]
        if kind == "slow":
            stream = pb_grpc.ForecastServiceStub(channel).StreamSlots(request)
        else:
            stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        next(stream)
        held.append(stream)
    print("ready", flush=True)
    sys.stdin.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python-clients", action="store_true",
                        help="load from Python clients in processes even when h2load is there")
    # the helper processes this benchmark starts
    parser.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--echo-response", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--attack-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--attack-kind", choices=["slow", "watch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_port:
        return serve_echo(args.echo_port, args.echo_response.read_bytes())
    if args.attack_port:
        streams = ATTACK_SLOW_READERS if args.attack_kind == "slow" else ATTACK_WATCHES
        return attack(args.attack_port, args.attack_kind, streams)
    use_h2load = shutil.which("h2load") is not None and not args.python_clients
    if not use_h2load:
        print("h2load is missing (apt-get install nghttp2-client): using Python clients in"
              " separate processes, which take CPU from the servers; no stream or attack figures",
              file=sys.stderr)

    home = OUT / "home"
    shutil.rmtree(OUT, ignore_errors=True)
    home.mkdir(parents=True)
    started = time.monotonic()
    n, args.program = build_dataset(home, args.slots)
    args.slots = n
    print("load average before: {:.2f} {:.2f} {:.2f} (2 cores shared with other work)".format(*os.getloadavg()))
    print(f"dataset: {n:,} slots published in {time.monotonic() - started:.1f}s ({home})")

    grpc_port, rest_port, echo_port = free_port(), free_port(), free_port()
    env = {**os.environ, "AIRTIME_HOME": str(home), "AIRTIME_METRICS_PORT": "0",
           "PYTHONPATH": str(ROOT)}
    echo_response = OUT / "echo_response.bin"
    with open(OUT / "grpc_server.log", "w") as grpc_log, open(OUT / "rest_server.log", "w") as rest_log:
        servers = {
            "grpc": subprocess.Popen([sys.executable, "-m", "grpc_server.server", "--port", str(grpc_port)],
                                     cwd=ROOT, env=env, stderr=grpc_log),
            "rest": subprocess.Popen([sys.executable, "-m", "bench.rest_baseline", "--home", str(home),
                                      "--port", str(rest_port)], cwd=ROOT, env=env, stderr=rest_log),
        }
        try:
            deadline = time.monotonic() + 300
            wait_serving(grpc_port, deadline)
            wait_http(rest_port, deadline)
            echo_response.write_bytes(program_answer(grpc_port, args.program))
            servers["echo"] = subprocess.Popen(
                [sys.executable, "-m", "bench.grpc_service", "--echo-port", str(echo_port),
                 "--echo-response", str(echo_response)], cwd=ROOT, env=env)
            wait_echo(echo_port, deadline)
            results = run_scenarios({"grpc": grpc_port, "rest": rest_port, "echo": echo_port}, args, use_h2load)
            rss = {name: peak_rss_mib(p.pid) for name, p in servers.items()}
        finally:
            for process in servers.values():
                process.terminate()
            for process in servers.values():
                process.wait(30)
    report(results, rss, args, use_h2load)


def program_answer(port: int, program: str) -> bytes:
    """The server's own answer to the benchmark's program query, as bytes on the wire."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"{SERVICE}/GetProgramSlots", request_serializer=None,
                                   response_deserializer=None)
        request = pb.GetProgramSlotsRequest(program_code=program, date=PROGRAM_DATE.isoformat())
        return call(request.SerializeToString(), timeout=30)


def wait_echo(port: int, deadline: float) -> None:
    while True:
        try:
            program_answer(port, "P0000")
            return
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise RuntimeError("echo service never answered") from None
            time.sleep(0.2)


class HalfOpenAttack:
    """One attacker process holding HALF_OPEN_STREAMS calls whose request message never
    comes (11 connections x 100 streams, issue 20), opening them again as the server
    ends them, for the length of a `with`. The server runs without tokens here, so they
    wait in its bounded room of calls without a message rather than being refused at once:
    the harder of the two cases (tests/integration/test_grpc_withholding.py has both)."""

    def __init__(self, port: int) -> None:
        from tests.h2_attacker import AttackProcess

        self._attack = AttackProcess(port, f"{SERVICE}/GetFreshness", connections=11,
                                     streams=HALF_OPEN_STREAMS // 11, forever=True)

    def __enter__(self) -> HalfOpenAttack:
        return self

    def __exit__(self, *exc: object) -> None:
        self._attack.__exit__()


class Attack:
    """The attacker processes (slow readers, idle watchers), for the length of a `with`."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._processes: list[subprocess.Popen] = []

    def __enter__(self) -> Attack:
        for kind in ("watch", "slow"):
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.grpc_service", "--attack-port", str(self._port),
                 "--attack-kind", kind], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self._processes.append(process)
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ready":
                self.__exit__()
                raise RuntimeError(f"the {kind} attacker could not open its streams")
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            process.kill()
            process.wait(30)


def run_scenarios(ports: dict[str, int], args, use_h2load: bool  # noqa: ANN001
                  ) -> dict[tuple[str, str], list[Result]]:
    # the same answers over both protocols, checked once with a real client (h2load only
    # sees HTTP status, not grpc-status)
    with ForecastClient(f"127.0.0.1:{ports['grpc']}") as client:
        _run, program_rows = client.program_slots(args.program, PROGRAM_DATE)
        period_page = client.list_slots(*PERIOD)
        streamed = sum(1 for _ in client.stream_slots(FIRST, FIRST + dt.timedelta(days=364)))
    assert len(program_rows) == 10 and len(period_page.slots) == 1000, (len(program_rows), len(period_page.slots))
    assert streamed == args.slots, (streamed, args.slots)

    bodies = OUT / "bodies"
    bodies.mkdir(exist_ok=True)
    (bodies / "program.bin").write_bytes(grpc_frame(pb.GetProgramSlotsRequest(
        program_code=args.program, date=PROGRAM_DATE.isoformat())))
    (bodies / "period.bin").write_bytes(grpc_frame(pb.ListSlotsRequest(
        start_date=PERIOD[0].isoformat(), end_date=PERIOD[1].isoformat(), page_size=1000)))
    (bodies / "stream.bin").write_bytes(grpc_frame(pb.StreamSlotsRequest(
        start_date=FIRST.isoformat(), end_date=(FIRST + dt.timedelta(days=364)).isoformat())))
    program = dict(path=f"{SERVICE}/GetProgramSlots", body=bodies / "program.bin")
    scenarios = {
        ("program", "echo"): dict(program, server="echo"),
        ("program", "grpc"): dict(program, server="grpc"),
        ("program", "attacked"): dict(program, server="grpc", attack=Attack),
        ("program", "half-open"): dict(program, server="grpc", attack=HalfOpenAttack),
        ("program", "rest"): dict(path=f"/program?program_code={args.program}&date={PROGRAM_DATE}", server="rest"),
        ("period", "grpc"): dict(path=f"{SERVICE}/ListSlots", body=bodies / "period.bin", server="grpc"),
        ("period", "rest"): dict(path=f"/period?start={PERIOD[0]}&end={PERIOD[1]}&page_size=1000", server="rest"),
        ("stream", "grpc"): dict(path=f"{SERVICE}/StreamSlots", body=bodies / "stream.bin", server="grpc",
                                 requests=3, clients=1),
    }
    if not use_h2load:  # Python clients cannot read streams as raw unary calls, nor be attacked fairly
        scenarios = {k: v for k, v in scenarios.items() if k[0] != "stream" and "attack" not in v}
    results: dict[tuple[str, str], list[Result]] = {key: [] for key in scenarios}
    for i in range(args.repeat):
        for key, how in scenarios.items():
            target = f"127.0.0.1:{ports[how['server']]}"
            body = how.get("body")
            with how["attack"](ports["grpc"]) if how.get("attack") else contextlib.nullcontext():
                if use_h2load:
                    result = h2load(f"http://{target}{how['path']}", how.get("clients", args.clients),
                                    args.seconds, body=body, h1=how["server"] == "rest",
                                    requests=how.get("requests"))
                else:
                    payload = body.read_bytes()[5:] if body else None  # without the gRPC frame header
                    result = python_load("rest" if how["server"] == "rest" else "grpc", target, how["path"],
                                         payload, args.clients, args.seconds)
            results[key].append(result)
            print(f"  round {i + 1} {key[0]:8s} {key[1]:9s} {result.rps:9.1f} req/s  p50 {result.p50_ms:8.2f} ms"
                  f"  p99 {result.p99_ms:8.2f} ms  non-200 {result.errors}", flush=True)
    return results


def report(results: dict[tuple[str, str], list[Result]], rss: dict[str, float], args,  # noqa: ANN001
           use_h2load: bool) -> None:
    def median(key: tuple[str, str], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in results[key])

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"\n{args.clients} concurrent clients, {args.seconds}s per run, medians of {args.repeat} runs,"
          f" {args.slots:,} slots")
    print(f"{'query':8s} {'server':9s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for key in results:
        print(f"{key[0]:8s} {key[1]:9s} {median(key, 'rps'):9.1f} {median(key, 'p50_ms'):8.2f}"
              f" {median(key, 'p99_ms'):8.2f}")
    for query in ("program", "period"):
        ratio = median((query, "grpc"), "rps") / median((query, "rest"), "rps")
        p99_ratio = median((query, "rest"), "p99_ms") / median((query, "grpc"), "p99_ms")
        print(f"{query:8s} gRPC/REST throughput x{ratio:.1f}, REST/gRPC p99 x{p99_ratio:.1f}")
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"load generator: {'h2load' if use_h2load else 'Python clients in processes'}")
    print("peak RSS: " + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in rss.items()))
    program_p99 = median(("program", "grpc"), "p99_ms")
    echo_share = median(("program", "grpc"), "rps") / median(("program", "echo"), "rps")
    period_p99 = median(("period", "grpc"), "p99_ms")
    print(f"target program query: >= 50% of the echo's req/s: {echo_share:.0%} {verdict(echo_share >= 0.5)};"
          f" p99 <= 5 ms: {program_p99:.2f} ms {verdict(program_p99 <= 5)}")
    print(f"target period page (1,000 slots): p99 <= 20 ms: {period_p99:.2f} ms {verdict(period_p99 <= 20)}")
    if ("stream", "grpc") in results:
        per_second = args.slots / (median(("stream", "grpc"), "p50_ms") / 1000)
        print(f"target StreamSlots of every slot: >= 1M slots/s: {per_second / 1e6:.2f}M slots/s"
              f" {verdict(per_second >= 1e6)}")
    if ("program", "attacked") in results:
        attacked = median(("program", "attacked"), "p99_ms")
        print(f"target program p99 with {ATTACK_SLOW_READERS} slow readers and {ATTACK_WATCHES} idle Watch"
              f" streams open <= 2x unloaded: {attacked:.2f} ms = x{attacked / program_p99:.2f}"
              f" {verdict(attacked <= 2 * program_p99)}")
    if ("program", "half-open") in results:
        half_open = median(("program", "half-open"), "p99_ms")
        print(f"target program p99 with {HALF_OPEN_STREAMS:,} half-open streams from one attacker <= 2x unloaded:"
              f" {half_open:.2f} ms = x{half_open / program_p99:.2f} {verdict(half_open <= 2 * program_p99)}")


if __name__ == "__main__":
    main()
