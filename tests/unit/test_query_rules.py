"""The query rules, declared once in airtime/query_rules.py: what each accepts and refuses
(the paths that use them are tests/integration/test_query_mistakes_alike.py's)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from airtime.query_rules import InvalidQueryError, Violations, closest, period_query, program_query
from airtime.run_codes import Series, codes_of_table
from airtime.warehouse import SlotFilter

D = dt.date(2026, 12, 1)


def _violations(call, *args, **kwargs) -> list[tuple[str, str]]:  # noqa: ANN001, ANN002, ANN003
    with pytest.raises(InvalidQueryError) as caught:
        call(*args, **kwargs)
    return caught.value.violations


def test_a_period_is_both_ends_inclusive_with_its_codes() -> None:
    assert period_query(D, D + dt.timedelta(days=6), "SP1", "_999", max_days=7) == \
        SlotFilter(D, D + dt.timedelta(days=6), "SP1", "_999")
    assert period_query(D, D, "", "", max_days=1) == SlotFilter(D, D)  # empty codes: not given


@pytest.mark.parametrize("end, max_days, why", [
    (D - dt.timedelta(days=1), 366, f"{D - dt.timedelta(days=1)} is before start_date {D}"),
    (D + dt.timedelta(days=7), 7, "range of 8 days is longer than the maximum of 7"),
])
def test_a_range_ends_after_its_start_and_within_the_maximum(end, max_days, why) -> None:  # noqa: ANN001
    assert _violations(period_query, D, end, max_days=max_days) == [("end_date", why)]
    assert _violations(program_query, "HUCK", start=D, end=end, max_days=max_days) == [("end_date", why)]


def test_without_a_maximum_only_the_order_is_checked() -> None:
    """The command line's --server: the server applies its own maximum."""
    assert period_query(D, D + dt.timedelta(days=4000), max_days=None).end == D + dt.timedelta(days=4000)
    assert _violations(period_query, D, D - dt.timedelta(days=1), max_days=None)[0][0] == "end_date"


def test_a_program_query_takes_a_date_a_range_or_neither() -> None:
    assert program_query("HUCK", date=D, max_days=1) == SlotFilter(D, D, None, "HUCK")
    assert program_query("HUCK", start=D, end=D, signal="BH", max_days=1) == SlotFilter(D, D, "BH", "HUCK")
    assert program_query("HUCK", max_days=1) == SlotFilter(None, None, None, "HUCK")  # every slot
    assert _violations(program_query, "HUCK", date=D, start=D, end=D, max_days=1) == [
        ("start_date", "give date, or start_date and end_date, not both"),
        ("end_date", "give date, or start_date and end_date, not both")]
    assert _violations(program_query, "HUCK", end=D, max_days=1) == [
        ("start_date", "required with end_date (YYYY-MM-DD)")]
    assert _violations(program_query, "", date=D, max_days=1) == [("program_code", "required")]


@pytest.mark.parametrize("code", ["HU CK", "HUCK;DROP", "X" * 33, "ção", "a.b"])
def test_a_code_outside_the_delivery_pattern_is_malformed(code: str) -> None:
    assert _violations(period_query, D, D, signal=code, max_days=1) == [
        ("signal", f"malformed code {code[:40]!r}: expected 1-32 of A-Z a-z 0-9 _ -")]


def test_every_broken_rule_is_reported_at_once_but_a_field_once() -> None:
    found = _violations(period_query, None, D, "?", "!", max_days=1)
    assert [field for field, _ in found] == ["start_date", "signal", "program_code"]
    errors = Violations()
    errors.add("end_date", "'2026-02-30' is not a calendar date")
    period_query(D, None, max_days=1, errors=errors)  # adds "required": the field has its violation
    assert errors.found == [("end_date", "'2026-02-30' is not a calendar date")]


def test_the_closest_codes_ignore_case_and_keep_the_runs_spelling() -> None:
    programs = ["HUCK", "PTV1", "VALE", "_999", "HUCKS"]
    assert closest("HUKC", programs) == ["HUCK", "HUCKS"]
    assert closest("huck", programs)[0] == "HUCK"
    assert closest("ZZZZZZ", programs) == []


def test_codes_of_a_table_count_the_slots_of_each_pair_in_order() -> None:
    table = pa.table({"signal": ["SP1", "BH", "SP1", "SP1"], "program_code": ["HUCK", "HUCK", "VALE", "HUCK"]})
    codes = codes_of_table(D, table)
    assert codes.series == (Series("BH", "HUCK", 1), Series("SP1", "HUCK", 2), Series("SP1", "VALE", 1))
    assert (codes.codes("signal"), codes.codes("program_code")) == (["BH", "SP1"], ["HUCK", "VALE"])
