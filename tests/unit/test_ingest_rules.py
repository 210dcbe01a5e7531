"""Ingest validation: one test per rule, each checking the report names file, line,
column, value and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from airtime.errors import InputError
from airtime.validation import AUDIENCE, AVAILABILITY, MAX_SHOWN, read_file

BOM = b"\xef\xbb\xbf"
AUD_HEADER = b"signal,program_code,exhibition_date,program_start_time,average_audience"
AVA_HEADER = b"signal;program_code;date;available_time"
GOOD_AUD = b"SP1,HUCK,2020-06-05,2020-06-05T15:01:00.000Z,933891.96"
GOOD_AVA = b"SP1;HUCK;25/07/2020;10"


def write(tmp_path: Path, name: str, *lines: bytes, bom: bool = True, eol: bytes = b"\r\n") -> Path:
    path = tmp_path / name
    path.write_bytes((BOM if bom else b"") + eol.join(lines) + eol)
    return path


def audience(tmp_path: Path, *rows: bytes) -> Path:
    return write(tmp_path, "program_audience.csv", AUD_HEADER, GOOD_AUD, *rows)


def availability(tmp_path: Path, *rows: bytes) -> Path:
    return write(tmp_path, "inventory_availability.csv", AVA_HEADER, GOOD_AVA, *rows)


def only_problem(path: Path, spec):
    result = read_file(path, path.name, spec)
    assert result.problem_count == 1, [str(p) for p in result.problems]
    return result.problems[0]


def test_reads_both_real_formats_with_bom_crlf_and_date_styles(tmp_path):
    aud = read_file(audience(tmp_path, b"RJ,PTV1,2020-06-06,2020-06-07T01:30:00.000Z,1.5"),
                    "a.csv", AUDIENCE)
    ava = read_file(availability(tmp_path, b"RJ;PTV1;2020-07-26;0"), "b.csv", AVAILABILITY)
    assert aud.problem_count == 0 and aud.rows.num_rows == 2
    assert ava.problem_count == 0 and ava.rows.num_rows == 2
    assert {str(d) for d in ava.rows.column("date").to_pylist()} == {"2020-07-25", "2020-07-26"}
    late = [r for r in aud.rows.to_pylist() if r["signal"] == "RJ"][0]
    # the UTC start time is kept as such; the local exhibition date is its own column
    assert late["program_start_time"].isoformat() == "2020-06-07T01:30:00+00:00"
    assert str(late["exhibition_date"]) == "2020-06-06"


def test_accepts_files_without_bom_and_with_lf(tmp_path):
    path = write(tmp_path, "x.csv", AVA_HEADER, GOOD_AVA, bom=False, eol=b"\n")
    assert read_file(path, "x.csv", AVAILABILITY).rows.num_rows == 1


def test_refuses_an_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty.csv.*is empty"):
        read_file(path, "empty.csv", AUDIENCE)


def test_refuses_a_file_with_only_a_bom(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(BOM)
    with pytest.raises(InputError, match="is empty"):
        read_file(path, "bom.csv", AUDIENCE)


def test_refuses_a_header_without_rows(tmp_path):
    path = write(tmp_path, "h.csv", AUD_HEADER)
    with pytest.raises(InputError, match="line 2.*no data rows"):
        read_file(path, "h.csv", AUDIENCE)


def test_refuses_a_wrong_header_naming_the_expected_one(tmp_path):
    path = write(tmp_path, "h.csv", b"signal,program,exhibition_date,program_start_time,average_audience", GOOD_AUD)
    with pytest.raises(InputError) as exc:
        read_file(path, "h.csv", AUDIENCE)
    assert "line 1, column header" in str(exc.value)
    assert "signal,program_code,exhibition_date" in str(exc.value)


def test_refuses_a_file_that_is_not_utf8_naming_the_line(tmp_path):
    path = write(tmp_path, "latin.csv", AUD_HEADER, GOOD_AUD, "SP1,S\u00c3O,2020-06-05,2020-06-05T15:01:00Z,1".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin.csv: line 3: is not UTF-8"):
        read_file(path, "latin.csv", AUDIENCE)


@pytest.mark.parametrize(
    ("row", "column", "value", "rule"),
    [
        (b"SP1,HUCK,2020-13-05,2020-06-05T15:01:00.000Z,1", "exhibition_date", "2020-13-05", "must be a date"),
        (b"SP1,HUCK,05-06-2020,2020-06-05T15:01:00.000Z,1", "exhibition_date", "05-06-2020", "must be a date"),
        (b"SP1,HUCK,2020-06-06,2020-06-05 15:01,1", "program_start_time", "2020-06-05 15:01", "ISO-8601 UTC"),
        (b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00-03:00,1", "program_start_time", "2020-06-05T15:01:00-03:00",
         "ISO-8601 UTC"),
        (b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,-3", "average_audience", "-3", "must be >= 0"),
        (b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,NaN", "average_audience", "NaN", "finite number"),
        (b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,inf", "average_audience", "inf", "finite number"),
        (b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,lots", "average_audience", "lots", "finite number"),
        (b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,", "average_audience", "", "is required"),
        (b"SP 1,HUCK,2020-06-06,2020-06-05T15:01:00Z,1", "signal", "SP 1", "letters, digits"),
        (b",HUCK,2020-06-06,2020-06-05T15:01:00Z,1", "signal", "", "is required"),
    ],
)
def test_audience_rule_names_line_column_value_and_rule(tmp_path, row, column, value, rule):
    problem = only_problem(audience(tmp_path, row), AUDIENCE)
    assert (problem.file, problem.line, problem.column, problem.value) == (
        "program_audience.csv", 3, column, value)
    assert rule in problem.rule
    assert str(problem).startswith(f"program_audience.csv: line 3, column {column}, value {value!r}:")


@pytest.mark.parametrize(
    ("row", "column", "value", "rule"),
    [
        (b"SP1;HUCK;26/07/2020;3601", "available_time", "3601", "between 0 and 3600"),
        (b"SP1;HUCK;26/07/2020;-1", "available_time", "-1", "between 0 and 3600"),
        (b"SP1;HUCK;26/07/2020;10.5", "available_time", "10.5", "whole number"),
        (b"SP1;HUCK;31/02/2020;10", "date", "31/02/2020", "must be a date"),
    ],
)
def test_availability_rule_names_line_column_value_and_rule(tmp_path, row, column, value, rule):
    problem = only_problem(availability(tmp_path, row), AVAILABILITY)
    assert (problem.line, problem.column, problem.value) == (3, column, value)
    assert rule in problem.rule


def test_duplicate_key_points_at_the_first_occurrence(tmp_path):
    problem = only_problem(availability(tmp_path, b"RJ;X;26/07/2020;1", GOOD_AVA), AVAILABILITY)
    assert problem.line == 4
    assert "duplicate key (signal, program_code, date): first seen on line 2" in problem.rule


def test_a_row_with_the_wrong_number_of_fields_is_reported(tmp_path):
    problem = only_problem(availability(tmp_path, b"SP1;HUCK;26/07/2020"), AVAILABILITY)
    assert problem.line == 3 and "3 fields" in problem.rule and "expected 4" in problem.rule


def test_a_blank_line_in_the_middle_is_reported(tmp_path):
    problem = only_problem(availability(tmp_path, b"", b"SP1;HUCK;26/07/2020;5"), AVAILABILITY)
    assert problem.line == 3


def test_report_shows_the_first_problems_and_counts_all(tmp_path):
    rows = [f"SP1;HUCK;{d:02d}/08/2020;9999".encode() for d in range(1, 31)]
    result = read_file(availability(tmp_path, *rows), "x.csv", AVAILABILITY)
    assert result.problem_count == 30
    assert len(result.problems) == MAX_SHOWN
    assert [p.line for p in result.problems] == list(range(3, 3 + MAX_SHOWN))
    assert result.bad_row_count == 30 and result.rows.num_rows == 1


# values at the edges of what a parser takes: spaces, signs, exponents, hex, underscores,
# special floats, impossible dates and times, leap days, year 0, hour 24, leap seconds
ODD_VALUES = {
    "signal": ["SP1", "sp_1-X", "", " SP1", "SP1 ", "S P", "SÃO", "A" * 32, "A" * 33, '"SP1"', "SP1\x1f", "１"],
    "exhibition_date": ["2026-05-16", "2024-02-29", "2026-02-29", "2026-02-30", "2026-13-01", "2026-00-10",
                        "0000-01-01", "0001-01-01", "9999-12-31", "2026-5-16", " 2026-05-16", "2026-05-16 ",
                        "16/05/2026", "2026-05-16T00:00", "+2026-05-16", "２026-05-16"],
    "program_start_time": ["2026-05-16T16:24:00.000Z", "2026-05-16T16:24:00Z", "2026-05-16T16:24Z",
                           "2026-05-16T16:24:00.123456Z", "2026-05-16T16:24:00.1234567Z",
                           "2026-05-16T16:24:00+00:00", "2026-05-16T16:24:00+0000", "2026-05-16T16:24:00+01:00",
                           "2026-05-16T24:00:00.000Z", "2026-05-16T23:59:60.000Z", "2026-05-16T23:60:00.000Z",
                           "2026-02-29T10:00:00Z", "2024-02-29T10:00:00Z", "0000-01-01T00:00:00Z",
                           "9999-12-31T23:59:59.999Z", "2026-05-16 16:24:00Z", "2026-05-16T16:24:00",
                           " 2026-05-16T16:24:00Z", "1969-12-31T23:59:59.999Z"],
    "average_audience": ["1", "1.5", " 1.5", "1.5 ", "+1.5", "-0", "-0.0", "-1", ".5", "5.", "1e5", "1E5", "1e+5",
                         "1e-5", "0x10", "0x1p3", "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "1e400",
                         "1_000", "1,5", "", "1e", "e5", "--1", "1.5.5", "0001.5", "1d", "\t1", "１", "4.9e-324",
                         "9007199254740993", "0.1000000000000000055511151231257827", "1e12", "1000000000000.0001",
                         "1.7976931348623157e308", "+.5", "1e0005", '"1.5"'],
}


@pytest.mark.parametrize("name", sorted(ODD_VALUES))
def test_arrow_fast_parse_agrees_with_sql(name):
    """Ingest's Arrow kernels (`_arrow_parse`) accept only what the SQL PARSE and checks
    accept, with the same typed value; anything else they flag or leave to the SQL."""
    import pyarrow as pa

    from airtime.artifacts import scratch_connection
    from airtime.validation import _arrow_parse, _parse

    column = next(c for c in AUDIENCE.columns if c.name == name)
    con = scratch_connection(keep_order=True)
    taken = 0
    for value in ODD_VALUES[name]:
        values = pa.array([value], pa.string())
        fast = _arrow_parse(values, column)
        sql_typed, sql_bad = _parse(con, values, column)
        if fast is None:
            continue  # the SQL decides, as before
        typed, bad = fast
        if not bad[0]:
            taken += 1
            assert not sql_bad[0], f"{value!r}: Arrow accepts what the SQL refuses"
            if column.column.kind != "string":
                assert typed.cast(column.column.arrow_type)[0] == sql_typed[0], value
    assert taken >= 2  # the common forms do take the fast path
    # one bad value in a block: the whole column of that block goes to the SQL, or is flagged
    block = pa.array(ODD_VALUES[name], pa.string())
    fast = _arrow_parse(block, column)
    if fast is not None:
        assert fast[1].sum() >= _parse(con, block, column)[1].sum()
    con.close()
