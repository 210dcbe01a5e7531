"""Order-independent table checksums, defined once for every engine.

Each row is rendered to a canonical string (floats as integer thousandths, timestamps
as epoch milliseconds, NULL as an empty field), hashed with MD5, and the first 60 bits
of the hashes are XOR-ed together. MD5, hex casts and BIT_XOR exist in both DuckDB and
BigQuery, so a manifest written by DuckDB can be compared with a warehouse read-back
in either. With the row count beside it, a lost, added or altered row changes the pair.

Integer thousandths are exact up to |x| < 1e15 (x * 1000 < 2**53 and far from BIGINT's
9.2e18); validation keeps every delivered audience, hence every forecast, at most 1e12.
Anything beyond (or not finite) is rendered as printf's `%.17e` in both engines instead of
overflowing the cast, so no value can make a checksum fail.
"""

from __future__ import annotations

from airtime.schema import DATA_TABLES, Column, TableKey

# a checksum kind per column kind: how a value is rendered into the row string
_KIND = {"string": "text", "date": "date", "timestamp": "timestamp", "float64": "float",
         "int8": "int", "int32": "int", "int64": "int"}


EXACT_BELOW = "1e15"  # floats rendered as integer thousandths below this magnitude


def row_fields(table: TableKey) -> list[tuple[str, str]]:
    """(name, kind) in the table's column order: the canonical order of the row string."""
    columns: tuple[Column, ...] = DATA_TABLES[table].columns
    return [(c.name, _KIND[c.kind]) for c in columns]


def _duckdb_field(name: str, kind: str) -> str:
    value = {
        "text": name,
        "date": f"strftime({name}, '%Y-%m-%d')",
        "timestamp": f"CAST(epoch_ms({name}) AS VARCHAR)",
        "float": f"CASE WHEN abs({name}) < {EXACT_BELOW} THEN CAST(CAST(round({name} * 1000) AS BIGINT)"
                 f" AS VARCHAR) ELSE printf('%.17e', {name}) END",
        "int": f"CAST({name} AS VARCHAR)",
    }[kind]
    return f"coalesce({value}, '')"


def _bigquery_field(name: str, kind: str) -> str:
    value = {
        "text": name,
        "date": f"FORMAT_DATE('%Y-%m-%d', {name})",
        "timestamp": f"CAST(UNIX_MILLIS({name}) AS STRING)",
        "float": f"CASE WHEN ABS({name}) < {EXACT_BELOW} THEN CAST(CAST(ROUND({name} * 1000) AS INT64)"
                 f" AS STRING) ELSE FORMAT('%.17e', {name}) END",
        "int": f"CAST({name} AS STRING)",
    }[kind]
    return f"COALESCE({value}, '')"


def duckdb_select(table: TableKey, relation: str, where: str = "") -> str:
    """SQL giving (rows, checksum) of `relation` in DuckDB."""
    # concat() builds the row string once (a chain of || builds every prefix): same value
    row = "concat(" + ", '|', ".join(_duckdb_field(n, k) for n, k in row_fields(table)) + ")"
    return (
        f"SELECT count(*) AS rows, coalesce(bit_xor(('0x' || substr(md5({row}), 1, 15))::BIGINT), 0)"
        f" AS checksum FROM {relation} {where}"
    )


def bigquery_select(table: TableKey, relation: str, where: str = "") -> str:
    """SQL giving (rows, checksum) of `relation` in BigQuery (GoogleSQL). ROWS is a
    reserved word there, hence the quoted alias."""
    row = " || '|' || ".join(_bigquery_field(n, k) for n, k in row_fields(table))
    return (
        "SELECT COUNT(*) AS `rows`, COALESCE(BIT_XOR(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5("
        f"{row})), 1, 15)) AS INT64)), 0) AS checksum FROM {relation} {where}"
    )
