"""The forecast rule (README.md, first section), one clause per test, on small stub frames."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pandas as pd
import pytest

from airtime.forecast import forecast_query
from tests.forecast_frames import compute_forecast, merge_history

SLOT = dt.date(2026, 3, 14)  # a Saturday
WEEK = dt.timedelta(days=7)


def history(*rows: tuple[str, str, dt.date, float]) -> pd.DataFrame:
    """Typed as the history Parquet is (so an empty frame still has a DATE column)."""
    frame = pd.DataFrame(
        rows or None, columns=["signal", "program_code", "exhibition_date", "average_audience"]
    )
    return frame.astype(
        {"signal": str, "program_code": str, "exhibition_date": "datetime64[us]", "average_audience": float}
    )


def audience(*rows: tuple[str, str, dt.date, float]) -> pd.DataFrame:
    """A delivery as ingest types it (with the start time the forecast does not use)."""
    frame = history(*rows)
    frame["program_start_time"] = pd.to_datetime(frame["exhibition_date"]).dt.tz_localize("UTC")
    return frame


def slots(*rows: tuple[str, str, dt.date]) -> pd.DataFrame:
    return pd.DataFrame(
        [(s, p, d, 30) for s, p, d in rows], columns=["signal", "program_code", "date", "available_time"]
    )


def saturdays_before(slot: dt.date, values: list[float], signal: str = "SP1", program: str = "HUCK"):
    """Exhibitions on the weeks before `slot`, the last value the most recent."""
    n = len(values)
    return [(signal, program, slot - (n - i) * WEEK, v) for i, v in enumerate(values)]


def one(frame: pd.DataFrame) -> dict:
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


def test_forecast_is_the_median_of_the_last_four_same_weekday_exhibitions():
    # six Saturdays: the two oldest (huge) must not count
    hist = history(*saturdays_before(SLOT, [1e9, 1e9, 10.0, 20.0, 40.0, 80.0]))
    row = one(compute_forecast(hist, slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx(30.0)  # (20 + 40) / 2
    assert row["history_size"] == 4


def test_forecast_uses_the_exhibitions_there_are_when_fewer_than_four():
    hist = history(*saturdays_before(SLOT, [10.0, 70.0, 20.0]))
    row = one(compute_forecast(hist, slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx(20.0)
    assert row["history_size"] == 3


def test_slot_without_history_is_kept_with_null_prediction_and_history_size_zero():
    hist = history(*saturdays_before(SLOT, [10.0], program="OTHER"))
    result = compute_forecast(hist, slots(("SP1", "HUCK", SLOT)))
    row = one(result)
    assert (row["signal"], row["program_code"], row["date"].date()) == ("SP1", "HUCK", SLOT)
    assert math.isnan(row["predicted_audience"])
    assert row["history_size"] == 0
    assert row["available_time"] == 30


def test_forecast_with_empty_history_keeps_every_slot():
    result = compute_forecast(history(), slots(("SP1", "HUCK", SLOT), ("RJ", "HUCK", SLOT)))
    assert len(result) == 2
    assert result["predicted_audience"].isna().all()
    assert (result["history_size"] == 0).all()


def test_forecast_ignores_exhibitions_on_or_after_slot_date():
    hist = history(
        *saturdays_before(SLOT, [10.0, 20.0]),
        ("SP1", "HUCK", SLOT, 1e9),  # the slot's own day: not "strictly before"
        ("SP1", "HUCK", SLOT + WEEK, 1e9),  # the future
    )
    row = one(compute_forecast(hist, slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx(15.0)
    assert row["history_size"] == 2


def test_slot_whose_only_exhibition_is_on_its_own_date_has_no_prediction():
    row = one(compute_forecast(history(("SP1", "HUCK", SLOT, 5.0)), slots(("SP1", "HUCK", SLOT))))
    assert math.isnan(row["predicted_audience"]) and row["history_size"] == 0


def test_forecast_ignores_exhibitions_on_other_weekdays():
    hist = history(
        *saturdays_before(SLOT, [10.0, 30.0]),
        # more recent, but Friday and Sunday
        *[("SP1", "HUCK", SLOT - dt.timedelta(days=d), 1e9) for d in (1, 6, 8)],
    )
    row = one(compute_forecast(hist, slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx(20.0)
    assert row["history_size"] == 2


def test_forecast_ignores_other_signals_and_other_programs():
    hist = history(
        *saturdays_before(SLOT, [10.0]),
        *saturdays_before(SLOT, [1e9, 1e9], signal="RJ"),
        *saturdays_before(SLOT, [1e9, 1e9], program="HUCK2"),
    )
    row = one(compute_forecast(hist, slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx(10.0)
    assert row["history_size"] == 1


@pytest.mark.parametrize(
    ("values", "median"),
    [
        ([7.0], 7.0),
        ([9.0, 2.0], 5.5),  # even: mean of the two middle values
        ([5.0, 1.0, 3.0], 3.0),  # odd: the middle value
        ([4.0, 1.0, 8.0, 2.0], 3.0),  # even: (2 + 4) / 2, not 2 or 4
        ([1106053.25, 0.5, 999.75, 1e7], (999.75 + 1106053.25) / 2),
    ],
)
def test_median_of_even_count_is_mean_of_the_two_middle_values(values, median):
    row = one(compute_forecast(history(*saturdays_before(SLOT, values)), slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx(median, rel=1e-12)
    assert row["history_size"] == len(values)


def test_weekday_is_zero_for_monday_to_six_for_sunday():
    monday = dt.date(2026, 3, 9)
    days = [monday + dt.timedelta(days=i) for i in range(7)]
    result = compute_forecast(history(), slots(*[("SP1", "HUCK", d) for d in days]))
    by_date = dict(zip(result["date"].dt.date, result["weekday"], strict=True))
    assert by_date == {d: d.weekday() for d in days}
    assert [by_date[d] for d in days] == [0, 1, 2, 3, 4, 5, 6]


def test_every_availability_row_appears_exactly_once():
    hist = history(
        *saturdays_before(SLOT, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        *saturdays_before(SLOT, [1.0, 2.0], signal="RJ"),
    )
    wanted = slots(
        *[("SP1", "HUCK", SLOT + i * WEEK) for i in range(-3, 4)],
        *[("SP1", "HUCK", SLOT + dt.timedelta(days=d)) for d in range(1, 6)],
        ("RJ", "HUCK", SLOT),
        ("PE1", "NEW", SLOT),
    )
    result = compute_forecast(hist, wanted)
    key = ["signal", "program_code", "date"]
    got = result[key].assign(date=result["date"].dt.date)
    assert len(result) == len(wanted)
    assert sorted(map(tuple, got.to_numpy())) == sorted(map(tuple, wanted[key].to_numpy()))


def test_later_slots_see_more_history_than_earlier_ones():
    hist = history(*saturdays_before(SLOT, [10.0, 20.0, 30.0]))
    result = compute_forecast(hist, slots(*[("SP1", "HUCK", SLOT - i * WEEK) for i in range(4)]))
    sizes = dict(zip(result["date"].dt.date, result["history_size"], strict=True))
    assert [sizes[SLOT - i * WEEK] for i in range(4)] == [3, 2, 1, 0]


def test_groups_after_their_history_and_groups_with_a_past_slot_are_forecast_together():
    # HUCK's slots all come after its last exhibition (the 4-latest aggregate); VALE has a
    # slot before its last exhibition (the per-exhibition path): one query, both right
    hist = history(*saturdays_before(SLOT, [10.0, 20.0, 30.0, 40.0, 1000.0]),
                   *saturdays_before(SLOT + WEEK, [1.0, 2.0, 3.0, 4.0, 5.0], program="VALE"))
    result = compute_forecast(hist, slots(("SP1", "HUCK", SLOT), ("SP1", "HUCK", SLOT + 2 * WEEK),
                                          ("SP1", "VALE", SLOT - WEEK), ("SP1", "VALE", SLOT + WEEK)))
    got = {(p, d.date()): (a, n) for p, d, a, n in
           result[["program_code", "date", "predicted_audience", "history_size"]].itertuples(index=False)}
    assert got == {("HUCK", SLOT): (35.0, 4), ("HUCK", SLOT + 2 * WEEK): (35.0, 4),
                   ("VALE", SLOT - WEEK): (2.0, 3), ("VALE", SLOT + WEEK): (3.5, 4)}


def test_forecast_plans_an_asof_join_even_inside_a_transaction():
    # Inside a transaction DuckDB has no row counts for the temp tables and would plan the
    # ASOF join as a nested loop (176 s for 639k slots at 10M history rows, bench/floor.py)
    con = duckdb.connect()
    con.register("history_df", history(*saturdays_before(SLOT, [10.0, 20.0])))
    con.register("availability_df", slots(("SP1", "HUCK", SLOT), ("SP1", "HUCK", SLOT - WEEK)))
    con.execute("BEGIN TRANSACTION")
    plan = con.execute("EXPLAIN " + forecast_query(con, "history_df", "availability_df")).fetchall()[0][1]
    assert "ASOF_JOIN" in plan and "NESTED_LOOP_JOIN" not in plan


def test_merge_history_latest_delivery_wins_per_signal_program_and_date():
    day1, day2 = dt.date(2026, 3, 15), dt.date(2026, 3, 16)  # deliveries after the exhibitions they hold
    first = merge_history(None, audience(("SP1", "HUCK", SLOT - WEEK, 100.0), ("SP1", "HUCK", SLOT - 2 * WEEK, 50.0)), day1)
    second = merge_history(first, audience(("SP1", "HUCK", SLOT - WEEK, 111.0)), day2)

    values = dict(zip(second["exhibition_date"].dt.date, second["average_audience"], strict=True))
    assert values == {SLOT - WEEK: 111.0, SLOT - 2 * WEEK: 50.0}  # corrected, and kept
    delivered = dict(zip(second["exhibition_date"].dt.date, second["delivered_on"].dt.date, strict=True))
    assert delivered == {SLOT - WEEK: day2, SLOT - 2 * WEEK: day1}

    row = one(compute_forecast(second, slots(("SP1", "HUCK", SLOT))))
    assert row["predicted_audience"] == pytest.approx((111.0 + 50.0) / 2)


def test_merge_history_replaces_an_earlier_attempt_of_the_same_run_date():
    day = dt.date(2026, 3, 16)
    attempt = merge_history(None, audience(("SP1", "HUCK", SLOT - WEEK, 1.0), ("SP1", "X", SLOT, 2.0)), day)
    redo = merge_history(attempt, audience(("SP1", "HUCK", SLOT - WEEK, 3.0)), day)
    # what the same date delivered before is not history "up to" this delivery: redo wins whole
    assert list(zip(redo["program_code"], redo["average_audience"], strict=True)) == [("HUCK", 3.0)]


def test_merge_history_keeps_one_row_per_signal_program_and_date():
    days = [dt.date(2026, 3, d) for d in (15, 16, 17)]
    merged = None
    for i, day in enumerate(days):
        merged = merge_history(merged, audience(("SP1", "HUCK", SLOT - WEEK, float(i)), ("RJ", "HUCK", SLOT - WEEK, 9.0)), day)
    assert len(merged) == 2
    assert not merged.duplicated(["signal", "program_code", "exhibition_date"]).any()
    assert dict(zip(merged["signal"], merged["average_audience"], strict=True)) == {"SP1": 2.0, "RJ": 9.0}
