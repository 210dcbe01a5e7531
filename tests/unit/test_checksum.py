"""The row checksum (airtime/checksum.py): DuckDB computes exactly the plain-Python
definition, on edge values and on generated tables, and the checksum changes when a row is
lost, added, duplicated, altered, or when two rows swap a value."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airtime import checksum
from airtime.schema import DATA_TABLES
from tests.checksum_rows import arrow_table, edge_rows

TABLES = list(DATA_TABLES)


def duckdb_figures(table, rows, version=checksum.CURRENT) -> tuple[int, int]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", arrow_table(table, rows))
    rows_, total = con.execute(checksum.duckdb_select(table, "t", version=version)).fetchone()
    return int(rows_), int(total)


@pytest.mark.parametrize("table", TABLES)
def test_duckdb_and_python_agree_on_every_edge_value(table):
    rows = edge_rows(table)
    assert duckdb_figures(table, rows) == checksum.python_figures(table, rows)


@pytest.mark.parametrize("table", TABLES)
def test_an_empty_table_has_checksum_zero(table):
    assert duckdb_figures(table, []) == checksum.python_figures(table, []) == (0, 0)


def test_the_checksum_fits_a_signed_64_bit_integer_and_uses_62_bits():
    total = checksum.python_figures("forecast", edge_rows("forecast", 500))[1]
    assert 0 <= total < 2**62


def test_an_unknown_version_is_refused():
    with pytest.raises(ValueError, match="unknown checksum version 9"):
        checksum.duckdb_select("audience", "t", version=9)


# ---- generated tables ------------------------------------------------------------------

_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(min_value=-1e6, max_value=1e6).map(lambda x: round(x, 4)))
_codes = st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["SP", "RJ", "KVOB"]))
_dates = st.one_of(st.none(), st.dates(min_value=dt.date(1800, 1, 1), max_value=dt.date(2999, 12, 31)))
_times = st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1800, 1, 1), max_value=dt.datetime(2999, 1, 1),
                                           timezones=st.just(dt.UTC)))
_ints = st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1))
_small = st.one_of(st.none(), st.integers(-128, 127))

FORECAST_ROW = st.fixed_dictionaries({
    "signal": _codes, "program_code": _codes, "date": _dates, "weekday": _small,
    "available_time": _ints, "predicted_audience": _floats, "history_size": _small,
})
AUDIENCE_ROW = st.fixed_dictionaries({
    "signal": _codes, "program_code": _codes, "exhibition_date": _dates,
    "program_start_time": _times, "average_audience": _floats,
})
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(FORECAST_ROW, max_size=12))
def test_duckdb_and_python_agree_on_generated_forecasts(rows):
    assert duckdb_figures("forecast", rows) == checksum.python_figures("forecast", rows)


@SETTINGS
@given(st.lists(AUDIENCE_ROW, max_size=12))
def test_duckdb_and_python_agree_on_generated_audiences(rows):
    assert duckdb_figures("audience", rows) == checksum.python_figures("audience", rows)


def _same(a: object, b: object) -> bool:
    """Equal as the checksum sees values: NaN is NaN, -0.0 is 0.0, floats to the thousandth."""
    if isinstance(a, float) and isinstance(b, float):
        if a != a or b != b:
            return a != a and b != b
        if abs(a) < 1e15 and abs(b) < 1e15:
            return checksum._round_half_away(a * 1000) == checksum._round_half_away(b * 1000)
    return a == b


@SETTINGS
@given(st.lists(AUDIENCE_ROW, min_size=2, max_size=10), st.data())
def test_a_lost_duplicated_altered_or_swapped_row_changes_the_figures(rows, data):
    before = checksum.python_figures("audience", rows)
    i = data.draw(st.integers(0, len(rows) - 1))
    j = data.draw(st.integers(0, len(rows) - 1).filter(lambda n: n != i))

    assert checksum.python_figures("audience", rows[:i] + rows[i + 1:]) != before  # lost
    assert checksum.python_figures("audience", rows + [rows[i]]) != before  # duplicated
    # duplicated one row and lost another: the count stays, the checksum must move
    replaced = rows[:j] + rows[j + 1:] + [rows[i]]
    if not all(_same(rows[j][k], rows[i][k]) for k in rows[i]):
        assert checksum.python_figures("audience", replaced)[1] != before[1]

    column = data.draw(st.sampled_from(list(rows[i])))
    value = data.draw(AUDIENCE_ROW)[column]
    if not _same(value, rows[i][column]):  # altered
        altered = [dict(r) for r in rows]
        altered[i][column] = value
        assert checksum.python_figures("audience", altered) != before
    if not _same(rows[i][column], rows[j][column]) and not all(
            _same(rows[i][k], rows[j][k]) for k in rows[i] if k != column):  # swapped
        swapped = [dict(r) for r in rows]
        swapped[i][column], swapped[j][column] = rows[j][column], rows[i][column]
        assert checksum.python_figures("audience", swapped) != before


def test_version_1_is_still_computed_for_old_manifests():
    rows = edge_rows("availability")
    assert duckdb_figures("availability", rows, version=1) != duckdb_figures("availability", rows, version=2)
    assert duckdb_figures("availability", rows, version=1)[0] == len(rows)


def arrow_figures(table, rows, batch_rows=7) -> tuple[int, int]:
    figures = checksum.ArrowFigures(table)
    for batch in arrow_table(table, rows).to_batches(max_chunksize=batch_rows):
        figures.add(batch)
    return figures.figures


@pytest.mark.parametrize("table", TABLES)
def test_arrow_and_python_agree_on_every_edge_value(table):
    rows = edge_rows(table)
    assert arrow_figures(table, rows) == checksum.python_figures(table, rows)


def test_arrow_hashes_dictionary_encoded_codes_as_their_values():
    rows = edge_rows("audience")
    figures = checksum.ArrowFigures("audience")
    data = arrow_table("audience", rows)
    for name in ("signal", "program_code"):
        data = data.set_column(data.schema.get_field_index(name), name, data.column(name).dictionary_encode())
    for batch in data.to_batches(max_chunksize=11):
        figures.add(batch)
    assert figures.figures == checksum.python_figures("audience", rows)


@SETTINGS
@given(st.lists(AUDIENCE_ROW, max_size=12))
def test_arrow_and_python_agree_on_generated_audiences(rows):
    assert arrow_figures("audience", rows) == checksum.python_figures("audience", rows)


@SETTINGS
@given(st.lists(FORECAST_ROW, max_size=12))
def test_arrow_and_python_agree_on_generated_forecasts(rows):
    assert arrow_figures("forecast", rows) == checksum.python_figures("forecast", rows)


@pytest.mark.parametrize("lines", [b"", b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,bad",
                                   b"SP1,HUCK,2020-06-05,2020-06-05T15:01:00Z,7"])
def test_ingest_figures_computed_while_writing_are_duckdbs_figures_of_the_file(tmp_path, lines):
    """Clean, with a bad row set aside, and with a duplicate key (the file is rewritten)."""
    from airtime.artifacts import figures_of_parquet
    from airtime.validation import AUDIENCE, read_file
    from tests.unit.test_ingest_rules import audience

    path = audience(tmp_path, lines) if lines else audience(tmp_path)
    out = tmp_path / "rows.parquet"
    result = read_file(path, path.name, AUDIENCE, out)
    if result.figures is not None:
        assert result.figures == figures_of_parquet(out, "audience")
    assert lines != b"" or result.figures is not None  # the usual case spares the second pass


def test_a_load_manifest_from_before_versions_reads_as_version_1():
    from airtime.manifest import Manifest
    from steps.load import Loaded
    from steps.scaffold import from_manifest

    old = Manifest(step="load", run_date=dt.date(2026, 1, 2), inputs={},
                   extra={"warehouse_digest": "d", "expected": {"audience": [3, 42], "forecast": [1, 7]}})
    loaded = from_manifest(Loaded, Manifest.from_json(old.to_json()))
    assert loaded is not None and loaded.versions == {"audience": 1, "forecast": 1}


def test_the_warehouse_reads_a_day_back_in_the_version_its_manifest_names(tmp_path):
    from airtime.duckdb_warehouse import DuckDBWarehouse
    from tests.warehouse_backends import run_load, write_run_files

    day = dt.date(2026, 1, 2)
    files = write_run_files(tmp_path / "files", day)
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.load_run(run_load(day, files))
    con = duckdb.connect()
    for version in checksum.VERSIONS:
        expected = {t: con.execute(checksum.duckdb_select(t, "read_parquet($p)", version=version),
                                   {"p": str(files[t])}).fetchone() for t in DATA_TABLES}
        found = warehouse.figures(day, "digest-1", dict.fromkeys(DATA_TABLES, version))
        assert {t: (f.rows, f.checksum) for t, f in found.items()} == expected
