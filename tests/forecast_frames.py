"""The production forecast SQL (airtime/forecast.py) run on in-memory pandas frames:
what the unit and property tests feed it. pandas is a test dependency, not a runtime one."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from airtime.forecast import forecast_query, merged_history_sql


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
