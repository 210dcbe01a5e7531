"""The one business rule, in DuckDB SQL (README.md, first section: the forecast of a slot).

For each slot (signal, program_code, date D): the median audience of the 4 most recent
exhibitions of the same signal and program, strictly before D, on D's weekday.

Computed without a fan-out join. Usually from each group's 4 latest exhibitions, one hash
aggregate (forecast_query says when). Otherwise at every exhibition, `lag` gives it and its
3 same-weekday predecessors and their median is taken with least/greatest (exact: the middle
value, or the mean of the two middle ones); an ASOF join then picks, per slot, the latest
exhibition strictly before D. That is one sort of the history, O(n log n); DuckDB's windowed
`median()` over the same 4-row frame gives the same numbers but was ~5x slower at 10M rows
(bench/preprocess.py).
"""

from __future__ import annotations

import datetime as dt

import duckdb

HISTORY_DEPTH = 4


# a delivered audience differs from the history's when it differs beyond rounding
CHANGED_SQL = "abs({t} - {h}) > 1e-9 * greatest(abs({h}), 1)"
# what the delivery did to a row of create_history_delta's table: left it (a history row it does not
# name), added it (a key the history did not hold) or rewrote it (another audience)
KEPT, NEW, REWRITTEN = 0, 1, 2


def merged_history_sql(previous: str | None, audience: str) -> str:
    """History after a delivery, in one statement: one row per (signal, program_code,
    exhibition_date), the latest delivery wins. Takes `$run_date` as the delivery date of
    `audience`. The definition the tests and bench/preprocess.py hold the forecast to;
    preprocess stores the same rows in two parts (history_sql, kept_history_sql).

    The delivery replaces whatever earlier runs held for its keys, so the previous history
    rows the delivery does not name are added to it: an anti join (cheap: the hash table is
    built on the day's delivery, not on the whole history). It relies on what ingest
    guarantees: one row per key within a delivery. Rows an earlier attempt of the same run
    date (or a later date) delivered are not history up to this one.

    No exhibition dated after the delivery day is history, whatever the files hold: ingest
    refuses (or quarantines) one, and this keeps it out of every forecast even so (a history
    written before that rule, a file ingested under other settings)."""
    day = "CAST($run_date AS DATE)"
    fresh = (
        f"SELECT signal, program_code, exhibition_date, program_start_time, average_audience,"
        f" {day} AS delivered_on FROM {audience} WHERE exhibition_date <= {day}"
    )
    if previous is None:
        return fresh
    return f"""
        {fresh}
        UNION ALL
        SELECT p.signal, p.program_code, p.exhibition_date, p.program_start_time,
               p.average_audience, p.delivered_on
        FROM {previous} p
        ANTI JOIN {audience} a USING (signal, program_code, exhibition_date)
        WHERE p.delivered_on < {day} AND p.exhibition_date <= {day}
    """


HISTORY_COLUMNS = "signal, program_code, exhibition_date, program_start_time, average_audience"


def history_sql(kept: str, delivery: str | None = None, delivered_on: dt.date | None = None) -> str:
    """A history stored in two parts, as one relation: `kept`, the rows a run kept from the
    history before it (each with its `delivered_on`), and `delivery`, that run's own audience
    file (ingest's artifact, by reference: not written again), delivered on `delivered_on`.
    Without `delivery` (manifests written before the two parts), `kept` is every row.

    The day's rows are most of a history (a daily full-history delivery: all of it), so
    rewriting them into a history file each day cost a pass over every row: at 10M rows,
    1.0 s of preprocess and 175 MB stored per day. As in merged_history_sql, no exhibition
    dated after the delivery day is history."""
    if delivery is None:
        return kept
    assert delivered_on is not None
    day = f"DATE '{delivered_on.isoformat()}'"
    return f"""(SELECT {HISTORY_COLUMNS}, {day} AS delivered_on FROM {delivery} WHERE exhibition_date <= {day}
        UNION ALL SELECT {HISTORY_COLUMNS}, delivered_on FROM {kept})"""


def kept_history_sql(audience: str, delta: str | None) -> str:
    """The rows a run keeps from the previous history (`delta`'s KEPT rows; none on a first
    day: `audience` only gives the columns their types), with history_sql's columns."""
    if delta is None:
        return f"SELECT {HISTORY_COLUMNS}, CAST(NULL AS DATE) AS delivered_on FROM {audience} LIMIT 0"
    return f"SELECT {HISTORY_COLUMNS}, delivered_on FROM {delta} WHERE change = {KEPT}"


def create_history_delta(con: duckdb.DuckDBPyConnection, delta: str, previous: str, audience: str,
                         run_date: dt.date) -> None:
    """Temp table `delta`: one full join of the delivery with the previous history, keeping
    what differs: the history rows the delivery does not name (KEPT, with their values:
    kept_history_sql keeps them) and the day's rows that are NEW or REWRITTEN (CHANGED_SQL),
    with `delivered_audience`. Usually small (a day's worth of new rows): the gate's rules on
    new and rewritten exhibitions read it (delivery_changes_sql) instead of joining the day's
    audience with the same history again. Joined on one exact integer per key instead of its
    three columns (tests/forecast_frames.py, `three_column_delta_sql`, is the same join on the
    columns as written, and a property test holds the two to the same rows).

    Each (signal, program_code) pair of either side gets a number, shifted 32 bits up, and
    a key is that plus its date's day number: DuckDB keeps a DATE as a 32-bit count of days
    (https://duckdb.org/docs/stable/sql/data_types/date), so no two keys share an integer,
    no hash is trusted to be unique, and the join compares one BIGINT instead of two
    strings and a date. At 10M rows on both sides (a daily full-history delivery, the
    512MB memory limit, 2 cores) the delta took 2.3 s instead of 2.8 s (1.8 s instead of
    1.9 s with 1GB), at the same peak memory; the codes come back from the pairs' table for
    the few rows kept (a day's new rows and the history's rows the day does not name). Codes are never NULL (ingest requires them),
    so every row finds its pair."""
    day = "CAST($run_date AS DATE)"
    changed = CHANGED_SQL.format(t="t.average_audience", h="p.average_audience")
    pairs, keyed = f"{delta}_pairs", f"{delta}_keyed"
    key = "base + (CAST(exhibition_date AS DATE) - DATE '1970-01-01')"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
        SELECT signal, program_code, CAST(row_number() OVER () AS BIGINT) << 32 AS base
        FROM (SELECT DISTINCT signal, program_code FROM {previous}
              UNION SELECT DISTINCT signal, program_code FROM {audience})""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {keyed} AS
        SELECT coalesce(t.k, p.k) AS k, coalesce(t.exhibition_date, p.exhibition_date) AS exhibition_date,
               p.program_start_time, p.average_audience, p.delivered_on,
               t.average_audience AS delivered_audience,
               CAST(CASE WHEN t.k IS NULL THEN {KEPT} WHEN p.k IS NULL THEN {NEW}
                         ELSE {REWRITTEN} END AS TINYINT) AS change
        FROM (SELECT {key} AS k, exhibition_date, program_start_time, average_audience, delivered_on
              FROM {previous} JOIN {pairs} USING (signal, program_code)) p
        FULL JOIN (SELECT {key} AS k, exhibition_date, average_audience
                   FROM {audience} JOIN {pairs} USING (signal, program_code)) t USING (k)
        WHERE CASE WHEN t.k IS NULL THEN p.delivered_on < {day} AND p.exhibition_date <= {day}
                   ELSE t.exhibition_date <= {day} AND (p.k IS NULL OR {changed}) END""",
                {"run_date": run_date})
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {delta} AS
        SELECT x.signal, x.program_code, d.exhibition_date, d.program_start_time, d.average_audience,
               d.delivered_on, d.delivered_audience, d.change
        FROM {keyed} d JOIN {pairs} x ON x.base = d.k - (CAST(d.exhibition_date AS DATE) - DATE '1970-01-01')""")
    con.execute(f"DROP TABLE {keyed}")
    con.execute(f"DROP TABLE {pairs}")


def delivery_changes_sql(delta: str) -> str:
    """The day's rows a create_history_delta table holds: new or rewritten (`held`), with
    the delivered audience."""
    return (f"SELECT signal, program_code, exhibition_date, delivered_audience AS average_audience,"
            f" change = {REWRITTEN} AS held FROM {delta} WHERE change <> {KEPT}")


def _median_of_latest(a: list[str], n: str) -> str:
    """Median of the last min(n, 4) audiences `a` (latest first). Of 4, the two middle
    values are the larger of the pair minima and the smaller of the pair maxima; of 3, the
    middle one. Written out with least/greatest, so it is exact and the same in both paths."""
    return f"""CASE
        WHEN {n} >= 4 THEN (greatest(least({a[0]}, {a[1]}), least({a[2]}, {a[3]}))
                            + least(greatest({a[0]}, {a[1]}), greatest({a[2]}, {a[3]}))) / 2
        WHEN {n} = 3 THEN greatest(least({a[0]}, {a[1]}), least(greatest({a[0]}, {a[1]}), {a[2]}))
        WHEN {n} = 2 THEN ({a[0]} + {a[1]}) / 2
        ELSE {a[0]}
    END"""


def forecast_query(con: duckdb.DuckDBPyConnection, history: str, availability: str) -> str:
    """The SELECT of forecast rows for every slot of `availability` (left join: none is
    dropped), to run on `con`, where it leaves temp tables `forecast_*`.

    Two paths, one answer. A group (signal, program, weekday) whose slots all come after its
    last exhibition, the usual case of a forecast, needs only its 4 latest exhibitions: one
    hash aggregate (`arg_max(..., 4)`), no sort. A group with a slot on or before its last
    exhibition (a re-delivered past week, a backfill) takes the per-exhibition path: the
    window and the ASOF join, over that group's rows only. Whether any group needs it is
    asked first: DuckDB scanned and hashed every history row for a semi join even when
    its other side was empty (1.1 s at 10M rows). Measured at 10M history rows: 0.7 s
    against 2.4 s for the window over every row."""
    # DuckDB plans an ASOF join as a nested loop when it expects at most
    # asof_loop_join_threshold (64) rows on the left ("Planning AsOf Joins", duckdb.org blog,
    # 2025-02-17). Inside an open transaction it has no row count for these temp tables and
    # expected none: the forecast of 639k slots then took 176 s instead of 0.35 s.
    con.execute("SET SESSION asof_loop_join_threshold = 0")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE forecast_slots AS
        SELECT signal, program_code, date, available_time, isodow(date) AS dow FROM {availability}""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE forecast_groups AS
        SELECT CAST(signal AS VARCHAR) AS signal, CAST(program_code AS VARCHAR) AS program_code,
               isodow(exhibition_date) AS dow, count(*) AS n,
               max(exhibition_date) AS last_date,
               arg_max(average_audience, exhibition_date, {HISTORY_DEPTH}) AS latest
        FROM {history} GROUP BY ALL""")  # the casts: an empty history frame has untyped codes
    con.execute("""CREATE OR REPLACE TEMP TABLE forecast_past_slots AS  -- a slot on or before the last exhibition
        SELECT g.signal, g.program_code, g.dow, min(s.date) AS first_date
        FROM forecast_groups g
        JOIN forecast_slots s ON g.signal = s.signal AND g.program_code = s.program_code AND g.dow = s.dow
        GROUP BY ALL HAVING min(s.date) <= any_value(g.last_date)""")
    (past,) = con.execute("SELECT count(*) FROM forecast_past_slots").fetchone()
    return _forecast_sql(history if past else None)


def _forecast_sql(history: str | None) -> str:
    """Over the temp tables of forecast_query; `history` for the per-exhibition path, or
    None when no group needs it."""
    assert HISTORY_DEPTH == 4, "the median below is written out for up to 4 values"
    latest = [f"latest[{i}]" for i in range(1, HISTORY_DEPTH + 1)]
    per_exhibition = "" if history is None else f"""
        recent AS (
            SELECT signal, program_code, isodow(exhibition_date) AS dow, exhibition_date,
                   row_number() OVER same_weekday AS n,
                   lead(exhibition_date) OVER same_weekday AS next_date,
                   average_audience AS a0,
                   lag(average_audience, 1) OVER same_weekday AS a1,
                   lag(average_audience, 2) OVER same_weekday AS a2,
                   lag(average_audience, 3) OVER same_weekday AS a3
            FROM {history} h
            SEMI JOIN forecast_past_slots p
              ON h.signal = p.signal AND h.program_code = p.program_code AND isodow(h.exhibition_date) = p.dow
            WINDOW same_weekday AS (
                PARTITION BY signal, program_code, isodow(exhibition_date) ORDER BY exhibition_date)
        ),
        candidates AS (
            -- the ASOF join below picks, per slot on D, the latest exhibition before D; an
            -- exhibition followed (same weekday) by another before the group's first slot is
            -- never that one. Dropping those leaves about one row per group to join: without
            -- it, the ASOF join sorted the whole history a second time.
            SELECT r.* FROM recent r
            JOIN forecast_past_slots p ON r.signal = p.signal AND r.program_code = p.program_code AND r.dow = p.dow
            WHERE r.next_date IS NULL OR r.next_date >= p.first_date
        ),"""
    per_exhibition_rows = "" if history is None else f"""
            SELECT signal, program_code, dow, exhibition_date,
                   {_median_of_latest(["a0", "a1", "a2", "a3"], "n")} AS predicted_audience,
                   least(n, {HISTORY_DEPTH}) AS history_size
            FROM candidates
            UNION ALL"""
    return f"""
        WITH {per_exhibition}
        rolling AS ({per_exhibition_rows}
            -- every slot of these groups comes after their last exhibition: its 4 latest
            SELECT signal, program_code, dow, last_date AS exhibition_date,
                   {_median_of_latest(latest, "n")} AS predicted_audience,
                   least(n, {HISTORY_DEPTH}) AS history_size
            FROM forecast_groups g
            ANTI JOIN forecast_past_slots p ON g.signal = p.signal AND g.program_code = p.program_code AND g.dow = p.dow
        )
        SELECT s.signal, s.program_code, s.date,
               CAST(s.dow - 1 AS TINYINT) AS weekday,
               CAST(s.available_time AS INTEGER) AS available_time,
               CAST(r.predicted_audience AS DOUBLE) AS predicted_audience,
               CAST(coalesce(r.history_size, 0) AS TINYINT) AS history_size
        FROM forecast_slots s
        ASOF LEFT JOIN rolling r
          ON s.signal = r.signal AND s.program_code = r.program_code AND s.dow = r.dow
         AND s.date > r.exhibition_date
        ORDER BY s.signal, s.program_code, s.date
    """
