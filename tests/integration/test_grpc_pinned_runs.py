"""Pinned runs: two runs published, the second changing HUCK's forecast; `airtime query ...
--run` of the first gives the first answer, locally, via `--server` (gRPC) and over HTTP,
the default gives the second, and every output format names the run it came from."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airtime.errors import NotPublishedError, RunNotPublishedError
from airtime.warehouse import SlotFilter
from grpc_server.backend import SnapshotBackend
from grpc_server.client import ForecastClient
from tests.integration.grpc_fixtures import ROOT, airtime_cli, forecast_table, publish_run, warehouse  # noqa: F401
from tests.integration.test_grpc_cli import _free_port

FIRST, SECOND = dt.date(2026, 11, 29), dt.date(2026, 11, 30)
DAY = dt.date(2026, 12, 5)
QUERY = ("query", "program", "--program", "HUCK", "--date", DAY.isoformat(), "--signal", "SP1")


@pytest.fixture
def server(warehouse, tmp_path: Path) -> Iterator[tuple[str, str, dict]]:  # noqa: F811
    for run in (FIRST, SECOND):
        publish_run(warehouse, run, forecast_table(run), tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")},
           "AIRTIME_HOME": str(warehouse.path.parent), "AIRTIME_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)}
    port, http_port = _free_port(), _free_port()
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port),
                                "--http-port", str(http_port)], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # up once freshness answers 200: the run is loaded
            try:
                with urllib.request.urlopen(f"{base}/v1/freshness", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, "airtime serve exited"
            assert time.monotonic() < deadline, "airtime serve --http-port never answered"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", base, env
    finally:
        process.terminate()
        process.wait(30)


def _huck(run: dt.date) -> float:
    table = forecast_table(run).to_pylist()
    (row,) = [r for r in table if (r["signal"], r["program_code"], r["date"]) == ("SP1", "HUCK", DAY)]
    return row["predicted_audience"]


def test_run_pins_the_answer_and_every_format_names_its_run(server) -> None:  # noqa: ANN001
    target, base, env = server
    assert _huck(FIRST) != _huck(SECOND)  # the second run changed HUCK's forecast
    for where in ((), ("--server", target)):
        for run, pin in ((SECOND, ()), (FIRST, ("--run", FIRST.isoformat()))):
            answers = {fmt: airtime_cli(env, *QUERY, *pin, *where, "--format", fmt)
                       for fmt in ("json", "jsonl", "csv", "table")}
            for fmt, done in answers.items():
                assert done.returncode == 0, (fmt, where, done.stderr)
            (from_json,) = json.loads(answers["json"].stdout)
            (from_jsonl,) = [json.loads(line) for line in answers["jsonl"].stdout.splitlines()]
            (from_csv,) = list(csv.DictReader(io.StringIO(answers["csv"].stdout)))
            for row in (from_json, from_jsonl, from_csv):
                assert row["run_date"] == run.isoformat(), (where, pin, row)
                assert float(row["predicted_audience"]) == pytest.approx(_huck(run))
            assert f"forecast of run {run}" in answers["table"].stdout
    # over HTTP: the same pin, and the answer names its run
    for run, query in ((SECOND, ""), (FIRST, f"&run_date={FIRST}")):
        url = f"{base}/v1/programs/HUCK/slots?signal=SP1&date={DAY}{query}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["runDate"] == {"year": run.year, "month": run.month, "day": run.day}
        assert body["slots"][0]["predictedAudience"] == pytest.approx(_huck(run))


def test_a_run_that_is_not_published_is_exit_6_locally_and_remotely(server) -> None:  # noqa: ANN001
    target, _base, env = server
    local = airtime_cli(env, *QUERY, "--run", "2026-11-28")
    remote = airtime_cli(env, *QUERY, "--run", "2026-11-28", "--server", target)
    assert local.returncode == remote.returncode == NotPublishedError.exit_code, (local.stderr, remote.stderr)
    assert "2026-11-28" in local.stderr and "2026-11-28" in remote.stderr
    with ForecastClient(target) as client:
        assert client.freshness(FIRST).run_date == FIRST
        assert client.freshness().run_date == SECOND


def test_snapshot_backend_loads_pinned_runs_into_a_bounded_lru(warehouse, tmp_path: Path) -> None:  # noqa: F811
    runs = [dt.date(2026, 11, d) for d in (27, 28, 29, 30)]
    for run in runs:
        publish_run(warehouse, run, forecast_table(run), tmp_path)
    backend = SnapshotBackend(warehouse, reload_interval=3600, pinned_runs=2)
    backend.refresh()
    where = SlotFilter(DAY, DAY, "SP1", "HUCK")
    assert backend.inline() and not backend.inline(run_date=runs[0])  # a named run: off the loop
    for run in runs[:3]:
        served, _slots = backend.program_slots(where, run_date=run)
        assert served.id.run_date == run
    assert [r.run_date for r in backend._pinned] == runs[1:3]  # noqa: SLF001 - the bound holds
    assert backend.served().id.run_date == runs[3]  # the latest is untouched
    warehouse.record_failure(runs[2], warehouse.run_record(runs[2]).generation, "verify", "re-check found other rows",
                             demote=True)
    with pytest.raises(RunNotPublishedError):  # demoted: no longer answered, though in memory
        backend.program_slots(where, run_date=runs[2])
