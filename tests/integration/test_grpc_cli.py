"""`airtime query ... --server` prints exactly what the local query prints, and fails with
the same exit codes, against an `airtime serve` process."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.grpc_fixtures import (  # noqa: F401
    ROOT,
    airtime_cli,
    forecast_table,
    publish_run,
    wait_until_serving,
    warehouse,
)

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
        wait_until_serving(port, process)
        yield f"127.0.0.1:{port}", env
    finally:
        process.terminate()
        process.wait(30)


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
    local = airtime_cli(env, *args)
    remote = airtime_cli(env, *args, "--server", target)
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
    local = airtime_cli(env, *args)
    remote = airtime_cli(env, *args, "--server", target)
    assert local.returncode == code, local.stderr
    assert (remote.returncode, remote.stderr.splitlines()[-1]) == (code, local.stderr.splitlines()[-1])
