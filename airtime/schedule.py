"""Which day a run is for: the cron's scheduled time, read in the business timezone.

Argo passes `{{workflow.scheduledTime}}` as RFC 3339 in UTC; 06:00 in Sao Paulo is
09:00Z the same day, but a schedule late in the evening falls on the next UTC day, so
the date is always taken in `settings.timezone`, never from the pod's clock or UTC.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from airtime.errors import ConfigError


def _given(text: str | None) -> str | None:
    # Argo leaves an unresolved `{{...}}` in place (a manual submit has no scheduled time)
    text = (text or "").strip()
    return None if not text or text.startswith("{{") else text


def scheduled_date(scheduled_time: str | None, timezone: str) -> dt.date | None:
    text = _given(scheduled_time)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"scheduled time is not RFC 3339: {text!r}") from None
    if moment.tzinfo is None:
        raise ConfigError(f"scheduled time has no UTC offset: {text!r}")
    return moment.astimezone(ZoneInfo(timezone)).date()


def resolve_run_date(
    run_date: str | None,
    scheduled_time: str | None,
    timezone: str,
    now: dt.datetime | None = None,
) -> dt.date:
    """An explicit run date wins (manual submit, backfill); then the scheduled time;
    then today in the business timezone."""
    explicit = _given(run_date)
    if explicit is not None:
        try:
            return dt.date.fromisoformat(explicit)
        except ValueError:
            raise ConfigError(f"run date is not YYYY-MM-DD: {explicit!r}") from None
    from_schedule = scheduled_date(scheduled_time, timezone)
    if from_schedule is not None:
        return from_schedule
    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(timezone)).date()


def today(timezone: str) -> dt.date:
    """The default run date: today in the business timezone (not the machine's)."""
    return resolve_run_date(None, None, timezone)
