"""The issue's check: with a run published from the real files (../shared/data),
`airtime serve --http-port` answers HUCK on SP1 on 2020-08-01 with 1,106,053.72, a reversed
period with HTTP 400, an unknown program with 404, and freshness with 200."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from steps import runner
from tests.integration.grpc_fixtures import ROOT
from tests.integration.test_grpc_cli import _free_port
from tests.pipeline_helpers import local_settings

RUN = dt.date(2020, 7, 21)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_http_port_answers_the_real_files_run(tmp_path: Path, shared_data: Path) -> None:
    assert runner.run_day(local_settings(tmp_path, shared_data), RUN).record.state == "published"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")},
           "AIRTIME_HOME": str(tmp_path), "AIRTIME_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)}
    http_port = _free_port()
    base = f"http://127.0.0.1:{http_port}"
    process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(_free_port()),
                                "--http-port", str(http_port)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, freshness = _get(f"{base}/v1/freshness")
                if status == 200:
                    break
            except OSError:  # not listening yet
                pass
            assert process.poll() is None, "airtime serve exited"
            assert time.monotonic() < deadline, "no answer from airtime serve --http-port"
            time.sleep(0.2)
        assert freshness["run"]["runDate"] == {"year": 2020, "month": 7, "day": 21}
        assert (freshness["run"]["audienceRows"], freshness["run"]["availabilityRows"]) == ("8987", "2292")

        status, body = _get(f"{base}/v1/programs/HUCK/slots?signal=SP1&date=2020-08-01")
        assert status == 200
        (huck,) = body["slots"]
        assert huck["predictedAudience"] == pytest.approx(1_106_053.72, abs=0.01)
        assert (huck["historySize"], huck["weekday"]) == (4, "SATURDAY")

        status, body = _get(f"{base}/v1/slots?start_date=2020-07-28&end_date=2020-07-22")
        assert (status, body["code"]) == (400, 3)
        assert body["details"][0]["fieldViolations"][0]["field"] == "end_date"

        status, body = _get(f"{base}/v1/programs/NOPE/slots?date=2020-08-01")
        assert (status, body["code"]) == (404, 5)
    finally:
        process.terminate()
        assert process.wait(30) == 0  # SIGTERM drains both servers and exits 0
