"""The rules of time (issue 21): what the delivery day allows. An exhibition after it is a bad
row, a date outside the settings' window is refused naming the window, a slot before it is
kept; and whatever the files hold, no forecast ever uses an exhibition dated after the
delivery day of the history it comes from."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airtime.settings import Settings
from airtime.validation import AUDIENCE, AVAILABILITY, DateWindow, read_file
from tests.forecast_frames import compute_forecast, merge_history
from tests.naive_forecast import assert_same_forecast, naive_forecast, naive_merge
from tests.unit.test_forecast_property import availability_frame, delivery_frame
from tests.unit.test_ingest_rules import AUD_HEADER, AVA_HEADER, write

DAY = dt.date(2020, 7, 22)
WINDOW = DateWindow(DAY, dt.date(1990, 1, 1), 730)


def problems(path, spec, window: DateWindow = WINDOW) -> list[tuple[int, str, str, str]]:
    result = read_file(path, path.name, spec.within(window))
    return [(p.line, p.column, p.value, p.rule) for p in result.problems]


def exhibitions(tmp_path, *dates: str):
    return write(tmp_path, "program_audience.csv", AUD_HEADER,
                 *(f"SP1,HUCK,{d},2020-06-05T15:01:00.000Z,933891.96".encode() for d in dates))


def slots(tmp_path, *dates: str):
    return write(tmp_path, "inventory_availability.csv", AVA_HEADER, *(f"SP1;HUCK;{d};10".encode() for d in dates))


def test_an_exhibition_after_the_delivery_day_is_a_bad_row_naming_its_line(tmp_path):
    path = exhibitions(tmp_path, "2020-07-21", "2020-07-22", "2020-07-23", "23/07/2020")
    rule = "is after the delivery day 2020-07-22: a program that has not aired has no measured audience"
    assert problems(path, AUDIENCE) == [(4, "exhibition_date", "2020-07-23", rule),
                                        (5, "exhibition_date", "23/07/2020", rule)]


@pytest.mark.parametrize(("spec", "value"), [(AUDIENCE, "1989-12-31"), (AUDIENCE, "0000-01-01"),
                                             (AUDIENCE, "9999-12-31"), (AVAILABILITY, "01/01/0001"),
                                             (AVAILABILITY, "31/12/1989"), (AVAILABILITY, "23/07/2022"),
                                             (AVAILABILITY, "31/12/9999")])
def test_a_date_outside_the_window_is_refused_naming_the_window(tmp_path, spec, value):
    path = exhibitions(tmp_path, value) if spec is AUDIENCE else slots(tmp_path, value)
    [(line, column, found, rule)] = problems(path, spec)
    assert (line, found) == (2, value)
    assert rule == ("must be within 1990-01-01 .. 2022-07-22, the dates a delivery of 2020-07-22 may hold"
                    " (AIRTIME_DQ_EARLIEST_DATE, AIRTIME_DQ_HORIZON_DAYS=730)")


def test_the_window_is_the_settings(tmp_path):
    settings = Settings(dq_earliest_date=dt.date(2020, 1, 1), dq_horizon_days=7)
    window = DateWindow(DAY, settings.dq_earliest_date, settings.dq_horizon_days)
    path = slots(tmp_path, "31/12/2019", "01/01/2020", "29/07/2020", "30/07/2020")
    assert [(line, rule.split(",")[0]) for line, _, _, rule in problems(path, AVAILABILITY, window)] == [
        (2, "must be within 2020-01-01 .. 2020-07-29"), (5, "must be within 2020-01-01 .. 2020-07-29")]


def test_a_slot_before_the_delivery_day_is_kept(tmp_path):
    path = slots(tmp_path, "21/07/2020", "2020-07-01", "22/07/2020")
    result = read_file(path, path.name, AVAILABILITY.within(WINDOW))
    assert result.problem_count == 0 and result.rows.num_rows == 3


def test_without_a_window_the_rules_of_a_file_alone_still_hold(tmp_path):
    """read_file with the bare specs (no delivery day) checks no dates against one."""
    path = exhibitions(tmp_path, "9999-12-31")
    assert read_file(path, path.name, AUDIENCE).problem_count == 0


# -- the forecast never sees an exhibition later than its history's delivery day ----------

START = dt.date(2026, 1, 5)  # a Monday
days = st.integers(0, 69).map(lambda n: START + dt.timedelta(days=n))
deliveries = st.dictionaries(st.tuples(st.sampled_from(["SP1", "RJ"]), st.sampled_from(["HUCK", "VALE"]), days),
                             st.floats(0.0, 4e7, allow_nan=False), max_size=40)
slot_sets = st.dictionaries(st.tuples(st.sampled_from(["SP1", "RJ"]), st.sampled_from(["HUCK", "VALE"]), days),
                            st.integers(1, 300), min_size=1, max_size=20)


# 40 examples (~0.1 s each) in every profile: the CI profile's 200 would add 20 s to a tight budget
@settings(max_examples=40)
@given(runs=st.lists(st.tuples(days, deliveries), min_size=1, max_size=3, unique_by=lambda run: run[0]),
       wanted=slot_sets)
def test_the_forecast_never_sees_an_exhibition_dated_after_its_delivery_day(runs, wanted):
    """Deliveries of distinct days holding exhibitions on any day, some after their own
    delivery day (which ingest would refuse): the forecast from their merged history is the
    forecast from the exhibitions each delivery held up to its day, as if the others never
    were. (A delivery of the same day again replaces the day's whole delivery: test_forecast.)"""
    runs = sorted(runs, key=lambda run: run[0])
    merged = None
    for run_date, delivery in runs:
        merged = merge_history(merged, delivery_frame(delivery), run_date)
    assert (merged.empty or merged["exhibition_date"].dt.date.max() <= runs[-1][0])
    aired = [[(s, p, d, v) for (s, p, d), v in delivery.items() if d <= run_date] for run_date, delivery in runs]
    exhibitions_ = naive_merge(aired)
    slot_rows = [(s, p, d, t) for (s, p, d), t in wanted.items()]
    assert_same_forecast(compute_forecast(merged, availability_frame(wanted)), naive_forecast(exhibitions_, slot_rows))
