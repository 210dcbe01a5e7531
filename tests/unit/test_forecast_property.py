"""The DuckDB forecast equals a naive pure-Python implementation on arbitrary inputs."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from tests.forecast_frames import compute_forecast, merge_history
from tests.naive_forecast import assert_same_forecast, naive_forecast, naive_merge

START = dt.date(2026, 1, 1)
# A small universe so keys collide: two pairs with history (plus one without), days on
# three weekdays over ten weeks, so slots often have more than 4 same-weekday exhibitions
# before them, some on or after their own date.
days = st.tuples(st.integers(0, 9), st.sampled_from([0, 1, 3])).map(
    lambda wd: START + dt.timedelta(days=7 * wd[0] + wd[1])
)


def keys(programs):
    return st.tuples(st.sampled_from(["SP1", "RJ"]), st.sampled_from(programs), days)


audiences = st.floats(min_value=0.0, max_value=4e7, allow_nan=False, allow_infinity=False)
UNIVERSE = [
    (signal, program, START + dt.timedelta(days=7 * week + day))
    for signal in ("SP1", "RJ") for program in ("HUCK", "VALE") for week in range(10) for day in (0, 1, 3)
]


@st.composite
def deliveries(draw) -> dict:
    """Each key of the universe present or not (dense on average: plain dictionaries
    strategies stay tiny and would rarely reach 4 exhibitions per weekday)."""
    present = draw(st.lists(st.booleans(), min_size=len(UNIVERSE), max_size=len(UNIVERSE)))
    values = draw(st.lists(audiences, min_size=len(UNIVERSE), max_size=len(UNIVERSE)))
    return {key: value for key, keep, value in zip(UNIVERSE, present, values, strict=True) if keep}


availabilities = st.dictionaries(keys(["HUCK", "VALE", "NEW"]), st.integers(1, 300), min_size=1, max_size=30)



def history_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=["signal", "program_code", "exhibition_date", "average_audience"])
    return frame.astype(
        {"signal": str, "program_code": str, "exhibition_date": "datetime64[us]", "average_audience": float}
    )


def delivery_frame(delivery: dict) -> pd.DataFrame:
    frame = history_frame((s, p, d, v) for (s, p, d), v in delivery.items())
    frame["program_start_time"] = pd.to_datetime(frame["exhibition_date"]).dt.tz_localize("UTC")
    return frame


def availability_frame(slots: dict) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(s, p, d, t) for (s, p, d), t in slots.items()],
        columns=["signal", "program_code", "date", "available_time"],
    )
    return frame.astype({"signal": str, "program_code": str, "date": "datetime64[us]", "available_time": "int32"})


@given(history=deliveries(), slots=availabilities)
def test_forecast_matches_naive_implementation(history, slots):
    exhibitions = [(s, p, d, v) for (s, p, d), v in history.items()]
    wanted = [(s, p, d, t) for (s, p, d), t in slots.items()]
    result = compute_forecast(history_frame(exhibitions), availability_frame(slots))
    assert_same_forecast(result, naive_forecast(exhibitions, wanted))


@given(runs=st.lists(deliveries(), min_size=1, max_size=4), slots=availabilities)
def test_forecast_on_history_merged_across_runs_matches_naive_implementation(runs, slots):
    merged = None
    for i, delivery in enumerate(runs):
        merged = merge_history(merged, delivery_frame(delivery), START + dt.timedelta(days=100 + i))
    exhibitions = naive_merge([(s, p, d, v) for (s, p, d), v in delivery.items()] for delivery in runs)
    assert len(merged) == len(exhibitions)
    wanted = [(s, p, d, t) for (s, p, d), t in slots.items()]
    result = compute_forecast(merged, availability_frame(slots))
    assert_same_forecast(result, naive_forecast(exhibitions, wanted))


@given(first=deliveries(), second=deliveries(), first_day=st.integers(0, 80), gap=st.integers(-3, 20))
def test_keyed_history_delta_equals_the_three_column_join(first, second, first_day, gap):
    """create_history_delta joins on one integer per key; the rows it keeps (kept, new,
    rewritten, with their values) are those of the join on the three key columns as written
    in tests/forecast_frames.py, whatever the dates (exhibitions after the run date, a previous
    history delivered on or after it)."""
    import duckdb

    from airtime.forecast import create_history_delta
    from tests.forecast_frames import three_column_delta_sql

    previous = merge_history(None, delivery_frame(first), START + dt.timedelta(days=first_day))
    run_date = START + dt.timedelta(days=first_day + gap)
    con = duckdb.connect()
    con.register("previous_df", previous)
    con.register("audience_df", delivery_frame(second))
    create_history_delta(con, "keyed", "previous_df", "audience_df", run_date)
    con.execute(f"CREATE TEMP TABLE written AS {three_column_delta_sql('previous_df', 'audience_df')}",
                {"run_date": run_date})
    for one, other in (("keyed", "written"), ("written", "keyed")):
        assert con.execute(f"SELECT count(*) FROM (SELECT * FROM {one} EXCEPT ALL SELECT * FROM {other})"
                           ).fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM keyed").fetchone() == con.execute("SELECT count(*) FROM written").fetchone()
