"""Order-independent table checksums, defined once for every engine.

Each row is rendered to a canonical string (floats as integer thousandths, timestamps
as epoch milliseconds, NULL as an empty field), hashed with MD5, and the first 60 bits
of the hashes are XOR-ed together. MD5, hex casts and BIT_XOR exist in both DuckDB and
BigQuery, so a manifest written by DuckDB can be compared with a warehouse read-back
in either. With the row count beside it, a lost, added or altered row changes the pair.
"""

from __future__ import annotations

from typing import Literal

Table = Literal["audience", "availability", "forecast"]

# column -> kind; the order is the canonical order of fields in the row string
COLUMNS: dict[Table, list[tuple[str, str]]] = {
    "audience": [
        ("signal", "text"),
        ("program_code", "text"),
        ("exhibition_date", "date"),
        ("program_start_time", "timestamp"),
        ("average_audience", "float"),
    ],
    "availability": [
        ("signal", "text"),
        ("program_code", "text"),
        ("date", "date"),
        ("available_time", "int"),
    ],
    "forecast": [
        ("signal", "text"),
        ("program_code", "text"),
        ("date", "date"),
        ("weekday", "int"),
        ("available_time", "int"),
        ("predicted_audience", "float"),
        ("history_size", "int"),
    ],
}


def _duckdb_field(name: str, kind: str) -> str:
    value = {
        "text": name,
        "date": f"strftime({name}, '%Y-%m-%d')",
        "timestamp": f"CAST(epoch_ms({name}) AS VARCHAR)",
        "float": f"CAST(CAST(round({name} * 1000) AS BIGINT) AS VARCHAR)",
        "int": f"CAST({name} AS VARCHAR)",
    }[kind]
    return f"coalesce({value}, '')"


def _bigquery_field(name: str, kind: str) -> str:
    value = {
        "text": name,
        "date": f"FORMAT_DATE('%Y-%m-%d', {name})",
        "timestamp": f"CAST(UNIX_MILLIS({name}) AS STRING)",
        "float": f"CAST(CAST(ROUND({name} * 1000) AS INT64) AS STRING)",
        "int": f"CAST({name} AS STRING)",
    }[kind]
    return f"COALESCE({value}, '')"


def duckdb_select(table: Table, relation: str, where: str = "") -> str:
    """SQL giving (rows, checksum) of `relation` in DuckDB."""
    row = " || '|' || ".join(_duckdb_field(n, k) for n, k in COLUMNS[table])
    return (
        f"SELECT count(*) AS rows, coalesce(bit_xor(('0x' || substr(md5({row}), 1, 15))::BIGINT), 0)"
        f" AS checksum FROM {relation} {where}"
    )


def bigquery_select(table: Table, relation: str, where: str = "") -> str:
    """SQL giving (rows, checksum) of `relation` in BigQuery (GoogleSQL). ROWS is a
    reserved word there, hence the quoted alias."""
    row = " || '|' || ".join(_bigquery_field(n, k) for n, k in COLUMNS[table])
    return (
        "SELECT COUNT(*) AS `rows`, COALESCE(BIT_XOR(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5("
        f"{row})), 1, 15)) AS INT64)), 0) AS checksum FROM {relation} {where}"
    )
