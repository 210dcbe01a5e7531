"""Rows that try the checksum's edges, as Arrow tables in each data table's schema: NULLs,
negative zero, extreme and non-finite floats, values on a rounding edge, unicode and empty
strings, dates before 1970, sub-millisecond times, negative ints. Shared by the DuckDB
and BigQuery(emulator) checksum tests."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from airtime.schema import DATA_TABLES, TableKey

UTC = dt.UTC
FLOATS = [0.0, -0.0, 1.5, -1.5, 0.0005, -0.0005, 0.0015, 933891.9638554216, 1e12, 999999999999999.9,
          1e15, -1e15, 9.3e15, 1e300, -1e300, 5e-324, float("inf"), float("-inf"), float("nan"), None]
STRINGS = ["SP", "KVOB", "ÇÃO1", "日本", "A B", "", "x" * 40, None]
DATES = [dt.date(2020, 7, 25), dt.date(1969, 12, 31), dt.date(1900, 1, 1), dt.date(2999, 12, 31),
         dt.date(1970, 1, 1), None]
TIMES = [dt.datetime(2020, 6, 5, 15, 1, 7, 123456, UTC), dt.datetime(1969, 12, 31, 23, 59, 59, 999999, UTC),
         dt.datetime(1970, 1, 1, tzinfo=UTC), dt.datetime(2999, 1, 1, tzinfo=UTC), None]
INTS = [0, 1, -1, 3600, -2_147_483_648, 2_147_483_647, 127, -128, None]

_VALUES = {"string": STRINGS, "date": DATES, "timestamp": TIMES, "float64": FLOATS,
           "int8": [v for v in INTS if v is None or -128 <= v <= 127],
           "int32": INTS, "int64": INTS}


def edge_rows(table: TableKey, count: int = 60) -> list[dict[str, object]]:
    """`count` rows cycling through every edge value of every column (at different strides,
    so values meet in many combinations)."""
    columns = DATA_TABLES[table].columns
    rows = []
    for i in range(count):
        rows.append({c.name: _VALUES[c.kind][(i * (j + 1) + j) % len(_VALUES[c.kind])]
                     for j, c in enumerate(columns)})
    return rows


def arrow_table(table: TableKey, rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=DATA_TABLES[table].arrow_schema)
