"""The run date comes from the cron's scheduled time, read in the business timezone."""

from __future__ import annotations

import datetime as dt

import pytest

from airtime.errors import ConfigError
from airtime.schedule import resolve_run_date, scheduled_date

TZ = "America/Sao_Paulo"


def test_morning_schedule_in_sao_paulo_is_the_same_calendar_day() -> None:
    assert scheduled_date("2026-11-27T09:00:00Z", TZ) == dt.date(2026, 11, 27)


def test_late_evening_schedule_is_the_sao_paulo_day_not_the_utc_day() -> None:
    # 23:30 in Sao Paulo on the 27th is already the 28th in UTC
    assert scheduled_date("2026-11-28T02:30:00Z", TZ) == dt.date(2026, 11, 27)


def test_scheduled_time_with_an_offset_is_honoured() -> None:
    assert scheduled_date("2026-11-27T23:30:00-03:00", TZ) == dt.date(2026, 11, 27)


def test_explicit_run_date_wins_over_the_scheduled_time() -> None:
    assert resolve_run_date("2026-11-20", "2026-11-27T09:00:00Z", TZ) == dt.date(2026, 11, 20)


@pytest.mark.parametrize("scheduled", ["", "{{workflow.scheduledTime}}", None])
def test_manual_submit_without_schedule_uses_today_in_the_business_timezone(scheduled) -> None:
    now = dt.datetime(2026, 11, 28, 1, 0, tzinfo=dt.UTC)  # still the 27th in Sao Paulo
    assert resolve_run_date("", scheduled, TZ, now=now) == dt.date(2026, 11, 27)


@pytest.mark.parametrize(
    ("run_date", "scheduled"), [("27/11/2026", ""), ("", "yesterday"), ("", "2026-11-27T09:00:00")]
)
def test_malformed_date_or_time_is_a_config_error(run_date: str, scheduled: str) -> None:
    with pytest.raises(ConfigError):
        resolve_run_date(run_date, scheduled, TZ)
