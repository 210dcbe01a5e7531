"""What an attack on ingest found, closed: each hostile input gets a report naming its
line (or a refusal naming the file), never a traceback, an overflow or an echo of a whole
file. Also the two-pass reader's bookkeeping: line numbers stay exact around lines the
fast pass set aside."""

from __future__ import annotations

import duckdb
import pytest

from airtime import checksum
from airtime.errors import InputError
from airtime.store import LocalStore
from airtime.validation import AUDIENCE, AVAILABILITY, MAX_QUOTED, read_file
from tests.unit.test_ingest_rules import AUD_HEADER, AVA_HEADER, GOOD_AUD, GOOD_AVA, audience, availability, write


def problems(path, spec):
    result = read_file(path, path.name, spec)
    return result, [(p.line, p.column, p.value) for p in result.problems], [p.rule for p in result.problems]


@pytest.mark.parametrize(("value", "rule"), [
    (b"1e13", "must be at most 1e+12"),
    (b"9300000000000000", "must be at most 1e+12"),
    (b"1e309", "must be a finite number"),
])
def test_an_audience_too_large_for_the_checksum_is_refused_with_its_line(tmp_path, value, rule):
    path = audience(tmp_path, b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z," + value)
    result, where, rules = problems(path, AUDIENCE)
    assert where == [(3, "average_audience", value.decode())] and rule in rules[0]
    assert result.rows.num_rows == 1


def test_the_largest_accepted_audience_is_kept(tmp_path):
    path = audience(tmp_path, b"SP1,HUCK,2020-06-06,2020-06-05T15:01:00Z,1000000000000")
    assert read_file(path, path.name, AUDIENCE).rows.num_rows == 2


@pytest.mark.parametrize("version", checksum.VERSIONS)
@pytest.mark.parametrize("value", ["1e300", "-1e300", "'inf'", "'-inf'", "'nan'", "9.3e15", "NULL"])
def test_the_checksum_cannot_overflow(value, version):
    con = duckdb.connect()
    con.execute("CREATE TABLE f AS SELECT 'SP1' AS signal, 'HUCK' AS program_code, DATE '2020-07-25' AS date,"
                f" 5::TINYINT AS weekday, 10 AS available_time, CAST({value} AS DOUBLE) AS predicted_audience,"
                " 4::TINYINT AS history_size")
    rows, total = con.execute(checksum.duckdb_select("forecast", "f", version=version)).fetchone()
    assert rows == 1 and isinstance(total, int)


def test_the_version_1_checksum_of_ordinary_values_is_unchanged():
    """Manifests and the ledger of earlier runs hold version 1 checksums: its definition of
    values below 1e15 must not move (this is the formula they were written with)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE a AS SELECT * FROM (VALUES ('SP1', 'HUCK', DATE '2020-06-05',"
                " TIMESTAMPTZ '2020-06-05 15:01:00+00', 933891.9638554216::DOUBLE), ('RJ', 'X', DATE '2020-06-06',"
                " TIMESTAMPTZ '2020-06-07 01:30:00+00', 0.0005::DOUBLE)) t(signal, program_code, exhibition_date,"
                " program_start_time, average_audience)")
    old = con.execute(
        "SELECT bit_xor(('0x' || substr(md5(signal || '|' || program_code || '|' || strftime(exhibition_date,"
        " '%Y-%m-%d') || '|' || CAST(epoch_ms(program_start_time) AS VARCHAR) || '|' || CAST(CAST(round("
        "average_audience * 1000) AS BIGINT) AS VARCHAR)), 1, 15))::BIGINT) FROM a").fetchone()[0]
    assert con.execute(checksum.duckdb_select("audience", "a", version=1)).fetchone() == (2, old)


def test_a_unit_separator_byte_in_a_data_line_is_a_bad_value_on_its_line(tmp_path):
    path = availability(tmp_path, b"SP1;HU\x1fCK;26/07/2020;10")
    _, where, rules = problems(path, AVAILABILITY)
    assert where == [(3, "program_code", "HU\x1fCK")] and "letters, digits" in rules[0]


def test_a_file_with_cr_only_line_endings_is_not_echoed_whole(tmp_path):
    rows = [GOOD_AUD] * 5000
    path = write(tmp_path, "program_audience.csv", AUD_HEADER, *rows, eol=b"\r")
    with pytest.raises(InputError) as exc:
        read_file(path, path.name, AUDIENCE)
    message = str(exc.value)
    assert "line 1, column header" in message and len(message) < 3 * MAX_QUOTED + 200
    assert "characters)" in message


def test_a_huge_value_is_quoted_cut_short(tmp_path):
    path = availability(tmp_path, b"SP1;" + b"H" * 100_000 + b";26/07/2020;10")
    result, where, _ = problems(path, AVAILABILITY)
    assert where[0][:2] == (3, "program_code")
    assert len(str(result.problems[0])) < MAX_QUOTED + 200


def test_a_symbolic_link_out_of_the_source_folder_is_refused(tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    source = tmp_path / "source"
    source.mkdir()
    (source / "program_audience.csv").symlink_to(outside)
    store = LocalStore(source)
    for read in (store.identity, store.read_bytes, lambda key: store.fetch(key).__enter__()):
        with pytest.raises(InputError, match="program_audience.csv: refused, it resolves outside") as exc:
            read("program_audience.csv")
        assert "root:x" not in str(exc.value)


def test_a_symbolic_link_inside_the_source_folder_is_read(tmp_path):
    (tmp_path / "real.csv").write_bytes(b"x")
    (tmp_path / "program_audience.csv").symlink_to(tmp_path / "real.csv")
    assert LocalStore(tmp_path).read_bytes("program_audience.csv") == b"x"


def test_line_numbers_stay_exact_after_a_row_with_the_wrong_field_count(tmp_path):
    path = availability(tmp_path, b"SP1;A;26/07/2020", b"SP1;B;26/07/2020;1", b"SP1;C;26/07/2020;9999",
                        b"SP1;B;26/07/2020;2")
    result, where, rules = problems(path, AVAILABILITY)
    assert [w[0] for w in where] == [3, 5, 6]
    assert "expected 4" in rules[0] and "between 0 and 3600" in rules[1]
    assert "first seen on line 4" in rules[2]
    assert result.rows.column("program_code").to_pylist() == ["HUCK", "B"]


def test_a_quoted_value_set_aside_by_the_fast_pass_is_kept_in_file_order(tmp_path):
    path = availability(tmp_path, b'SP1;"QUOTED";26/07/2020;5', b"SP1;LAST;26/07/2020;6")
    result, where, _ = problems(path, AVAILABILITY)
    assert where == []
    assert result.rows.column("program_code").to_pylist() == ["HUCK", "QUOTED", "LAST"]


def test_a_duplicate_after_set_aside_lines_names_both_lines_and_quarantines_its_text(tmp_path):
    path = availability(tmp_path, b"", b"SP1;X;26/07/2020;-5", b"SP1;HUCK;25/07/2020;11")
    result, where, rules = problems(path, AVAILABILITY)
    assert [w[0] for w in where] == [3, 4, 5]
    assert "first seen on line 2" in rules[2]
    assert result.bad_rows.to_pylist()[2]["text"] == "SP1;HUCK;25/07/2020;11"
    assert result.bad_rows.to_pylist()[0]["text"] == ""


def test_a_bad_value_on_the_last_line_of_a_long_file_is_named(tmp_path):
    rows = [f"SP1,P{i % 997},2020-06-{1 + i // 997 % 28:02d},2020-06-05T15:01:00.000Z,{i}.5".encode()
            for i in range(20_000)]
    rows = [r for i, r in enumerate(rows) if i // 997 < 28]
    path = write(tmp_path, "program_audience.csv", AUD_HEADER,
                 *rows, b"SP1,LAST,2020-06-05,2020-06-05T15:01:00.000Z,-1")
    _, where, _ = problems(path, AUDIENCE)
    assert where == [(len(rows) + 2, "average_audience", "-1")]


def test_rows_and_lines_survive_the_single_threaded_pass_over_many_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr("airtime.validation.BLOCK_BYTES", 4096)
    rows = [f"SP1;P{i};26/07/2020;{i % 3600}".encode() for i in range(3000)]
    rows[1500] = b"SP1;SHORT;26/07/2020"
    path = write(tmp_path, "inventory_availability.csv", AVA_HEADER, GOOD_AVA, *rows, b"SP1;P7;27/07/2020;-1")
    result, where, _ = problems(path, AVAILABILITY)
    assert [w[0] for w in where] == [1503, 3003]
    assert result.rows.num_rows == 3000


@pytest.mark.parametrize(("block_bytes", "cells"), [(4096, 1 << 27), (1 << 23, 1 << 27), (4096, 0)],
                         ids=["many-blocks", "one-block", "too-many-cells-duckdb-counts"])
def test_a_key_repeated_blocks_apart_is_found_whichever_block_holds_it(tmp_path, monkeypatch, block_bytes, cells):
    # the fast pass counts distinct keys block by block (airtime.distinct_keys): codes numbered
    # across blocks whose dictionaries differ, dates as days; past its bitmap's size DuckDB
    # counts them over the file written
    monkeypatch.setattr("airtime.validation.BLOCK_BYTES", block_bytes)
    monkeypatch.setattr("airtime.distinct_keys.DistinctKeys.MAX_CELLS", cells)
    rows = [f"S{i % 3};P{i % 101};{1 + i % 28:02d}/07/2020;{i % 3600}".encode() for i in range(2828)]
    path = write(tmp_path, "inventory_availability.csv", AVA_HEADER, *rows, rows[17])
    result, where, rules = problems(path, AVAILABILITY)
    assert where == [(len(rows) + 2, "signal, program_code, date", "S2 / P17 / 2020-07-18")], rules
    assert "first seen on line 19" in rules[0]
    assert result.rows.num_rows == len(rows)
    unique = write(tmp_path, "inventory_availability.csv", AVA_HEADER, *rows)
    assert problems(unique, AVAILABILITY)[1] == []
