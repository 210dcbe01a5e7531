"""Order-independent table checksums, defined once for every engine, versioned.

A manifest records the version its checksums were computed with (`Output.checksum_version`,
1 when absent), and verify reads the warehouse back with that same version, so manifests
written before a new version still verify. `CURRENT` is what new manifests get.

Version 2 (fast: integer arithmetic, no per-row string):
- every value becomes two "limbs", integers below P = 2**31 - 1 (a prime): dates as days
  since 1970-01-01, timestamps as epoch microseconds, floats as integer thousandths
  (|x| < 1e15), ints as themselves; such an integer e (|e| <= 1e18) is shifted by a
  multiple of P into the non-negative, and the limbs are (e + SHIFT) mod P and
  (e + SHIFT) div P (< 2**30). Strings: the first 60 bits of their MD5, split the same way.
  NULL, NaN, +-inf and finite floats >= 1e15 (MD5 of `%.17e`) get a second limb >= 2**30,
  which no ordinary value has.
- two lanes k = 0, 1 per row: h_k = (c_k + sum(limb_i * w_k,i)) mod P with fixed weights
  (w < 2**16), then s_k = h_k**2 mod P. The square matters: with a linear h the table sum
  would depend on per-column sums only, and swapping two rows' values of a column would go
  unseen.
- checksum = (sum(s_0) mod P) * 2**31 + (sum(s_1) mod P): 62 bits. A SUM, not an XOR,
  so a duplicated row changes it (XOR cancels pairs); with the row count beside it, a lost,
  added, duplicated or altered row changes the pair (but with probability ~2**-62).
Every intermediate stays below 2**63: BigQuery INT64 arithmetic raises on overflow, it
does not wrap (e + SHIFT < 2.2e18; a row's weighted sum < 16 * 2**31 * 2**16; a square
< 2**62; SUM of values < 2**31 over < 2**32 rows). MOD and DIV only ever see non-negative
arguments, so their sign and rounding conventions (which differ between engines) do not
matter.
GoogleSQL functions used: MD5, TO_HEX, SUBSTR, CAST(hex AS INT64), MOD, DIV, UNIX_DATE,
UNIX_MICROS, ROUND, IS_NAN, IS_INF, FORMAT('%.17e')
(https://cloud.google.com/bigquery/docs/reference/standard-sql/mathematical_functions,
.../hash_functions, .../date_functions#unix_date, .../timestamp_functions#unix_micros).
`ArrowFigures` computes it over Arrow batches with numpy (ingest, as it writes each batch:
no second pass over the file); `python_figures` is the same definition in plain Python, the
reference the tests hold DuckDB, BigQuery (emulator) and Arrow to. Measured at 10M audience
rows on the 2-core machine (load ~1.3): numpy 0.9-1.2 s; DuckDB over the warehouse table
2.0-2.4 s (version 1: 3.7 s), then ~1.7 s once DuckDB hashed each distinct code once
(`_Dialect.hash_distinct_strings`) instead of once per row.

Version 1 (kept for old manifests): each row rendered to a canonical string, MD5, the first
60 bits XOR-ed together. XOR cancels a row present twice, and the rendered string makes it
the slower one to read back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pyarrow as pa

from airtime.schema import DATA_TABLES, Column, TableKey

Table = TableKey
CURRENT = 2
VERSIONS = (1, 2)

# a checksum kind per column kind: how a value is rendered or turned into integers
_KIND = {"string": "text", "date": "date", "timestamp": "timestamp", "float": "float", "float64": "float",
         "int8": "int", "int32": "int", "int64": "int"}


EXACT_BELOW = "1e15"  # floats rendered as integer thousandths below this magnitude


def row_fields(table: TableKey) -> list[tuple[str, str]]:
    """(name, kind) in the table's column order: the canonical order of the row."""
    columns: tuple[Column, ...] = DATA_TABLES[table].columns
    return [(c.name, _KIND[c.kind]) for c in columns]


def _check_version(version: int) -> None:
    if version not in VERSIONS:
        raise ValueError(f"unknown checksum version {version!r} (known: {VERSIONS})")


def duckdb_select(table: TableKey, relation: str, where: str = "", version: int = CURRENT) -> str:
    """SQL giving (rows, checksum) of `relation` in DuckDB."""
    _check_version(version)
    return _v1_duckdb(table, relation, where) if version == 1 else _v2_sql(_DUCKDB, table, relation, where)


def bigquery_select(table: TableKey, relation: str, where: str = "", version: int = CURRENT) -> str:
    """SQL giving (rows, checksum) of `relation` in BigQuery (GoogleSQL). ROWS is a
    reserved word there, hence the quoted alias."""
    _check_version(version)
    return _v1_bigquery(table, relation, where) if version == 1 else _v2_sql(_BIGQUERY, table, relation, where)


# ---- version 2 ----------------------------------------------------------------------------

P = 2**31 - 1
LANES = 2
MAX_INTEGER = 10**18  # |value| of a date, timestamp, int or thousandths the limbs hold apart
SHIFT = (2**29 + 1) * P  # > MAX_INTEGER: every value + SHIFT is >= 0 and its quotient < 2**30
NULL_MARK = 2**30  # second limb of NULL, NaN and infinities: above every quotient
BIG_MARK = 2**30 + 1  # + 28 bits of MD5 (< P): second limb of a finite float >= 1e15
SPECIAL_FIRST = {"null": 0, "nan": 1, "inf": 2, "-inf": 3}  # first limb of those


def _constant(below: int, *parts: object) -> int:
    """A fixed pseudo-random number in [1, below): the weights and lane offsets of version 2."""
    digest = hashlib.sha256(":".join(["airtime-checksum-v2", *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (below - 1) + 1


def _weight(lane: int, column: int, limb: int) -> int:
    """Below 2**16, so a row's weighted sum (< 16 limbs * 2**31 * 2**16) needs one MOD."""
    return _constant(2**16, "weight", lane, column, limb)


def _offset(lane: int) -> int:
    return _constant(P, "offset", lane)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Dialect:
    """The few spellings that differ between DuckDB and GoogleSQL."""

    mod: Callable[[str, object], str]
    div: Callable[[str, object], str]
    md5_60: Callable[[str], str]
    days: Callable[[str], str]
    micros: Callable[[str], str]
    is_nan: Callable[[str], str]
    is_inf: Callable[[str], str]
    format_e: Callable[[str], str]
    int_type: str
    rows_alias: str
    # hash each distinct string once and join it back, rather than once per row: in DuckDB
    # the MD5 of two code columns was 2.1 s of 3.5 s at 10M rows, the join 0.3 s. Not in
    # BigQuery, which bills by bytes scanned: a second scan of the table would cost more.
    hash_distinct_strings: bool = False


_DUCKDB = _Dialect(
    mod=lambda a, b: f"(({a}) % {b})",
    div=lambda a, b: f"(({a}) // {b})",
    # not md5_number_upper(): the same bits, but ~6x slower than parsing the hex here
    md5_60=lambda s: f"CAST('0x' || substr(md5({s}), 1, 15) AS BIGINT)",
    days=lambda d: f"({d} - DATE '1970-01-01')",
    micros=lambda t: f"epoch_us({t})",
    is_nan=lambda x: f"isnan({x})",
    is_inf=lambda x: f"isinf({x})",
    format_e=lambda x: f"printf('%.17e', {x})",
    int_type="BIGINT",
    rows_alias="rows",
    hash_distinct_strings=True,
)
_BIGQUERY = _Dialect(
    mod=lambda a, b: f"MOD({a}, {b})",
    div=lambda a, b: f"DIV({a}, {b})",
    md5_60=lambda s: f"CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5({s})), 1, 15)) AS INT64)",
    days=lambda d: f"UNIX_DATE({d})",
    micros=lambda t: f"UNIX_MICROS({t})",
    is_nan=lambda x: f"IS_NAN({x})",
    is_inf=lambda x: f"IS_INF({x})",
    format_e=lambda x: f"FORMAT('%.17e', {x})",
    int_type="INT64",
    rows_alias="`rows`",
)


def _v2_sql(sql: _Dialect, table: TableKey, relation: str, where: str) -> str:
    """Three nested projections, so that no expression is written (and computed) twice:
    values -> limbs -> lanes, then the aggregate."""
    fields = row_fields(table)
    values, limbs, lookups = [], [], []
    for i, (name, kind) in enumerate(fields):
        e, h = f"e{i}", f"h{i}"
        if kind == "text":
            if sql.hash_distinct_strings:  # NULL finds no match: its h is NULL as below
                lookups.append(f" LEFT JOIN (SELECT v AS s{i}, {sql.md5_60('v')} AS {h} FROM"
                               f" (SELECT DISTINCT {name} AS v FROM {relation} {where})) AS d{i}"
                               f" ON r.{name} = d{i}.s{i}")
            values.append(f"{h}" if sql.hash_distinct_strings else f"{sql.md5_60(name)} AS {h}")
            limbs += [f"coalesce({sql.mod(h, P)}, 0) AS l{i}a",
                      f"coalesce({sql.div(h, P)}, {NULL_MARK}) AS l{i}b"]
            continue
        integer = {
            "date": sql.days(name),
            "timestamp": sql.micros(name),
            "int": f"CAST({name} AS {sql.int_type})",
            "float": f"CASE WHEN NOT {sql.is_nan(name)} AND abs({name}) < {EXACT_BELOW}"
                     f" THEN CAST(round({name} * 1000) AS {sql.int_type}) END",
        }[kind]
        # shifted by a multiple of P into the non-negative: MOD and DIV then agree everywhere
        values.append(f"{integer} + {SHIFT} AS {e}")
        first, second = "0", str(NULL_MARK)
        if kind == "float":
            # the rare values thousandths cannot hold: each its own first limb, and finite
            # large ones the MD5 of their `%.17e` text (identical in both engines)
            values.append(
                f"CASE WHEN {name} IS NULL THEN {-1 - SPECIAL_FIRST['null']}"
                f" WHEN {sql.is_nan(name)} THEN {-1 - SPECIAL_FIRST['nan']}"
                f" WHEN {sql.is_inf(name)} AND {name} > 0 THEN {-1 - SPECIAL_FIRST['inf']}"
                f" WHEN {sql.is_inf(name)} THEN {-1 - SPECIAL_FIRST['-inf']}"
                f" WHEN abs({name}) < {EXACT_BELOW} THEN NULL"  # the usual case: thousandths
                f" ELSE {sql.md5_60(sql.format_e(name))} END AS {h}")  # an MD5 part is >= 0
            first = f"CASE WHEN {h} < 0 THEN -1 - {h} ELSE {sql.mod(h, P)} END"
            second = f"CASE WHEN {h} < 0 THEN {NULL_MARK} ELSE {BIG_MARK} + {sql.div(h, 2**32)} END"
        limbs += [f"coalesce({sql.mod(e, P)}, {first}) AS l{i}a",
                  f"coalesce({sql.div(e, P)}, {second}) AS l{i}b"]
    rows = f"(SELECT * FROM {relation} {where}) AS r{''.join(lookups)}" if lookups else f"{relation} {where}"
    names = [f"l{i}{part}" for i in range(len(fields)) for part in "ab"]
    lanes = []
    for lane in range(LANES):
        terms = " + ".join(f"{n} * {_weight(lane, i // 2, i % 2)}" for i, n in enumerate(names))
        lanes.append(f"{sql.mod(f'{_offset(lane)} + {terms}', P)} AS k{lane}")
    squares = [f"SUM({sql.mod(f'k{lane} * k{lane}', P)})" for lane in range(LANES)]
    total = f"{sql.mod(squares[0], P)} * {2**31} + {sql.mod(squares[1], P)}"
    return (
        f"SELECT COUNT(*) AS {sql.rows_alias}, COALESCE(CAST({total} AS {sql.int_type}), 0) AS checksum"
        f" FROM (SELECT {', '.join(lanes)}"
        f" FROM (SELECT {', '.join(limbs)}"
        f" FROM (SELECT {', '.join(values)} FROM {rows}) AS v) AS l) AS k"
    )


def _limbs_of_int(e: int) -> tuple[int, int]:
    assert abs(e) <= MAX_INTEGER, e
    return (e + SHIFT) % P, (e + SHIFT) // P


def _md5_60(text: str) -> int:
    """The first 60 bits of the MD5 digest (its first 15 hex digits)."""
    return int(hashlib.md5(text.encode()).hexdigest()[:15], 16)


def _round_half_away(y: float) -> int:
    """DuckDB's and BigQuery's ROUND of a double (half away from zero), exactly."""
    whole = math.trunc(y)
    if abs(y - whole) >= 0.5:  # exact: y - trunc(y) is representable
        whole += 1 if y > 0 else -1
    return int(whole)


_EPOCH_DAY = dt.date(1970, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _limbs(kind: str, value: object) -> tuple[int, int]:
    if value is None:
        return SPECIAL_FIRST["null"], NULL_MARK
    if kind == "text":
        h = _md5_60(str(value))
        return h % P, h // P
    if kind == "date":
        assert isinstance(value, dt.date)
        return _limbs_of_int((value - _EPOCH_DAY).days)
    if kind == "timestamp":
        assert isinstance(value, dt.datetime)
        return _limbs_of_int((value - _EPOCH) // dt.timedelta(microseconds=1))
    if kind == "int":
        return _limbs_of_int(int(value))  # type: ignore[call-overload]
    x = float(value)  # type: ignore[arg-type]
    if math.isnan(x):
        return SPECIAL_FIRST["nan"], NULL_MARK
    if math.isinf(x):
        return SPECIAL_FIRST["inf" if x > 0 else "-inf"], NULL_MARK
    if abs(x) < float(EXACT_BELOW):
        return _limbs_of_int(_round_half_away(x * 1000))
    h = _md5_60(f"{x:.17e}")  # as printf and FORMAT write it
    return h % P, BIG_MARK + h // 2**32


def python_figures(table: TableKey, rows: Iterable[Mapping[str, object]]) -> tuple[int, int]:
    """(rows, checksum) of version 2 in plain Python: the definition the SQL must match."""
    fields = row_fields(table)
    count, sums = 0, [0] * LANES
    for row in rows:
        count += 1
        limbs = [limb for name, kind in fields for limb in _limbs(kind, row[name])]
        for lane in range(LANES):
            h = (_offset(lane) + sum(limb * _weight(lane, i // 2, i % 2) for i, limb in enumerate(limbs))) % P
            sums[lane] += h * h % P
    return count, (sums[0] % P) * 2**31 + sums[1] % P


class ArrowFigures:
    """Version 2 over Arrow record batches, vectorised with numpy: what ingest computes as
    it writes each batch, so its manifest's figures cost no second pass over the file.
    Strings hash once per distinct value (dictionary arrays: per dictionary entry)."""

    def __init__(self, table: TableKey) -> None:
        self.fields = row_fields(table)
        self.rows, self.sums = 0, [0] * LANES
        self.weights = np.array([[_weight(lane, i // 2, i % 2) for i in range(2 * len(self.fields))]
                                 for lane in range(LANES)], dtype=np.int64)
        self.offsets = np.array([[_offset(lane)] for lane in range(LANES)], dtype=np.int64)

    def add(self, batch: pa.RecordBatch) -> None:
        self.include(self.partial(batch))

    def partial(self, batch: pa.RecordBatch) -> tuple[int, list[int]]:
        """(rows, lane sums) of one batch, touching no state: batches can be summed on
        several threads and `include`d in any order (the checksum is a sum)."""
        lanes = np.repeat(self.offsets, batch.num_rows, axis=1)
        for j, (name, kind) in enumerate(self.fields):
            for k, limb in enumerate(_arrow_limbs(kind, batch.column(name))):
                lanes += self.weights[:, 2 * j + k, None] * limb  # < 16 * 2**47 per row: no overflow
        lanes %= P
        lanes *= lanes  # < 2**62
        lanes %= P
        return batch.num_rows, [int(lanes[lane].sum()) for lane in range(LANES)]  # < 2**31 per row

    def include(self, partial: tuple[int, list[int]]) -> None:
        rows, sums = partial
        self.rows += rows
        self.sums = [mine + theirs for mine, theirs in zip(self.sums, sums, strict=True)]

    @property
    def figures(self) -> tuple[int, int]:
        return self.rows, (self.sums[0] % P) * 2**31 + self.sums[1] % P


def _arrow_limbs(kind: str, column: pa.Array) -> list[np.ndarray]:
    n = len(column)
    valid = np.ones(n, dtype=bool) if column.null_count == 0 else \
        column.is_valid().to_numpy(zero_copy_only=False)
    if kind == "text":
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        hashes = np.array([_md5_60(v) if v is not None else 0 for v in column.dictionary.to_pylist()] or [0],
                          dtype=np.int64)
        index = column.indices.fill_null(0).to_numpy(zero_copy_only=False)
        a, b = (hashes % P)[index], (hashes // P)[index]  # limbs once per distinct value
    else:
        if kind == "float":
            x = column.fill_null(0.0).to_numpy(zero_copy_only=False)
            with np.errstate(invalid="ignore"):
                exact = np.isfinite(x) & (np.abs(x) < float(EXACT_BELOW))
            y = np.where(exact, x, 0.0) * 1000
            whole = np.trunc(y)
            e = (whole + np.where(np.abs(y - whole) >= 0.5, np.sign(y), 0.0)).astype(np.int64)
        else:
            # dates as days and timestamps as microseconds since the epoch: Arrow's storage
            # (a timestamp column of another unit is brought to microseconds first)
            if kind == "timestamp":
                column = column.cast(pa.timestamp("us", tz=column.type.tz))
            storage = {"date": pa.int32(), "timestamp": pa.int64(), "int": pa.int64()}[kind]
            e = column.view(storage) if kind != "int" else column.cast(storage)
            e = e.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            exact = np.ones(n, dtype=bool)
        b, a = np.divmod(e + SHIFT, P)
        if kind == "float":  # the rare values thousandths cannot hold, one by one
            for i in np.flatnonzero(valid & ~exact).tolist():
                a[i], b[i] = _limbs(kind, x[i].item())
    if not valid.all():
        a = np.where(valid, a, SPECIAL_FIRST["null"])
        b = np.where(valid, b, NULL_MARK)
    return [a, b]


# ---- version 1 ----------------------------------------------------------------------------

def _v1_duckdb_field(name: str, kind: str) -> str:
    value = {
        "text": name,
        "date": f"strftime({name}, '%Y-%m-%d')",
        "timestamp": f"CAST(epoch_ms({name}) AS VARCHAR)",
        "float": f"CASE WHEN abs({name}) < {EXACT_BELOW} THEN CAST(CAST(round({name} * 1000) AS BIGINT)"
                 f" AS VARCHAR) ELSE printf('%.17e', {name}) END",
        "int": f"CAST({name} AS VARCHAR)",
    }[kind]
    return f"coalesce({value}, '')"


def _v1_bigquery_field(name: str, kind: str) -> str:
    value = {
        "text": name,
        "date": f"FORMAT_DATE('%Y-%m-%d', {name})",
        "timestamp": f"CAST(UNIX_MILLIS({name}) AS STRING)",
        "float": f"CASE WHEN ABS({name}) < {EXACT_BELOW} THEN CAST(CAST(ROUND({name} * 1000) AS INT64)"
                 f" AS STRING) ELSE FORMAT('%.17e', {name}) END",
        "int": f"CAST({name} AS STRING)",
    }[kind]
    return f"COALESCE({value}, '')"


def _v1_duckdb(table: TableKey, relation: str, where: str) -> str:
    # concat() builds the row string once (a chain of || builds every prefix): same value
    row = "concat(" + ", '|', ".join(_v1_duckdb_field(n, k) for n, k in row_fields(table)) + ")"
    return (
        f"SELECT count(*) AS rows, coalesce(bit_xor(('0x' || substr(md5({row}), 1, 15))::BIGINT), 0)"
        f" AS checksum FROM {relation} {where}"
    )


def _v1_bigquery(table: TableKey, relation: str, where: str) -> str:
    row = " || '|' || ".join(_v1_bigquery_field(n, k) for n, k in row_fields(table))
    return (
        "SELECT COUNT(*) AS `rows`, COALESCE(BIT_XOR(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5("
        f"{row})), 1, 15)) AS INT64)), 0) AS checksum FROM {relation} {where}"
    )
