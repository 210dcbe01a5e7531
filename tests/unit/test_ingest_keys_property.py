"""The fast pass's count of distinct keys (airtime.distinct_keys.DistinctKeys) says a key repeats
exactly when DuckDB's count of distinct keys over the same rows is below their number,
whatever the blocks' dictionaries (each block numbers its codes its own way, as pyarrow's
reader does) and dates."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from airtime.distinct_keys import DistinctKeys
from airtime.schema import DATA_TABLES

CODES = st.sampled_from(["A", "B", "SP1", "HUCK", "Z9", "P-1"])
DATES = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)) | \
    st.dates(min_value=dt.date(2020, 7, 1), max_value=dt.date(2020, 7, 9))
ROW = st.tuples(CODES, CODES, DATES)


def block(rows: list[tuple[str, str, dt.date]]) -> pa.RecordBatch:
    signal, program, date = zip(*rows, strict=True) if rows else ((), (), ())
    return pa.record_batch({"signal": pa.array(signal, pa.string()).dictionary_encode(),
                            "program_code": pa.array(program, pa.string()).dictionary_encode(),
                            "date": pa.array(date, pa.date32())})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ROW, max_size=12), min_size=1, max_size=5))
def test_the_fast_count_of_distinct_keys_agrees_with_duckdb(blocks):
    keys = DistinctKeys(DATA_TABLES["availability"])
    parts = [p for p in (keys.of(block(rows)) for rows in blocks) if p is not None]
    rows = [row for rows in blocks for row in rows]
    with duckdb.connect() as con:
        distinct = con.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM (VALUES (NULL, NULL, NULL::DATE)"
                               + "".join(", (?, ?, ?)" for _ in rows) + ") WHERE col0 IS NOT NULL)",
                               [v for row in rows for v in row]).fetchone()[0]
    assert keys.repeat(parts, len(rows)) in (distinct != len(rows), None)
    if len(rows) and max(r[2] for r in rows) - min(r[2] for r in rows) < dt.timedelta(days=1000):
        assert keys.repeat(parts, len(rows)) == (distinct != len(rows))
