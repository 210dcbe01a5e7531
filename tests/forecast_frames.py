"""The production forecast SQL (airtime/forecast.py) run on in-memory pandas frames:
what the unit and property tests feed it. pandas is a test dependency, not a runtime one."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from airtime.forecast import CHANGED_SQL, KEPT, NEW, REWRITTEN, forecast_query, merged_history_sql


def compute_forecast(history: pd.DataFrame, availability: pd.DataFrame) -> pd.DataFrame:
    """The forecast of in-memory frames: the same SQL as the step."""
    con = duckdb.connect()
    con.register("history_df", history)
    con.register("availability_df", availability)
    return con.sql(forecast_query(con, "history_df", "availability_df")).df()


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


def three_column_delta_sql(previous: str, audience: str) -> str:
    """What airtime.forecast.create_history_delta computes, as one SELECT joining on the three
    key columns as written (takes `$run_date`): the reference its integer-key join is held to
    (tests/unit/test_forecast_property.py)."""
    day = "CAST($run_date AS DATE)"
    changed = CHANGED_SQL.format(t="t.average_audience", h="p.average_audience")
    return f"""
        SELECT coalesce(t.signal, p.signal) AS signal, coalesce(t.program_code, p.program_code) AS program_code,
               coalesce(t.exhibition_date, p.exhibition_date) AS exhibition_date,
               p.program_start_time, p.average_audience, p.delivered_on,
               t.average_audience AS delivered_audience,
               CAST(CASE WHEN t.signal IS NULL THEN {KEPT} WHEN p.average_audience IS NULL THEN {NEW}
                         ELSE {REWRITTEN} END AS TINYINT) AS change
        FROM (SELECT signal, program_code, exhibition_date, average_audience FROM {audience}) t
        FULL JOIN (SELECT signal, program_code, exhibition_date, program_start_time, average_audience, delivered_on
                   FROM {previous}) p USING (signal, program_code, exhibition_date)
        WHERE CASE WHEN t.signal IS NULL THEN p.delivered_on < {day} AND p.exhibition_date <= {day}
                   ELSE t.exhibition_date <= {day} AND (p.average_audience IS NULL OR {changed}) END
    """
