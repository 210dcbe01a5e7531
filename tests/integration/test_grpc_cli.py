"""`airtime query ... --server` prints exactly what the local query prints, and fails with
the same exit codes, against an `airtime serve` process."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.grpc_fixtures import ROOT, forecast_table, publish_run, warehouse  # noqa: F401

RUN = dt.date(2026, 11, 30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(warehouse, tmp_path: Path):  # noqa: ANN001, ANN201, F811
    publish_run(warehouse, RUN, forecast_table(RUN), tmp_path)
    env = {**os.environ, "AIRTIME_HOME": str(warehouse.path.parent), "AIRTIME_METRICS_PORT": "0",
           "PYTHONPATH": str(ROOT)}
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port)],
                               cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                        break
                except grpc.RpcError:
                    pass
                assert process.poll() is None, "airtime serve exited"
                assert time.monotonic() < deadline, "airtime serve never became SERVING"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}", env
    finally:
        process.terminate()
        process.wait(30)


def _airtime(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [
    ("query", "period", "--start", "2026-12-01", "--end", "2026-12-07", "--format", "jsonl"),
    ("query", "period", "--start", "2026-12-01", "--end", "2026-12-03", "--signal", "SP1", "--format", "table"),
    ("query", "period", "--start", "2026-12-01", "--end", "2026-12-28", "--program", "VALE", "--format", "csv"),
    ("query", "program", "--program", "HUCK", "--date", "2026-12-05", "--format", "json"),
    ("query", "program", "--program", "PTV1", "--start", "2026-12-02", "--end", "2026-12-09",
     "--signal", "BH", "--format", "table"),
])
def test_remote_query_prints_what_the_local_query_prints(server, args):  # noqa: ANN001
    target, env = server
    local = _airtime(env, *args)
    remote = _airtime(env, *args, "--server", target)
    assert local.returncode == 0, local.stderr
    assert (remote.returncode, remote.stdout) == (0, local.stdout)
    assert local.stdout.strip()


@pytest.mark.parametrize("args, code", [
    (("query", "program", "--program", "NOPE", "--date", "2026-12-05"), 7),
    (("query", "period", "--start", "2026-12-01", "--end", "2026-12-07", "--program", "HUKC"), 7),
    (("query", "period", "--start", "2026-12-01", "--end", "2026-12-07", "--signal", "SP2"), 7),
    (("query", "period", "--start", "2026-12-07", "--end", "2026-12-01"), 2),
    (("query", "program", "--program", "HU;CK"), 2),
])
def test_remote_query_fails_with_the_local_exit_code_and_message(server, args, code):  # noqa: ANN001
    target, env = server
    local = _airtime(env, *args)
    remote = _airtime(env, *args, "--server", target)
    assert local.returncode == code, local.stderr
    assert (remote.returncode, remote.stderr.splitlines()[-1]) == (code, local.stderr.splitlines()[-1])
