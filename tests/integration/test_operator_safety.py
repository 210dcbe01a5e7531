"""What an operator can do by mistake or on purpose, as they would do it: from the command
line, in fresh processes, on the local profile (and the gcp profile's refusal to start)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from airtime.errors import (
    NOT_RETRIED_EXIT_CODES,
    ConfigError,
    IntegrityError,
    UpstreamMissingError,
    VerificationError,
)
from tests.pipeline_helpers import ROOT, cli, generation_dir, make_source

DAY = "2026-11-30"


def run_module(home: Path, module: str, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    """`python -m module` in a fresh process, as Argo starts a step."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")} | (env or {})
    env |= {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_gcp_run_without_a_source_is_refused_before_any_cloud_call(tmp_path: Path) -> None:
    # every Google endpoint points at a closed port: any call would fail with exit 5, or hang
    closed = {"AIRTIME_PROFILE": "gcp", "AIRTIME_ARTIFACT_BUCKET": "bucket", "AIRTIME_GCP_PROJECT": "p",
              "AIRTIME_BQ_API_ENDPOINT": "http://127.0.0.1:9", "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}
    for args in (["run", "--date", DAY], ["backfill", "--start", DAY, "--end", DAY, "--source", ""]):
        done = cli(tmp_path, *args, env=closed, timeout=60)
        assert done.returncode == ConfigError.exit_code, done.stderr
        assert "--source" in done.stderr and "AIRTIME_SOURCE" in done.stderr
        assert "Traceback" not in done.stderr
    for module in ("steps.ingest", "steps.catchup"):
        done = run_module(tmp_path, module, "--date", DAY, env=closed)
        assert done.returncode == ConfigError.exit_code, done.stderr
        assert "AIRTIME_SOURCE" in done.stderr


def test_verify_finds_a_forecast_value_altered_after_publishing(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    home = tmp_path / "home"
    assert cli(home, "run", "--date", DAY, "--source", str(source)).returncode == 0
    assert cli(home, "verify", "--date", DAY).returncode == 0

    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("UPDATE forecast SET predicted_audience = predicted_audience * 2"
                " WHERE rowid = (SELECT min(rowid) FROM forecast WHERE predicted_audience IS NOT NULL)")
    con.close()
    done = cli(home, "verify", "--date", DAY)
    assert done.returncode == VerificationError.exit_code, done.stderr
    assert "table forecast" in done.stderr and "not served any more" in done.stderr
    # demoted: nothing is served until the day loads again
    assert cli(home, "query", "period", "--start", DAY, "--end", "2026-12-31").returncode == 6
    (run,) = json.loads(cli(home, "runs", "--format", "json").stdout)
    assert (run["state"], run["failed_step"]) == ("failed", "verify")

    # the next run notices the altered rows itself: it loads the day again, then verifies
    again = cli(home, "run", "--date", DAY, "--source", str(source))
    assert again.returncode == 0, again.stderr
    assert "load       skipped" not in again.stdout and "verify     skipped" not in again.stdout
    assert cli(home, "verify", "--date", DAY).returncode == 0


def test_verify_of_a_day_never_loaded_says_so(tmp_path: Path) -> None:
    done = cli(tmp_path, "verify", "--date", DAY)
    assert done.returncode == UpstreamMissingError.exit_code and "never loaded" in done.stderr


def test_a_killed_attempt_shows_beside_the_attempt_that_published_the_day(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    home = tmp_path / "home"
    killed = cli(home, "run", "--date", DAY, "--source", str(source), env={"AIRTIME_CRASH_AT": "after-preprocess"})
    assert killed.returncode == 137
    assert cli(home, "run", "--date", DAY, "--source", str(source)).returncode == 0

    (run,) = json.loads(cli(home, "runs", "--format", "json", "--date", DAY).stdout)
    assert run["state"] == "published"
    steps = [(a["step"], a["state"]) for a in run["attempts"]]
    assert steps == [("ingest", "succeeded"), ("preprocess", "interrupted"), ("ingest", "skipped"),
                     ("preprocess", "skipped"), ("gate", "succeeded"), ("load", "succeeded"),
                     ("verify", "succeeded")]
    interrupted = run["attempts"][1]
    assert interrupted["ended_at"] is None and interrupted["host"]
    table = cli(home, "runs").stdout
    assert "interrupted" in table and "published" in table


def test_backfill_skips_days_without_a_delivery_only_when_asked(tmp_path: Path) -> None:
    source = tmp_path / "src"
    make_source(source / "dt=2026-11-29")
    home = tmp_path / "home"
    stopped = cli(home, "backfill", "--start", "2026-11-28", "--end", "2026-11-29", "--source", str(source))
    assert stopped.returncode == ConfigError.exit_code, stderr_of(stopped)
    assert "1 of the 2 dates (2026-11-28)" in stopped.stderr and "run " not in stopped.stdout
    done = cli(home, "backfill", "--start", "2026-11-28", "--end", "2026-11-29", "--source", str(source),
               "--skip-missing", "--max-bad-rows", "5")
    assert done.returncode == 0, done.stderr
    assert "skip 2026-11-28: no delivery in" in done.stdout and "dt=2026-11-28" in done.stdout
    assert "run 2026-11-29: published" in done.stdout


def test_backfill_over_a_source_without_dated_folders_refuses_unless_the_files_are_the_same(
        tmp_path: Path) -> None:
    # what ingested the same two files for every date, silently
    source = make_source(tmp_path / "src")
    home = tmp_path / "home"
    days = ("--start", "2026-11-29", "--end", "2026-11-30", "--source", str(source))
    refused = cli(home, "backfill", *days)
    assert refused.returncode == ConfigError.exit_code, stderr_of(refused)
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert str(source) in refused.stderr and "no dt=YYYY-MM-DD/ folder for any of the dates" in refused.stderr
    assert "--same-files" in refused.stderr and "--skip-missing" in refused.stderr
    assert not (home / "warehouse.duckdb").exists()  # refused before any work

    done = cli(home, "backfill", *days, "--same-files")
    assert done.returncode == 0, stderr_of(done)
    assert "run 2026-11-29: published" in done.stdout and "run 2026-11-30: published" in done.stdout


def stderr_of(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n{done.stderr}"


def _published_day(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "src"
    make_source(source / f"dt={DAY}")
    make_source(source / "dt=2026-12-01")  # the same delivery again: the gate lets it pass
    home = tmp_path / "home"
    assert cli(home, "run", "--date", DAY, "--source", str(source)).returncode == 0
    return home, source


def test_an_altered_history_is_never_used_by_the_next_day(tmp_path: Path) -> None:
    home, source = _published_day(tmp_path)
    # the day's audience, most of the history the next day starts from (preprocess's manifest
    # names it as part of it); still valid Parquet, every audience doubled: what silently
    # doubled a forecast before
    (history,) = (generation_dir(home, dt.date.fromisoformat(DAY)) / "ingest").glob("audience-*.parquet")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (average_audience * 2 AS average_audience) FROM '{history}')"
                f" TO '{history}.tmp' (FORMAT parquet)")
    Path(f"{history}.tmp").replace(history)
    done = cli(home, "run", "--date", "2026-12-01", "--source", str(source))
    assert done.returncode == IntegrityError.exit_code, done.stderr
    assert IntegrityError.exit_code in NOT_RETRIED_EXIT_CODES
    assert history.name in done.stderr and "altered" in done.stderr
    # and `airtime verify` of the published day finds it too, naming every damaged file
    checked = cli(home, "verify", "--date", DAY)
    assert checked.returncode == IntegrityError.exit_code, checked.stderr
    assert history.name in checked.stderr and "1 artifact(s) later days read are damaged" in checked.stderr


def test_missing_artifacts_damaged_manifests_and_warehouses_are_permanent_faults(tmp_path: Path) -> None:
    home, source = _published_day(tmp_path)
    run_dir = generation_dir(home, dt.date.fromisoformat(DAY))
    (forecast,) = (run_dir / "preprocess").glob("forecast-*.parquet")
    forecast.unlink()
    (run_dir / "load" / "manifest.json").unlink()
    # a step started alone (as Argo starts it) finds its input gone: exit 9, not retried
    load = run_module(home, "steps.load", "--date", DAY, "--source", str(source))
    assert load.returncode == IntegrityError.exit_code and "missing" in load.stderr, load.stderr
    # a whole run makes the missing output again: preprocess is not skipped any more
    again = cli(home, "run", "--date", DAY, "--source", str(source))
    assert again.returncode == 0 and "preprocess skipped" not in again.stdout, again.stderr

    (run_dir / "preprocess" / "manifest.json").write_text("{not json")
    done = cli(home, "run", "--date", DAY, "--source", str(source))
    assert done.returncode == IntegrityError.exit_code, done.stderr
    assert "preprocess/manifest.json cannot be read" in done.stderr and "Traceback" not in done.stderr

    with (home / "warehouse.duckdb").open("r+b") as fh:
        fh.write(b"\0" * 64)  # a broken header
    done = cli(home, "runs")
    assert done.returncode == IntegrityError.exit_code, done.stderr
    assert "is not a DuckDB database file" in done.stderr and "Traceback" not in done.stderr
