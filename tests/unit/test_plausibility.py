"""The gate's rules (airtime/plausibility.py) on small deliveries: each finds what it names,
says the numbers and the setting, and stays quiet at its threshold."""

from __future__ import annotations

import datetime as dt
import math

import duckdb
import pyarrow as pa
import pytest

from airtime.plausibility import Delivery, Finding, judge, judge_alone
from airtime.settings import Settings

DAY = dt.date(2026, 3, 2)  # a Monday
SETTINGS = Settings()


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def audience(con, name: str, rows: list[tuple[str, str, dt.date, float]]) -> str:
    con.register(name, pa.table({
        "signal": [r[0] for r in rows], "program_code": [r[1] for r in rows],
        "exhibition_date": pa.array([r[2] for r in rows], pa.date32()),
        "average_audience": pa.array([r[3] for r in rows], pa.float64())}))
    return name


def availability(con, name: str, rows: list[tuple[str, str, dt.date, int]]) -> str:
    con.register(name, pa.table({
        "signal": [r[0] for r in rows], "program_code": [r[1] for r in rows],
        "date": pa.array([r[2] for r in rows], pa.date32()),
        "available_time": pa.array([r[3] for r in rows], pa.int32())}))
    return name


def weekly(signal: str, program: str, values: list[float], last: dt.date = DAY - dt.timedelta(days=7)):
    return [(signal, program, last - dt.timedelta(days=7 * i), v) for i, v in enumerate(values)]


def slots(signal: str, program: str, first: dt.date, days: int, seconds: int = 60):
    return [(signal, program, first + dt.timedelta(days=i), seconds) for i in range(days)]


HISTORY = (weekly("SP1", "HUCK", [1_000_000 * (1 + 0.05 * math.sin(i)) for i in range(12)])
           + weekly("SP1", "VALE", [400_000 * (1 + 0.3 * math.sin(i)) for i in range(12)])
           + weekly("RJ", "HUCK", [700_000] * 12))
SLOTS = slots("SP1", "HUCK", DAY, 30) + slots("RJ", "HUCK", DAY, 30) + slots("SP1", "VALE", DAY, 30)


def reference(con, history=HISTORY, offered=SLOTS, day=DAY - dt.timedelta(days=1)) -> Delivery:
    return Delivery(day, audience(con, "ref_audience", history), availability(con, "ref_slots", offered),
                    audience(con, "ref_history", history))


def today(con, history=HISTORY, offered=SLOTS) -> Delivery:
    return Delivery(DAY, audience(con, "new_audience", history), availability(con, "new_slots", offered))


def rules(found: list[Finding]) -> list[str]:
    return [f.rule for f in found]


def test_the_same_delivery_again_finds_nothing(con):
    assert judge(con, SETTINGS, today(con), reference(con)) == []
    assert judge_alone(con, SETTINGS, today(con)) == []


def test_an_audience_far_outside_its_series_is_found_naming_the_settings(con):
    wild = [("SP1", "HUCK", DAY, 990e9), ("SP1", "HUCK", DAY - dt.timedelta(days=1), 1_000)]
    [finding] = judge(con, SETTINGS, today(con, HISTORY + wild), reference(con))
    assert finding.rule == "audience-outliers"
    assert finding.message.startswith("2 exhibitions have an audience more than 15 median absolute deviations")
    assert "SP1/HUCK 2026-03-02 990,000,000,000 (" in finding.message and "SP1/HUCK 2026-03-01 1,000 (" in finding.message
    assert "AIRTIME_DQ_AUDIENCE_OUTLIER_MADS=15, AIRTIME_DQ_AUDIENCE_MAD_FLOOR=0.25" in finding.message


def test_a_steady_series_is_judged_with_the_floor_not_its_tiny_deviation(con):
    """RJ/HUCK's history has no deviation at all: twice its audience is news, not an outlier
    (ln 2 = 0.69 < 15 x 0.25); e^4 = 55 times is one."""
    doubled = [("RJ", "HUCK", DAY, 1_400_000)]
    assert judge(con, SETTINGS, today(con, HISTORY + doubled), reference(con)) == []
    wild = [("RJ", "HUCK", DAY, 700_000 * math.exp(4))]
    assert rules(judge(con, SETTINGS, today(con, HISTORY + wild), reference(con))) == ["audience-outliers"]


def test_a_new_series_is_judged_against_its_signal(con):
    new = [("SP1", "NEWS", DAY, 500_000)]
    assert judge(con, SETTINGS, today(con, HISTORY + new), reference(con)) == []
    wild = [("SP1", "NEWS", DAY, 990e9)]
    [finding] = judge(con, SETTINGS, today(con, HISTORY + wild), reference(con))
    assert "SP1/NEWS 2026-03-02 990,000,000,000" in finding.message and "of its signal: a new series" in finding.message


def test_a_new_signal_is_judged_against_the_whole_history(con):
    assert judge(con, SETTINGS, today(con, HISTORY + [("PE1", "NEWS", DAY, 300_000)]), reference(con)) == []
    [finding] = judge(con, SETTINGS, today(con, HISTORY + [("PE1", "NEWS", DAY, 990e9)]), reference(con))
    assert "PE1/NEWS 2026-03-02 990,000,000,000" in finding.message and "of its history: a new signal" in finding.message


def test_outliers_up_to_the_tolerance_pass_and_one_the_history_holds_is_not_judged_again(con):
    wild = [("SP1", "HUCK", DAY, 990e9)]
    tolerant = SETTINGS.model_copy(update={"dq_max_audience_outliers": 1})
    assert judge(con, tolerant, today(con, HISTORY + wild), reference(con)) == []
    # accepted once, it is history: delivered again, it is not new
    assert judge(con, SETTINGS, today(con, HISTORY + wild), reference(con, HISTORY + wild)) == []


def test_a_signal_or_series_gone_from_the_audience_is_found(con):
    without_rj = [r for r in HISTORY if r[0] != "RJ"]
    found = judge(con, SETTINGS, today(con, without_rj), reference(con))
    assert "vanished-signals" in rules(found)
    assert "signals with audience before and none now: RJ (AIRTIME_DQ_MAX_VANISHED_SIGNALS=0)" in str(found)
    assert "1 of the 3 (signal, program) series of the delivery compared with have no audience now (33%" in str(found)


def test_upcoming_slots_collapsing_in_number_or_span_are_found(con):
    first_week = [s for s in SLOTS if s[2] < DAY + dt.timedelta(days=7)]
    found = judge(con, SETTINGS, today(con, offered=first_week), reference(con))
    assert rules(found) == ["row-count", "upcoming-slots", "upcoming-span", "available-time"]
    assert "the upcoming slots span 7 days (2026-03-02 .. 2026-03-08), 23% of the 30 days" in str(found)
    # about as many slots, on a third of the days: only the span
    extra = [(("SP1", "RJ")[i % 2], f"X{i}") for i in range(9)]
    before = SLOTS + [slot for series in extra for slot in slots(*series, DAY, 5)]
    now = [slot for series in [("SP1", "HUCK"), ("RJ", "HUCK"), ("SP1", "VALE"), *extra] for slot in slots(*series, DAY, 10)]
    assert rules(judge(con, SETTINGS, today(con, offered=now), reference(con, offered=before))) == ["upcoming-span"]


def test_one_signals_available_time_collapsing_is_found_though_the_total_holds(con):
    cut = [(s, p, d, 5 if s == "RJ" else t * 2) for s, p, d, t in SLOTS]
    [finding] = judge(con, SETTINGS, today(con, offered=cut), reference(con))
    assert finding.rule == "available-time" and "RJ 150 s of 1,800 s (8%)" in finding.message
    assert "all signals" not in finding.message and "AIRTIME_DQ_MIN_AVAILABLE_TIME_RATIO=0.7" in finding.message


def test_a_signal_whose_slots_all_moved_into_the_past_is_found(con):
    moved = [(s, p, d - dt.timedelta(days=365) if s == "RJ" else d, t) for s, p, d, t in SLOTS]
    found = {f.rule: f.message for f in judge(con, SETTINGS, today(con, offered=moved), reference(con))}
    assert "RJ 0 s of 1,800 s (0%)" in found["available-time"] and "vanished-signals" not in found


def test_past_slots_are_found_by_their_share_only(con):
    half = [(s, p, d - dt.timedelta(days=15), t) for s, p, d, t in SLOTS]  # 15 of each 30 before the day
    assert judge_alone(con, SETTINGS, today(con, offered=half)) == []  # 50%: at the threshold
    more = [(s, p, d - dt.timedelta(days=16), t) for s, p, d, t in SLOTS]
    [finding] = judge_alone(con, SETTINGS, today(con, offered=more))
    assert str(finding).startswith("past-slots: 48 of the 90 slots (53%) are dated before the delivery day 2026-03-02")


def test_an_empty_file_is_found_by_itself(con):
    assert rules(judge_alone(con, SETTINGS, today(con, offered=[]))) == ["no-rows"]
