"""The one business rule, in DuckDB SQL (see DESIGN.md, "The forecast").

For each slot (signal, program_code, date D): the median audience of the 4 most recent
exhibitions of the same signal and program, strictly before D, on D's weekday.

Computed without a fan-out join: a window gives, at every exhibition, the median and
count of it and its 3 same-weekday predecessors; an ASOF join then picks, per slot, the
latest exhibition strictly before D. That is O(n log n) in the history size, which is
what keeps the 10M-row benchmark in memory and fast.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

HISTORY_DEPTH = 4


def merged_history_sql(previous: str | None, audience: str) -> str:
    """History after a delivery: one row per (signal, program_code, exhibition_date),
    the latest delivery wins. Takes `$run_date` as the delivery date of `audience`."""
    fresh = (
        f"SELECT signal, program_code, exhibition_date, program_start_time, average_audience,"
        f" CAST($run_date AS DATE) AS delivered_on FROM {audience}"
    )
    union = fresh if previous is None else (
        f"{fresh} UNION ALL SELECT signal, program_code, exhibition_date, program_start_time,"
        f" average_audience, delivered_on FROM {previous} WHERE delivered_on < CAST($run_date AS DATE)"
    )
    return f"""
        SELECT signal, program_code, exhibition_date, program_start_time, average_audience, delivered_on
        FROM ({union})
        QUALIFY row_number() OVER (
            PARTITION BY signal, program_code, exhibition_date ORDER BY delivered_on DESC) = 1
    """


def forecast_sql(history: str, availability: str) -> str:
    """Forecast rows for every slot of `availability` (left join: none is dropped)."""
    return f"""
        WITH rolling AS (
            SELECT signal, program_code, isodow(exhibition_date) AS dow, exhibition_date,
                   median(average_audience) OVER recent AS predicted_audience,
                   count(*) OVER recent AS history_size
            FROM {history}
            WINDOW recent AS (
                PARTITION BY signal, program_code, isodow(exhibition_date)
                ORDER BY exhibition_date
                ROWS BETWEEN {HISTORY_DEPTH - 1} PRECEDING AND CURRENT ROW)
        ),
        slots AS (SELECT signal, program_code, date, available_time, isodow(date) AS dow
                  FROM {availability})
        SELECT s.signal, s.program_code, s.date,
               CAST(s.dow - 1 AS TINYINT) AS weekday,
               CAST(s.available_time AS INTEGER) AS available_time,
               CAST(r.predicted_audience AS DOUBLE) AS predicted_audience,
               CAST(coalesce(r.history_size, 0) AS TINYINT) AS history_size
        FROM slots s
        ASOF LEFT JOIN rolling r
          ON s.signal = r.signal AND s.program_code = r.program_code AND s.dow = r.dow
         AND s.date > r.exhibition_date
        ORDER BY s.signal, s.program_code, s.date
    """


def compute_forecast(history: pd.DataFrame, availability: pd.DataFrame) -> pd.DataFrame:
    """The forecast of in-memory frames (tests, notebooks); same SQL as the step."""
    con = duckdb.connect()
    con.register("history_df", history)
    con.register("availability_df", availability)
    return con.sql(forecast_sql("history_df", "availability_df")).df()


def merge_history(
    previous: pd.DataFrame | None, audience: pd.DataFrame, run_date: dt.date
) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("audience_df", audience)
    if previous is not None:
        con.register("previous_df", previous)
    sql = merged_history_sql("previous_df" if previous is not None else None, "audience_df")
    return con.execute(
        sql + " ORDER BY signal, program_code, exhibition_date", {"run_date": run_date}
    ).df()
