"""What the server's pipeline metrics make of a ledger (grpc_server/ledger_metrics.facts_of)
in the cases real runs reach only slowly: a held delivery after a published one, failures
aging out of the window, a note from before notes carried an exit code."""

from __future__ import annotations

import datetime as dt

from airtime.warehouse import (
    FAILED,
    HELD,
    PUBLISHED,
    SUCCEEDED,
    SUPERSEDED,
    Attempt,
    RunRecord,
    exit_code_of,
    failure_message,
    newest_first,
)
from grpc_server.ledger_metrics import FAILING_WINDOW_DAYS, facts_of

D = dt.date(2026, 12, 1)
T = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


def record(day: dt.date, state: str, generation: str, started: dt.datetime, error: str | None = None,
           **extra) -> RunRecord:  # noqa: ANN003
    return RunRecord(run_date=day, state=state, input_digest="d", audience_rows=10, availability_rows=20,
                     forecast_rows=30, quarantined_rows=2, started_at=started, generation=generation,
                     error=error, **extra)


def test_the_exit_code_comes_back_from_the_note_and_an_old_note_reads_as_1() -> None:
    assert exit_code_of(failure_message(9, "artifact x is missing")) == 9
    assert exit_code_of("verify: something from an older release") == 1
    assert exit_code_of(None) == 0


def test_a_delivery_held_after_the_published_one_is_pending_an_older_one_is_not() -> None:
    records = newest_first([
        record(D, HELD, "g1", T),  # held, then a corrected delivery published
        record(D, PUBLISHED, "g2", T + dt.timedelta(hours=1), published_at=T + dt.timedelta(hours=2)),
        record(D, HELD, "g3", T + dt.timedelta(hours=3), error=failure_message(3, "held")),
    ])
    facts = facts_of(records, [], read_at=0)
    assert facts.held == 1
    assert (facts.state, facts.exit_code) == (PUBLISHED, 0)  # the date's published generation
    assert facts.published_run_date == D and facts.published_at == T + dt.timedelta(hours=2)
    assert facts.failing == {}  # a date counts by its published generation; the hold is `held`


def test_failures_older_than_the_window_before_the_newest_date_age_out() -> None:
    old = D - dt.timedelta(days=FAILING_WINDOW_DAYS + 1)
    recent = D - dt.timedelta(days=FAILING_WINDOW_DAYS)
    records = newest_first([
        record(old, FAILED, "a", T, error=failure_message(9, "damaged")),
        record(recent, PUBLISHED, "b", T, error=failure_message(9, "damaged after publishing")),
        record(D, SUPERSEDED, "c", T),
        record(D, FAILED, "d", T + dt.timedelta(hours=1), error=failure_message(4, "mismatch")),
    ])
    facts = facts_of(records, [], read_at=0)
    assert facts.failing == {9: 1, 4: 1}
    assert (facts.run_date, facts.state, facts.exit_code) == (D, FAILED, 4)
    assert facts.published_run_date == recent


def test_step_durations_are_each_steps_latest_ended_attempt_of_the_newest_date() -> None:
    def attempt(step: str, minutes: int, seconds: float | None, state: str = SUCCEEDED, day: dt.date = D) -> Attempt:
        start = T + dt.timedelta(minutes=minutes)
        end = None if seconds is None else start + dt.timedelta(seconds=seconds)
        return Attempt(f"{step}{minutes}", day, step, state, start, end)

    attempts = [attempt("load", 0, 50, FAILED), attempt("load", 5, 20), attempt("verify", 6, None, "running"),
                attempt("ingest", 0, 99, day=D - dt.timedelta(days=1))]
    facts = facts_of([record(D, FAILED, "g", T)], attempts, read_at=0)
    assert facts.step_seconds == {"load": 20}
    assert facts.step_attempts == {"load": 2, "verify": 1}
    assert facts.step_failed == {"load": False, "verify": False}
    assert facts.rows == {"audience": 10, "availability": 20, "forecast": 30} and facts.quarantined_rows == 2


def test_an_empty_ledger_has_no_latest_run() -> None:
    facts = facts_of([], [], read_at=5)
    assert (facts.run_date, facts.published_run_date, facts.held, facts.failing) == (None, None, 0, {})
