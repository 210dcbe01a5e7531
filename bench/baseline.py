"""The baseline: the forecast as public solutions of this challenge write it, with pandas.

Group the slots by (signal, program, weekday) with `groupby().apply`; for each slot, filter
that group's history to the exhibitions strictly before the slot date, sort by date, take
the last 4, and take their median. The history of each group is fetched once through
`groupby().indices` (not re-filtered from the whole table per slot), which is the kinder
variant: scanning all of the history per slot would be hopeless at 10M rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY = ["signal", "program_code", "weekday"]


def baseline_forecast(audience: pd.DataFrame, availability: pd.DataFrame) -> pd.DataFrame:
    audience = audience.assign(weekday=audience["exhibition_date"].dt.day_of_week)
    slots = availability.assign(weekday=availability["date"].dt.day_of_week)
    positions = audience.groupby(KEY, sort=False).indices
    columns = audience[["exhibition_date", "average_audience"]]

    def forecast_group(group: pd.DataFrame) -> pd.DataFrame:
        where = positions.get(group.name)
        if where is None:
            return group.assign(predicted_audience=np.nan, history_size=0)
        history = columns.iloc[where]
        predicted, size = [], []
        for day in group["date"]:
            last4 = history[history["exhibition_date"] < day].sort_values("exhibition_date").tail(4)
            predicted.append(last4["average_audience"].median())
            size.append(len(last4))
        return group.assign(predicted_audience=predicted, history_size=size)

    result = slots.groupby(KEY, sort=False, group_keys=False)[
        ["signal", "program_code", "date", "available_time", "weekday"]
    ].apply(forecast_group)
    return result[
        ["signal", "program_code", "date", "weekday", "available_time", "predicted_audience", "history_size"]
    ].astype({"weekday": "int8", "history_size": "int8"})
