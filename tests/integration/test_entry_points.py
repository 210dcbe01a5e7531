"""Every process entry point, run as Argo and operators run it: a bad setting or a step
started before its upstream fails at once with one line and an exit code the workflow does
not retry, never with a traceback; every log line of a step names its run date and step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airtime.errors import NOT_RETRIED_EXIT_CODES, ConfigError, UpstreamMissingError
from tests.pipeline_helpers import ROOT, make_source

# the synthetic sample's delivery day: an earlier one would hold exhibitions that have not aired
DAY = "2026-11-30"
ENTRY_POINTS = {
    "ingest": ["steps.ingest", "--date", DAY],
    "preprocess": ["steps.preprocess", "--date", DAY],
    "load": ["steps.load", "--date", DAY],
    "verify": ["steps.verify", "--date", DAY],
    "catchup": ["steps.catchup", "--date", DAY],
    "notify": ["steps.notify", "--status", "Failed"],
    "server": ["grpc_server.server", "--port", "0"],
    "airtime run": ["cli", "run", "--date", DAY],
    "airtime serve": ["cli", "serve", "--port", "0"],
}
BAD_SETTINGS = {
    "AIRTIME_MAX_BAD_ROWS": "-1",
    "AIRTIME_PROFILE": "cloud",
    "AIRTIME_SERVER_PORT": "not-a-port",
}


def run(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    clean |= {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)} | env
    return subprocess.run([sys.executable, "-m", *args], env=clean, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name", ENTRY_POINTS)
@pytest.mark.parametrize("variable", BAD_SETTINGS)
def test_a_bad_setting_exits_2_with_one_line_naming_it(name: str, variable: str, tmp_path: Path) -> None:
    done = run(ENTRY_POINTS[name], tmp_path, **{variable: BAD_SETTINGS[variable]})
    assert done.returncode == ConfigError.exit_code, done.stderr
    assert ConfigError.exit_code in NOT_RETRIED_EXIT_CODES
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], done.stderr


@pytest.mark.parametrize("step, missing", [("preprocess", "ingest"), ("load", "ingest, preprocess, gate"),
                                           ("verify", "load")])
def test_a_step_before_its_upstream_fails_at_once_and_is_not_retried(step: str, missing: str,
                                                                     tmp_path: Path) -> None:
    done = run(ENTRY_POINTS[step], tmp_path)
    assert done.returncode == UpstreamMissingError.exit_code, done.stderr
    assert UpstreamMissingError.exit_code in NOT_RETRIED_EXIT_CODES
    assert "Traceback" not in done.stderr
    assert f"{missing} ha" in done.stderr  # "has/have not finished for this date"


def test_every_log_line_of_a_step_names_its_run_date_and_step(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    lines = []
    for step in ("ingest", "preprocess", "gate", "load"):
        done = run(["steps." + step, "--date", DAY], tmp_path / "home", AIRTIME_SOURCE=str(source),
                   AIRTIME_LOG_FORMAT="json", AIRTIME_LOG_LEVEL="DEBUG")
        assert done.returncode == 0, done.stderr
        lines += [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    # a missing upstream, logged as JSON too
    done = run(["steps.verify", "--date", "2020-01-02"], tmp_path / "home", AIRTIME_LOG_FORMAT="json")
    lines += [json.loads(line) for line in done.stderr.splitlines()]
    assert len(lines) >= 4
    assert all(line.get("run_date") and line.get("step") for line in lines), lines
    assert {line["step"] for line in lines} == {"ingest", "preprocess", "gate", "load", "verify"}


def test_a_long_step_is_never_silent_off_a_terminal(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src", rows=200_000)
    done = run(["steps.ingest", "--date", DAY], tmp_path / "home", AIRTIME_SOURCE=str(source),
               AIRTIME_LOG_FORMAT="json", AIRTIME_HEARTBEAT_SECONDS="0.1")
    assert done.returncode == 0, done.stderr
    beats = [json.loads(line) for line in done.stderr.splitlines() if "still running" in line]
    assert beats and all(b["step"] == "ingest" and b["run_date"] == DAY for b in beats)
    assert "elapsed" in beats[-1]["message"]

    piped = run(["cli", "run", "--date", DAY, "--source", str(source)], tmp_path / "home2",
                AIRTIME_HEARTBEAT_SECONDS="0.1")
    assert piped.returncode == 0, piped.stderr
    assert "… ingest:" in piped.stdout and "elapsed" in piped.stdout
