"""Reading and validating the two delivered CSV files.

Both real formats are accepted: UTF-8 with or without a BOM, `,` or `;` (taken from the
header), dates as `YYYY-MM-DD` or `DD/MM/YYYY`, UTC ISO-8601 start times. Every
problem is reported with file, line, column, value and the rule it breaks.

Each physical line is read as one string (pyarrow keeps the order, so the line number
is the row index plus 2) and split and checked in DuckDB, which keeps 10M-row files
fast without losing the line numbers a person needs to fix the file.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from airtime import schema
from airtime.errors import InputError

BOM = codecs.BOM_UTF8
MAX_SHOWN = 20
# signal and program codes, here and in the query service's request checks
CODE_PATTERN = r"[A-Za-z0-9_-]{1,32}"
CODE_RULE = "must be 1-32 letters, digits, '_' or '-'"
DATE_RULE = "must be a date as YYYY-MM-DD or DD/MM/YYYY"

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

    @property
    def name(self) -> str:
        return self.column.name

    @property
    def sql_type(self) -> str:
        return self.column.duckdb_type


@dataclass(frozen=True)
class FileSpec:
    table: str  # audience | availability
    pattern: str  # file name pattern in the source folder
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


_CODE = CODE_PATTERN.replace("{", "{{").replace("}", "}}")
# how a delivered value of each column kind is parsed (every text column is a code)
PARSE: dict[str, tuple[str, str]] = {
    "string": (f"CASE WHEN regexp_full_match({{v}}, '{_CODE}') THEN {{v}} END", CODE_RULE),
    "date": (DATE_SQL, DATE_RULE),
    "timestamp": (TIMESTAMP_SQL, "must be an ISO-8601 UTC timestamp like 2020-06-05T15:01:00.000Z"),
    "float64": ("CASE WHEN NOT regexp_full_match(lower({v}), '[+-]?(inf(inity)?|nan)') THEN try_cast({v} AS DOUBLE) END",
                "must be a finite number"),
    "int32": ("CASE WHEN regexp_full_match({v}, '[+-]?\\d{{1,9}}') THEN try_cast({v} AS INTEGER) END",
              "must be a whole number of seconds"),
}
# what a parsed value must also satisfy, per column
CHECKS: dict[str, tuple[tuple[str, str], ...]] = {
    "average_audience": (("{x} < 0", "must be >= 0"),),
    "available_time": (("{x} < 0 OR {x} > 3600", "must be between 0 and 3600 seconds"),),
}


def _spec(key: schema.TableKey, pattern: str) -> FileSpec:
    table = schema.DATA_TABLES[key]
    columns = tuple(Column(c, *PARSE[c.kind], CHECKS.get(c.name, ())) for c in table.columns)
    return FileSpec(key, pattern, columns, table.key)


AUDIENCE = _spec("audience", "*program_audience*.csv")
AVAILABILITY = _spec("availability", "*inventory_availability*.csv")


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
            where.append(f"value {self.value!r}")
        return f"{self.file}: {', '.join(where)}: {self.rule}" if where else f"{self.file}: {self.rule}"


@dataclass
class FileResult:
    spec: FileSpec
    name: str
    rows: pa.Table  # typed good rows, ordered by key
    problems: list[Problem] = field(default_factory=list)  # first MAX_SHOWN
    problem_count: int = 0
    bad_rows: pa.Table | None = None  # line, raw text, rules: for the quarantine file

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
        first = fh.readline()
    text = first.removeprefix(BOM).decode("utf-8").rstrip("\r\n")
    if not text.strip():
        raise _fail(name, "is empty: expected a header line " + ",".join(spec.names), line=1)
    delimiter = ";" if text.count(";") > text.count(",") else ","
    found = [c.strip().strip('"') for c in text.split(delimiter)]
    if found != spec.names:
        raise _fail(name, f"header must be {delimiter.join(spec.names)!r}", line=1, column="header",
                    value=text)
    return delimiter


def _lines(path: Path) -> pa.Table:
    """Every line after the header as one string, in file order, with its line number."""
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(skip_rows=1, column_names=["text"], block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter="\x1f", quote_char=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={"text": pa.string()}, strings_can_be_null=False),
    )
    numbers = pa.array(np.arange(2, table.num_rows + 2, dtype=np.int64))
    return table.append_column("line", numbers)


def read_file(path: Path, name: str, spec: FileSpec) -> FileResult:
    """Validate one delivered file and return its typed rows and its problems."""
    if not path.is_file() or path.stat().st_size == 0 or path.read_bytes()[:4] in (b"", BOM):
        raise _fail(name, "is empty: expected a header line " + ",".join(spec.names))
    _check_encoding(path, name)
    delimiter = _header(path, name, spec)
    lines = _lines(path)
    if lines.num_rows == 0:
        raise _fail(name, "has a header but no data rows", line=2)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("lines", lines)
    n = len(spec.columns)
    raw = ", ".join(
        f"trim(regexp_replace(trim(f[{i + 1}]), '^\"(.*)\"$', '\\1')) AS raw_{c.name}"
        for i, c in enumerate(spec.columns)
    )
    typed = ", ".join(
        f"{c.parse.format(v=f'raw_{c.name}')} AS {c.name}" for c in spec.columns
    )
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
    params = {f"rule_{c.name}": c.parse_rule for c in spec.columns} | {"delim": delimiter}
    con.execute(
        "CREATE TEMP TABLE problems AS " + " UNION ALL ".join(checks), params
    )
    key = ", ".join(spec.key)
    key_text = " || ' / ' || ".join(f"CAST({k} AS VARCHAR)" for k in spec.key)
    # duplicates among otherwise valid rows: the first occurrence is kept, later ones are bad
    con.execute(f"""
        INSERT INTO problems
        SELECT line, '{key}', {key_text},
               'duplicate key ({key.replace("'", "")}): first seen on line ' || first_line
        FROM (SELECT line, {key}, min(line) OVER (PARTITION BY {key}) AS first_line
              FROM typed WHERE line NOT IN (SELECT line FROM problems))
        WHERE line <> first_line
    """)
    total = con.execute("SELECT count(*) FROM problems").fetchone()[0]
    shown = [
        Problem(name, line, col, value, rule)
        for line, col, value, rule in con.execute(
            "SELECT line, col, value, rule FROM problems ORDER BY line, col NULLS FIRST LIMIT $n",
            {"n": MAX_SHOWN},
        ).fetchall()
    ]
    bad_rows = con.execute("""
        SELECT line, any_value(text) AS text, string_agg(coalesce(col || ': ', '') || rule, '; '
               ORDER BY col NULLS FIRST) AS problems
        FROM problems JOIN parsed USING (line) GROUP BY line ORDER BY line
    """).to_arrow_table()
    names = ", ".join(f"CAST({c.name} AS {c.sql_type}) AS {c.name}" for c in spec.columns)
    rows = con.execute(
        f"SELECT {names} FROM typed WHERE line NOT IN (SELECT line FROM problems) ORDER BY {key}"
    ).to_arrow_table()
    return FileResult(spec, name, rows, shown, int(total), bad_rows if total else None)
