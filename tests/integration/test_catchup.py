"""Catch-up on the local profile: real files, real DuckDB warehouse, the real run_day."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airtime.errors import InputError
from airtime.resources import open_warehouse
from airtime.sample import generate
from airtime.settings import Settings
from airtime.store import LocalStore
from steps import catchup, runner
from tests.conftest import ROOT

RUN_DATE = dt.date(2026, 11, 27)


def deliver(source: Path, day: dt.date, seed: int = 1) -> None:
    generate(source / f"dt={day.isoformat()}", rows=400, seed=seed, end_date=day - dt.timedelta(days=1))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # synthetic days of unrelated seeds look nothing like each other: the data-quality gate
    # would hold them (it is tested in test_gate.py), so it lets everything through here
    return Settings(profile="local", home=tmp_path / "home", source=str(tmp_path / "src"), catchup_days=3,
                    dq_min_rows_ratio=0, dq_max_vanished_signals=99, dq_max_vanished_series_ratio=1,
                    dq_max_rewritten_ratio=1, dq_min_upcoming_slots_ratio=0, dq_min_upcoming_span_ratio=0,
                    dq_min_available_time_ratio=0, dq_max_audience_outliers=10**9)


def published(settings: Settings) -> list[dt.date]:
    return sorted(r.run_date for r in open_warehouse(settings).ledger() if r.state == "published")


def run_catchup(settings: Settings, calls: list | None = None) -> catchup.CatchupResult:
    def run_day(s: Settings, day: dt.date, source: str) -> object:
        if calls is not None:
            calls.append(day)
        return runner.run_day(s, day, source)

    return catchup.run(settings, RUN_DATE, settings.source, open_warehouse(settings), run_day)


def test_missed_days_with_files_are_run_oldest_first(settings: Settings) -> None:
    src = Path(settings.source)
    for offset in (3, 1, 2):
        deliver(src, RUN_DATE - dt.timedelta(days=offset), seed=offset)
    calls: list[dt.date] = []
    result = run_catchup(settings, calls)
    expected = [RUN_DATE - dt.timedelta(days=n) for n in (3, 2, 1)]
    assert calls == expected == result.caught_up
    assert published(settings) == expected


def test_days_outside_the_look_back_or_without_files_are_left_alone(settings: Settings) -> None:
    src = Path(settings.source)
    deliver(src, RUN_DATE - dt.timedelta(days=4))  # beyond catchup_days=3
    deliver(src, RUN_DATE - dt.timedelta(days=2))
    deliver(src, RUN_DATE)  # the run date itself is the DAG's job, not catch-up's
    result = run_catchup(settings)
    assert result.caught_up == [RUN_DATE - dt.timedelta(days=2)]
    assert published(settings) == [RUN_DATE - dt.timedelta(days=2)]


def test_published_days_are_not_run_again(settings: Settings) -> None:
    day = RUN_DATE - dt.timedelta(days=1)
    deliver(Path(settings.source), day)
    runner.run_day(settings, day, settings.source)
    calls: list[dt.date] = []
    assert run_catchup(settings, calls).caught_up == []
    assert calls == []


def test_catchup_stops_at_the_first_failing_day(settings: Settings) -> None:
    src = Path(settings.source)
    bad = RUN_DATE - dt.timedelta(days=2)
    (src / f"dt={bad.isoformat()}").mkdir(parents=True)
    (src / f"dt={bad.isoformat()}" / "program_audience.csv").write_text("not,the,header\n")
    deliver(src, RUN_DATE - dt.timedelta(days=1))
    with pytest.raises(InputError):
        run_catchup(settings)
    assert published(settings) == []  # the later day waits for the hole to be fixed


def test_input_digest_changes_when_the_day_is_delivered_again(settings: Settings) -> None:
    src = Path(settings.source)
    deliver(src, RUN_DATE, seed=1)
    first = catchup.input_digest(LocalStore(src), RUN_DATE)
    deliver(src, RUN_DATE, seed=2)
    second = catchup.input_digest(LocalStore(src), RUN_DATE)
    assert first != second and len(first) == 16
    assert catchup.input_digest(LocalStore(src), RUN_DATE + dt.timedelta(days=1)) == catchup.NO_FILES


def test_entry_point_emits_run_date_from_scheduled_time_and_digest(settings: Settings, tmp_path: Path) -> None:
    deliver(Path(settings.source), RUN_DATE)
    env = {**os.environ, "AIRTIME_PROFILE": "local", "AIRTIME_HOME": str(settings.home),
           "AIRTIME_SOURCE": str(settings.source), "AIRTIME_CATCHUP_DAYS": "3", "AIRTIME_TIMEZONE": "America/Sao_Paulo"}
    out = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, "-m", "steps.catchup", "--date", "", "--scheduled-time", "2026-11-28T02:30:00Z",
         "--emit-date", str(out / "run-date"), "--emit-digest", str(out / "input-digest")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "run-date").read_text() == "2026-11-27"
    assert (out / "input-digest").read_text() == catchup.input_digest(LocalStore(Path(settings.source)), RUN_DATE)


def test_entry_point_exits_with_the_input_error_code(settings: Settings, tmp_path: Path) -> None:
    bad = RUN_DATE - dt.timedelta(days=1)
    (Path(settings.source) / f"dt={bad.isoformat()}").mkdir(parents=True)
    (Path(settings.source) / f"dt={bad.isoformat()}" / "program_audience.csv").write_text("x\n")
    env = {**os.environ, "AIRTIME_PROFILE": "local", "AIRTIME_HOME": str(settings.home),
           "AIRTIME_SOURCE": str(settings.source), "AIRTIME_CATCHUP_DAYS": "3", "AIRTIME_LOG_FORMAT": "json"}
    proc = subprocess.run([sys.executable, "-m", "steps.catchup", "--date", RUN_DATE.isoformat()],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == InputError.exit_code, proc.stderr
