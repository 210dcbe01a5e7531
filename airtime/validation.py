"""Reading and validating the two delivered CSV files.

Both real formats are accepted: UTF-8 with or without a BOM, `,` or `;` (taken from the
header), dates as `YYYY-MM-DD` or `DD/MM/YYYY`, UTC ISO-8601 start times. Every
problem is reported with file, line, column, value and the rule it breaks.

Two passes, one of them usually enough:
- the fast pass streams the file through pyarrow's CSV reader (native, multi-threaded,
  one block at a time, so memory stays bounded) with the low-cardinality columns
  dictionary-encoded, types each block (on a pool of threads, while the next block is
  read) with Arrow's kernels where they agree with the PARSE/CHECKS SQL below
  (`_arrow_parse`: codes, ISO dates, start times, audiences), with that SQL otherwise (on
  the distinct values of a dictionary column, on every value otherwise), and writes the
  good rows to Parquet as it goes, in file order; rows are in file order, so a row's line
  number is its index plus 2 and a suspect row keeps it;
- only the lines the fast pass set aside (and, when a row has the wrong number of fields,
  the whole file again single-threaded, where pyarrow knows each line number) go through
  the exact line checker (`_check_lines`), which splits, unquotes, trims and checks each
  line as one string and names every problem. Duplicate keys are looked for over all good
  rows (a distinct count of key hashes; the exact report only when it finds any).
A row the fast pass accepts is one the exact checker accepts with the same values: both
apply the same PARSE SQL, the fast pass to the untrimmed value, and every PARSE anchors
the whole value (a regular expression or a strict cast) so nothing to trim or unquote
gets through it.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from airtime import checksum, schema
from airtime.artifacts import scratch_connection
from airtime.distinct_keys import DistinctKeys
from airtime.errors import InputError
from airtime.schema import CODE_PATTERN, CODE_RULE

BOM = codecs.BOM_UTF8
MAX_SHOWN = 20
MAX_QUOTED = 200  # characters of a delivered value a report quotes (a CR-only file is one "line")
BLOCK_BYTES = 1 << 23  # CSV read unit: bounds the memory of the fast pass
TYPING_THREADS = 2  # blocks typed at once beside the reader (2 measured as good as 3 on 2 cores)
DATE_RULE = "must be a date as YYYY-MM-DD or DD/MM/YYYY"
# The largest audience accepted. A real one is at most the world's population (~1e10); the
# bound also keeps every audience, and every median of them, exact in the checksum's
# integer thousandths (1e15 < 2**53, the largest integer a double holds exactly).
MAX_AUDIENCE = 1e12

# value -> DATE, accepting both delivered formats; NULL when it is neither or invalid
DATE_SQL = """CASE
    WHEN regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') THEN CAST(try_strptime({v}, '%Y-%m-%d') AS DATE)
    WHEN regexp_full_match({v}, '\\d{{2}}/\\d{{2}}/\\d{{4}}') THEN CAST(try_strptime({v}, '%d/%m/%Y') AS DATE)
END"""
TIMESTAMP_SQL = """CASE
    WHEN regexp_full_match({v}, '\\d{{4}}-\\d{{2}}-\\d{{2}}T\\d{{2}}:\\d{{2}}(:\\d{{2}}(\\.\\d{{1,6}})?)?(Z|[+]00:?00)')
    THEN try_cast({v} AS TIMESTAMPTZ) END"""


@dataclass(frozen=True)
class Column:
    column: schema.Column  # name and type, as declared in airtime/schema.py
    parse: str  # SQL turning the trimmed text `{v}` into the typed value (NULL if it can't)
    parse_rule: str  # the rule a value breaks when `parse` gives NULL
    checks: tuple[tuple[str, str], ...] = ()  # (SQL true when the typed `{x}` is bad, rule)
    # values the checks bind by name (`$name`): the date window of one delivery day
    params: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        return self.column.name

    @property
    def sql_type(self) -> str:
        return self.column.duckdb_type

    @property
    def few_values(self) -> bool:
        """Columns with few distinct values per block: read dictionary-encoded and parsed
        once per distinct value (codes, dates). Not start times: a block of history spans
        many days of 1,440 minutes each, and at 10M rows building their dictionaries cost
        more (~0.8 s) than Arrow's cast of every value."""
        return self.column.kind in ("string", "date")

    @property
    def parquet_dictionary(self) -> bool:
        """Written with Parquet dictionary pages: the columns with few distinct values. Not
        start times: a history spans a year of minutes, and at 10M audience rows building
        their dictionary took 0.2-0.3 s of the 1.1-1.3 s Parquet write (pyarrow's hash
        table growing), for a file 12% smaller."""
        return self.column.kind in ("string", "date")


@dataclass(frozen=True)
class FileSpec:
    table: str  # audience | availability
    pattern: str  # file name pattern in the source folder
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow_schema(self) -> pa.Schema:
        return schema.DATA_TABLES[self.table].arrow_schema

    @property
    def params(self) -> dict[str, object]:
        return {name: value for c in self.columns for name, value in c.params}

    def within(self, window: DateWindow) -> FileSpec:
        """The spec with the rules of time of one delivery day on its date column."""
        columns = tuple(dataclasses.replace(c, checks=c.checks + window.checks(self.table, c.name),
                                            params=c.params + window.params(self.table, c.name))
                        if c.column.kind == "date" else c for c in self.columns)
        return dataclasses.replace(self, columns=columns)


@dataclass(frozen=True)
class DateWindow:
    """The dates a delivery of `run_date` may hold: none before `earliest` (0000-01-01 and
    0001-01-01 are placeholders, not broadcasts) nor more than `horizon_days` after the
    delivery day (a slot on 9999-12-31 made the server's snapshot 121 MB larger), and no
    exhibition after the delivery day: a program that has not aired has no measured
    audience, and a forecast must never see one (DESIGN.md, the forecast)."""

    run_date: dt.date
    earliest: dt.date
    horizon_days: int

    @property
    def latest(self) -> dt.date:
        return self.run_date + dt.timedelta(days=self.horizon_days)

    def params(self, table: str, column: str) -> tuple[tuple[str, object], ...]:
        """The values `checks` binds (DuckDB refuses a parameter a query does not use)."""
        window = ((f"{column}_earliest", self.earliest), (f"{column}_latest", self.latest))
        return window + (((f"{column}_aired", self.run_date),) if table == "audience" else ())

    def checks(self, table: str, column: str) -> tuple[tuple[str, str], ...]:
        outside = (f"{{x}} < ${column}_earliest OR {{x}} > ${column}_latest",
                   f"must be within {self.earliest} .. {self.latest}, the dates a delivery of {self.run_date}"
                   f" may hold (AIRTIME_DQ_EARLIEST_DATE, AIRTIME_DQ_HORIZON_DAYS={self.horizon_days})")
        if table != "audience":
            return (outside,)
        return (outside, (f"{{x}} > ${column}_aired AND {{x}} <= ${column}_latest",
                          f"is after the delivery day {self.run_date}: a program that has not aired"
                          " has no measured audience"))


_CODE = CODE_PATTERN.replace("{", "{{").replace("}", "}}")
# how a delivered value of each column kind is parsed (every text column is a code)
PARSE: dict[str, tuple[str, str]] = {
    "string": (f"CASE WHEN regexp_full_match({{v}}, '{_CODE}') THEN {{v}} END", CODE_RULE),
    "date": (DATE_SQL, DATE_RULE),
    "timestamp": (TIMESTAMP_SQL, "must be an ISO-8601 UTC timestamp like 2020-06-05T15:01:00.000Z"),
    # inf, nan and what overflows a double (1e309) are not finite
    "float64": ("CASE WHEN isfinite(try_cast({v} AS DOUBLE)) THEN try_cast({v} AS DOUBLE) END",
                "must be a finite number"),
    "int32": ("CASE WHEN regexp_full_match({v}, '[+-]?\\d{{1,9}}') THEN try_cast({v} AS INTEGER) END",
              "must be a whole number of seconds"),
}
# what a parsed value must also satisfy, per column
CHECKS: dict[str, tuple[tuple[str, str], ...]] = {
    "average_audience": (("{x} < 0", "must be >= 0"),
                         (f"{{x}} > {MAX_AUDIENCE:.0f}", f"must be at most {MAX_AUDIENCE:.0e}")),
    "available_time": (("{x} < 0 OR {x} > 3600", "must be between 0 and 3600 seconds"),),
}


def _spec(key: schema.TableKey, pattern: str) -> FileSpec:
    table = schema.DATA_TABLES[key]
    columns = tuple(Column(c, *PARSE[c.kind], CHECKS.get(c.name, ())) for c in table.columns)
    return FileSpec(key, pattern, columns, table.key)


AUDIENCE = _spec("audience", "*program_audience*.csv")
AVAILABILITY = _spec("availability", "*inventory_availability*.csv")


def quoted(value: str) -> str:
    """A delivered value as a report shows it: repr, at most MAX_QUOTED characters."""
    if len(value) > MAX_QUOTED:
        return repr(value[:MAX_QUOTED]) + f"... ({len(value):,} characters)"
    return repr(value)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    value: str | None
    rule: str

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column}")
        if self.value is not None:
            where.append(f"value {quoted(self.value)}")
        return f"{self.file}: {', '.join(where)}: {self.rule}" if where else f"{self.file}: {self.rule}"


@dataclass
class FileResult:
    spec: FileSpec
    name: str
    parquet: Path | None  # the typed good rows, in file order (None: held in `rows`)
    row_count: int
    problems: list[Problem] = field(default_factory=list)  # first MAX_SHOWN
    problem_count: int = 0
    bad_rows: pa.Table | None = None  # line, raw text, rules: for the quarantine file
    table: pa.Table | None = None
    # (rows, checksum) of `parquet` in checksum.CURRENT, when computed while writing it
    figures: tuple[int, int] | None = None

    @property
    def rows(self) -> pa.Table:
        """The good rows in memory (small files and tests; the pipeline reads `parquet`)."""
        if self.table is None:
            assert self.parquet is not None
            self.table = pq.read_table(self.parquet)
        return self.table

    @property
    def bad_row_count(self) -> int:
        return 0 if self.bad_rows is None else self.bad_rows.num_rows


def report(problems: list[Problem], total: int, what: str) -> str:
    lines = [f"{what}: {total} problem{'s' if total != 1 else ''}"
             + (f" (first {len(problems)} shown)" if total > len(problems) else "")]
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def _fail(name: str, rule: str, line: int | None = None, column: str | None = None,
          value: str | None = None) -> InputError:
    problem = Problem(name, line, column, value, rule)
    return InputError(report([problem], 1, f"{name} refused"))


def _check_encoding(path: Path, name: str) -> None:
    """UTF-8 only: find the first undecodable byte and name its line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line += chunk[: exc.start].count(b"\n")
                raise _fail(name, f"is not UTF-8 text (byte 0x{chunk[exc.start]:02x}); "
                                  "save the file as UTF-8", line=line) from None
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise _fail(name, "is not UTF-8 text (truncated character at the end)", line=line) from None


def _header(path: Path, name: str, spec: FileSpec) -> str:
    """Check the header; returns the delimiter it uses."""
    with path.open("rb") as fh:
        first = fh.readline(1 << 16)  # a file without line breaks is not read whole
    try:
        text = first.removeprefix(BOM).decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        _check_encoding(path, name)
        raise
    if not text.strip():
        raise _fail(name, "is empty: expected a header line " + ",".join(spec.names), line=1)
    delimiter = ";" if text.count(";") > text.count(",") else ","
    found = [c.strip().strip('"') for c in text.split(delimiter)]
    if found != spec.names:
        raise _fail(name, f"header must be {delimiter.join(spec.names)!r}", line=1, column="header",
                    value=text)
    return delimiter


def _sql_string(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# ---- the fast pass ----------------------------------------------------------------------


class _NeedsLineNumbers(Exception):
    """A row with the wrong number of fields, met while reading multi-threaded (pyarrow
    knows line numbers only single-threaded)."""


@dataclass
class _Scan:
    seen: int = 0  # rows pyarrow gave (blank lines included), in file order
    written: int = 0
    figures: checksum.ArrowFigures | None = None  # of the rows written, batch by batch
    suspect_index: list[np.ndarray] = field(default_factory=list)  # indices among `seen`
    suspect_text: list[pa.Array] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line, text): wrong field count
    keys: DistinctKeys | None = None
    key_parts: list[np.ndarray] = field(default_factory=list)  # DistinctKeys.of each block's kept rows

    def suspects(self, delimiter: str, n_fields: int, path: Path) -> pa.Table:
        """(line, text) of every line the exact checker must look at, by line."""
        index = np.concatenate(self.suspect_index) if self.suspect_index else np.zeros(0, np.int64)
        text = pa.concat_arrays(self.suspect_text) if self.suspect_text else pa.array([], pa.string())
        invalid_lines = np.array(sorted(line for line, _ in self.invalid), dtype=np.int64)
        lines = _line_of(index, invalid_lines)
        # a blank line and a line of empty fields look alike once split: read those again
        empty = np.flatnonzero(pc.equal(text, delimiter * (n_fields - 1)).to_numpy(zero_copy_only=False))
        if len(empty):
            physical = _physical_lines(path, set(lines[empty].tolist()))
            replaced = text.to_pylist()
            for i in empty.tolist():
                replaced[i] = physical[int(lines[i])]
            text = pa.array(replaced, pa.string())
        table = pa.table({"line": pa.array(lines, pa.int64()), "text": text})
        if self.invalid:
            table = pa.concat_tables([table, pa.table({
                "line": pa.array([line for line, _ in self.invalid], pa.int64()),
                "text": pa.array([text for _, text in self.invalid], pa.string()),
            })])
        return table.sort_by("line")


def _line_of(index: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Line numbers of the rows at `index` (0-based, in file order, data starting on line 2)
    among the lines that are not `excluded` (sorted)."""
    before = excluded - 2 - np.arange(len(excluded))  # kept rows before each excluded line
    return index + 2 + np.searchsorted(before, index, side="right")


def _parse(con: duckdb.DuckDBPyConnection, values: pa.Array, column: Column) -> tuple[pa.Array, np.ndarray]:
    """The typed values and, per value, whether it breaks a rule (NULL = unparseable)."""
    con.register("block_values", pa.table({"v": values}))
    bad = " OR ".join(f"({sql.format(x='x')})" for sql, _ in column.checks) or "false"
    typed = con.execute(
        f"SELECT x, x IS NULL OR coalesce({bad}, true) AS bad"
        f" FROM (SELECT CAST({column.parse.format(v='v')} AS {column.sql_type}) AS x FROM block_values)",
        dict(column.params),
    ).to_arrow_table()
    con.unregister("block_values")
    return (typed.column(0).combine_chunks().cast(column.column.arrow_type),
            typed.column(1).to_numpy())


# Arrow's own kernels for the common case (no DuckDB call, no per-value SQL): a code is a
# regular expression (RE2, the engine DuckDB vendors in third_party/re2 for regexp_full_match;
# pyarrow.compute.match_substring_regex is RE2 too), a start time and an audience Arrow's
# strict casts. Held to the SQL on edge values by tests/unit/
# test_ingest_rules.py::test_arrow_fast_parse_agrees_with_sql: whatever these accept and the
# checks keep, the SQL PARSE accepts with the same value; what they refuse (a value with
# spaces, '1_000', 'T24:00', year 0000) only sends that block's column to `_parse`, which
# decides as before. At 10M audience rows, read_file of the audience file went from 11.9 s to
# 7.1 s (load average ~2; same rows and checksum), its DuckDB calls per block from 5 to 0.
_ISO_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# narrower than TIMESTAMP_SQL's: without seconds ('T16:24Z') Arrow takes what DuckDB refuses
_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+]00:?00)$"


def _arrow_parse(values: pa.Array, column: Column) -> tuple[pa.Array, np.ndarray] | None:
    """`_parse` done with Arrow kernels, or None when this column's values need the SQL."""
    kind = column.column.kind
    if kind == "string":
        good = pc.match_substring_regex(values, f"^{CODE_PATTERN}$")
        return values, ~good.to_numpy(zero_copy_only=False)
    if kind in ("timestamp", "date"):  # dates as YYYY-MM-DD only; DD/MM/YYYY takes the SQL
        if column.checks:  # a delivery day's window: the SQL, on the block's few distinct dates
            return None
        pattern = _TIMESTAMP_PATTERN if kind == "timestamp" else _ISO_DATE_PATTERN
        if not pc.all(pc.match_substring_regex(values, pattern)).as_py():
            return None
        try:
            typed = pc.cast(values, column.column.arrow_type)
        except pa.ArrowInvalid:  # an impossible date or time: the SQL says which
            return None
        return typed, np.zeros(len(values), dtype=bool)
    if kind == "float64" and column.checks == CHECKS["average_audience"]:
        try:
            typed = pc.cast(values, pa.float64())
        except pa.ArrowInvalid:
            return None
        good = pc.and_(pc.is_finite(typed),
                       pc.and_(pc.greater_equal(typed, 0.0), pc.less_equal(typed, MAX_AUDIENCE)))
        return typed, ~good.to_numpy(zero_copy_only=False)
    return None


def _scan(path: Path, spec: FileSpec, delimiter: str, out: Path, threaded: bool,
          on_rows: Callable[[int], None] | None = None) -> _Scan:
    scan = _Scan(figures=checksum.ArrowFigures(spec.table),  # type: ignore[arg-type]
                 keys=DistinctKeys(schema.DATA_TABLES[spec.table]))
    try:
        _read_blocks(path, spec, delimiter, out, threaded, scan, on_rows)
    except pa.ArrowInvalid:
        if threaded and scan.invalid:
            raise _NeedsLineNumbers from None
        raise
    return scan


def _read_blocks(path: Path, spec: FileSpec, delimiter: str, out: Path, threaded: bool, scan: _Scan,
                 on_rows: Callable[[int], None] | None) -> None:

    def on_invalid(row: pacsv.InvalidRow) -> str:
        if threaded:
            scan.invalid.append((0, row.text))
            return "error"  # pyarrow cannot raise our exception through its reader
        scan.invalid.append((row.number, row.text))
        return "skip"

    dictionary = pa.dictionary(pa.int32(), pa.string())
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(skip_rows=1, column_names=spec.names, block_size=BLOCK_BYTES,
                                       use_threads=threaded),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=False,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types={c.name: dictionary if c.few_values else pa.string() for c in spec.columns},
            strings_can_be_null=False),
    )
    con = _LazyConnection()
    parsed: _Parsed = {}
    # codes go to Parquet as the reader's dictionary arrays (a valid code is its own typed
    # value); without the Arrow schema in the file, they read back as plain strings
    written = pa.schema([pa.field(c.name, dictionary if c.column.kind == "string" else c.column.arrow_type)
                         for c in spec.columns])
    # dictionary pages only for the columns with few values: on the audience (unique
    # doubles) pyarrow builds a dictionary per row group only to throw it away, ~25% of the
    # write time at 10M rows
    with pq.ParquetWriter(out, written, store_schema=False,
                          use_dictionary=[c.name for c in spec.columns if c.parquet_dictionary]) as writer, \
            ThreadPoolExecutor(TYPING_THREADS, thread_name_prefix="airtime-typing") as pool:

        def keep(typed: _TypedBlock) -> None:  # in file order, on this thread
            writer.write_batch(typed.kept)
            scan.figures.include(typed.figures)
            if typed.keys is not None:
                scan.key_parts.append(typed.keys)
            if typed.bad is not None:
                where = np.flatnonzero(typed.bad)
                fields = [_text(typed.block.column(c.name), where) for c in spec.columns]
                scan.suspect_index.append(where + scan.seen)
                scan.suspect_text.append(pc.binary_join_element_wise(*fields, delimiter))
            scan.seen += typed.block.num_rows
            scan.written += typed.kept.num_rows
            if on_rows is not None:
                on_rows(typed.block.num_rows)

        # The reader parses the next block on this thread while the pool types and sums the
        # ones before it (Arrow and numpy release the GIL): at 10M rows, reading, typing and
        # summing one block after the other took 4.4 s, overlapped 2.7 s (writing included).
        # At most TYPING_THREADS + 1 blocks are in flight, so memory stays bounded.
        in_flight: collections.deque[Future[_TypedBlock]] = collections.deque()
        try:
            for block in reader:
                in_flight.append(pool.submit(_type_block, block, spec, written, con, scan.figures, parsed,
                                             scan.keys))
                if len(in_flight) > TYPING_THREADS:
                    keep(in_flight.popleft().result())
            while in_flight:
                keep(in_flight.popleft().result())
        except BaseException:
            # a bad block or a Ctrl-C: the blocks not yet started are dropped, not typed for
            # nothing while the error waits (the pool's exit still waits for the running ones)
            pool.shutdown(cancel_futures=True)
            raise
    con.close()


_CURSORS = threading.Lock()


class _LazyConnection:
    """The typing threads' DuckDB connection, opened when a block first needs the SQL (a
    value Arrow's kernels cannot decide: most files never do; an in-memory DuckDB takes
    ~10 ms to open). `cursor` is called under _CURSORS."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = scratch_connection(keep_order=True)  # a block's values come back in its row order
        return self._con.cursor()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


@dataclass(frozen=True)
class _TypedBlock:
    block: pa.RecordBatch  # as read: text (codes, dates as dictionaries)
    kept: pa.RecordBatch  # the typed rows that break no rule
    bad: np.ndarray | None  # per row of `block`, whether it breaks one (None: none does)
    figures: tuple[int, list[int]]  # checksum.ArrowFigures.partial of `kept`
    keys: np.ndarray | None  # DistinctKeys.of `kept`


# per column of a file, each distinct value the SQL parsed: (typed value, breaks a rule)
_Parsed = dict[str, dict[str, tuple[object, bool]]]


def _type_block(block: pa.RecordBatch, spec: FileSpec, written: pa.Schema, con: _LazyConnection,
                figures: checksum.ArrowFigures, known: _Parsed, keys: DistinctKeys) -> _TypedBlock:
    """One block typed (on a pool thread): Arrow's kernels, or the SQL for a column they
    cannot decide, on a cursor of its own (registered values are per connection)."""
    typed, bad = [], np.zeros(block.num_rows, dtype=bool)
    cursor: duckdb.DuckDBPyConnection | None = None
    for c in spec.columns:
        raw = block.column(c.name)
        values = raw.dictionary if c.few_values else raw
        parsed = _arrow_parse(values, c)
        if parsed is None and c.few_values:
            parsed = _known(values, c, known.setdefault(c.name, {}))
        if parsed is None:
            if cursor is None:
                with _CURSORS:  # the parent connection is shared by the pool's threads
                    cursor = con.cursor()
                cursor.execute("SET TimeZone = 'UTC'")
            parsed = _parse(cursor, values, c)
            if c.few_values:
                _remember(values, parsed, known[c.name])
        values, bad_values = parsed
        if c.few_values:
            typed.append(raw if c.column.kind == "string" else values.take(raw.indices))
            bad |= bad_values[raw.indices.to_numpy()]
        else:
            typed.append(values)
            bad |= bad_values
    if cursor is not None:
        cursor.close()
    good = pa.array(~bad)
    kept = pa.RecordBatch.from_arrays([a.filter(good) for a in typed] if good.false_count else typed,
                                      schema=written)
    return _TypedBlock(block, kept, bad if good.false_count else None, figures.partial(kept), keys.of(kept))


def _known(values: pa.Array, column: Column, known: dict[str, tuple[object, bool]]
           ) -> tuple[pa.Array, np.ndarray] | None:
    """A dictionary's values typed from what the SQL said of them in earlier blocks, or None
    when one is new. The blocks of a file share most of their dates: at 10M audience rows the
    delivery day's window sent each of its 77 blocks' dates to the SQL (~1.4 s of DuckDB
    calls); now a block whose dates were all seen makes none."""
    try:
        seen = [known[value] for value in values.to_pylist()]
    except KeyError:
        return None
    return (pa.array([typed for typed, _ in seen], column.column.arrow_type),
            np.array([broken for _, broken in seen], dtype=bool))


def _remember(values: pa.Array, parsed: tuple[pa.Array, np.ndarray], known: dict[str, tuple[object, bool]]) -> None:
    typed, broken = parsed
    for value, scalar, bad in zip(values.to_pylist(), typed, broken.tolist(), strict=True):
        try:
            known[value] = (scalar.as_py(), bad)
        except (OverflowError, ValueError):  # no Python value (year 0): the SQL decides it each time
            pass


def _text(raw: pa.Array, where: np.ndarray) -> pa.Array:
    taken = raw.take(pa.array(where))
    return taken.cast(pa.string()) if pa.types.is_dictionary(taken.type) else taken


def _physical_lines(path: Path, wanted: set[int]) -> dict[int, str]:
    """The text of some lines, by number, with pyarrow's line breaks (\\n, \\r\\n or \\r)."""
    found: dict[int, str] = {}
    line, pending = 1, b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            data, hold = pending + chunk, b""
            if data.endswith(b"\r"):  # its \n may start the next chunk
                data, hold = data[:-1], b"\r"
            parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            pending = parts.pop() + hold
            for n in sorted(n for n in wanted if line <= n < line + len(parts)):
                found[n] = parts[n - line].decode("utf-8")
            line += len(parts)
    if line in wanted:
        found[line] = pending.removesuffix(b"\r").decode("utf-8")
    return found


# ---- the exact checker ------------------------------------------------------------------


def _check_lines(con: duckdb.DuckDBPyConnection, spec: FileSpec, delimiter: str) -> None:
    """From the `lines` (line, text) relation, tables `parsed`, `typed` (lines with the
    right field count, with their values) and `problems` (line, col, value, rule)."""
    n = len(spec.columns)
    raw = ", ".join(
        f"trim(regexp_replace(trim(f[{i + 1}]), '^\"(.*)\"$', '\\1')) AS raw_{c.name}"
        for i, c in enumerate(spec.columns)
    )
    typed = ", ".join(f"{c.parse.format(v=f'raw_{c.name}')} AS {c.name}" for c in spec.columns)
    con.execute(f"""
        CREATE TEMP TABLE parsed AS
        SELECT line, text, len(f) AS fields, {raw}
        FROM (SELECT line, text, string_split(text, $delim) AS f FROM lines)
    """, {"delim": delimiter})
    con.execute(f"CREATE TEMP TABLE typed AS SELECT *, {typed} FROM parsed WHERE fields = {n}")
    checks = [
        f"SELECT line, NULL AS col, text AS value, "
        f"'row has ' || fields || ' fields separated by ' || $delim || ', expected {n}' AS rule "
        f"FROM parsed WHERE fields <> {n}"
    ]
    for c in spec.columns:
        checks.append(
            f"SELECT line, '{c.name}', raw_{c.name}, "
            f"CASE WHEN raw_{c.name} = '' THEN 'is required' ELSE $rule_{c.name} END "
            f"FROM typed WHERE {c.name} IS NULL"
        )
        for bad_sql, rule in c.checks:
            checks.append(
                f"SELECT line, '{c.name}', raw_{c.name}, '{rule}' FROM typed"
                f" WHERE {bad_sql.format(x=c.name)}"
            )
    params = {f"rule_{c.name}": c.parse_rule for c in spec.columns} | {"delim": delimiter} | spec.params
    con.execute("CREATE TEMP TABLE problems AS " + " UNION ALL ".join(checks), params)


def _duplicates(con: duckdb.DuckDBPyConnection, spec: FileSpec, relation: str) -> None:
    """Add to `problems` the later occurrences of a key among the good rows of `relation`
    (with a `line`): the first occurrence is kept."""
    key = ", ".join(spec.key)
    key_text = " || ' / ' || ".join(f"CAST({k} AS VARCHAR)" for k in spec.key)
    con.execute(f"""
        INSERT INTO problems
        SELECT line, '{key}', {key_text},
               'duplicate key ({key.replace("'", "")}): first seen on line ' || first_line
        FROM (SELECT line, {key}, min(line) OVER (PARTITION BY {key}) AS first_line
              FROM {relation} SEMI JOIN (SELECT {key} FROM {relation} GROUP BY ALL HAVING count(*) > 1)
                   USING ({key}))
        WHERE line <> first_line
    """)


def _has_duplicates(con: duckdb.DuckDBPyConnection, spec: FileSpec, relation: str) -> bool:
    """A count of distinct key hashes: cheap, and never misses a duplicate (a collision
    only sends the file to the exact check)."""
    rows, keys = con.execute(
        f"SELECT count(*), count(DISTINCT hash({', '.join(spec.key)})) FROM {relation}").fetchone()
    return rows != keys


# ---- reading a file ---------------------------------------------------------------------


def read_file(path: Path, name: str, spec: FileSpec, parquet: Path | None = None, *,
              memory_limit: str | None = None, on_rows: Callable[[int], None] | None = None) -> FileResult:
    """Validate one delivered file: its typed good rows go to `parquet` (in memory, in the
    result's `rows`, when none is given), its problems into the result. `on_rows(n)` hears of
    every block of n lines read (progress)."""
    if not path.is_file() or path.stat().st_size == 0 or _first_bytes(path) in (b"", BOM):
        raise _fail(name, "is empty: expected a header line " + ",".join(spec.names))
    delimiter = _header(path, name, spec)
    with _scratch() as tmp:
        out = parquet if parquet is not None else tmp / "rows.parquet"
        try:
            try:
                scan = _scan(path, spec, delimiter, out, threaded=True, on_rows=on_rows)
            except _NeedsLineNumbers:
                scan = _scan(path, spec, delimiter, out, threaded=False, on_rows=on_rows)
        except pa.ArrowInvalid as exc:
            _check_encoding(path, name)  # raises, naming the line, when that was the reason
            raise _fail(name, f"cannot be read as CSV: {str(exc)[:MAX_QUOTED]}") from None
        if scan.seen == 0 and not scan.invalid:
            raise _fail(name, "has a header but no data rows", line=2)
        pa.default_memory_pool().release_unused()  # the blocks' memory, before DuckDB's checks
        result = _settle(path, name, spec, delimiter, out, scan, tmp, memory_limit)
        if parquet is None:
            result.table, result.parquet = pq.read_table(out), None
        return result


def _first_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(4)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    name = tempfile.mkdtemp(prefix=f"airtime-{os.getpid()}-validation-")
    try:
        yield Path(name)
    finally:
        shutil.rmtree(name, ignore_errors=True)


def _settle(path: Path, name: str, spec: FileSpec, delimiter: str, out: Path, scan: _Scan,
            tmp: Path, memory_limit: str | None) -> FileResult:
    """The file's result once the fast pass is done: nothing more to do when it set no line
    aside and no key repeats; otherwise the exact checker's report over those lines."""
    suspects = scan.suspects(delimiter, len(spec.columns), path)
    repeat = scan.keys.repeat(scan.key_parts, scan.written) if scan.keys is not None else None
    scan.key_parts.clear()
    con: duckdb.DuckDBPyConnection | None = None
    if suspects.num_rows == 0 and repeat is None:  # keys DistinctKeys could not count: DuckDB counts them
        con = scratch_connection(tmp / "spill", memory_limit)
        repeat = _has_duplicates(con, spec, f"read_parquet({_sql_string(out)})")
    if suspects.num_rows == 0 and not repeat:
        if con is not None:
            con.close()
        assert scan.figures is not None and scan.figures.rows == scan.written
        return FileResult(spec, name, out, scan.written, figures=scan.figures.figures)
    con = con or scratch_connection(tmp / "spill", memory_limit)

    con.register("lines", suspects)
    _check_lines(con, spec, delimiter)
    # the fast pass's rows get their line numbers back: they are the lines not set aside
    con.execute("""
        CREATE TEMP TABLE gaps AS
        SELECT before, max(j) AS j FROM (
            SELECT line - 2 - (row_number() OVER (ORDER BY line) - 1) AS before,
                   row_number() OVER (ORDER BY line) AS j FROM lines)
        GROUP BY before
    """)
    names = ", ".join(spec.names)
    cast = ", ".join(f"CAST({c.name} AS {c.sql_type}) AS {c.name}" for c in spec.columns)
    con.execute(f"""
        CREATE TEMP VIEW good AS
        SELECT f.file_row_number + 2 + coalesce(g.j, 0) AS line, {', '.join(f'f.{n}' for n in spec.names)}
        FROM read_parquet({_sql_string(out)}, file_row_number = true) f
        ASOF LEFT JOIN gaps g ON f.file_row_number >= g.before
        UNION ALL
        SELECT line, {cast} FROM typed ANTI JOIN problems USING (line)
    """)
    rescued = con.execute("SELECT count(*) FROM typed ANTI JOIN problems USING (line)").fetchone()[0]
    duplicated = _has_duplicates(con, spec, "good")
    if duplicated:
        _duplicates(con, spec, "good")
    if rescued or duplicated:  # the Parquet file changes: rescued rows in, repeated keys out
        final = tmp / "settled.parquet"
        con.execute(f"COPY (SELECT {names} FROM good ANTI JOIN problems USING (line) ORDER BY line)"
                    f" TO {_sql_string(final)} (FORMAT parquet)")
        shutil.move(final, out)
        scan.figures = None  # not the rows the fast pass wrote any more

    total = con.execute("SELECT count(*) FROM problems").fetchone()[0]
    shown = [
        Problem(name, line, col, value, rule)
        for line, col, value, rule in con.execute(
            "SELECT line, col, value, rule FROM problems ORDER BY line, col NULLS FIRST LIMIT $n",
            {"n": MAX_SHOWN},
        ).fetchall()
    ]
    known = con.execute("SELECT DISTINCT line FROM problems ANTI JOIN lines USING (line)").fetchall()
    extra = _physical_lines(path, {line for (line,) in known}) if known else {}
    con.register("extra_lines", pa.table({"line": pa.array(list(extra), pa.int64()),
                                          "text": pa.array(list(extra.values()), pa.string())}))
    bad_rows = con.execute("""
        SELECT line, any_value(text) AS text, string_agg(coalesce(col || ': ', '') || rule, '; '
               ORDER BY col NULLS FIRST) AS problems
        FROM problems JOIN (SELECT * FROM lines UNION ALL SELECT * FROM extra_lines) USING (line)
        GROUP BY line ORDER BY line
    """).to_arrow_table()
    rows = con.execute(f"SELECT count(*) FROM read_parquet({_sql_string(out)})").fetchone()[0]
    con.close()
    figures = scan.figures.figures if scan.figures is not None else None
    return FileResult(spec, name, out, int(rows), shown, int(total), bad_rows if total else None,
                      figures=figures)
