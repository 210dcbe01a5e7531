"""The baseline: the forecast as public solutions of this challenge write it, with pandas.

Group the slots by (signal, program, weekday) with `groupby().apply`; for each slot, filter
that group's history to the exhibitions strictly before the slot date, sort by date, take
the last 4, and take their median. The history of each group is fetched once through
`groupby().indices` (not re-filtered from the whole table per slot), which is the kinder
variant: scanning all of the history per slot would be hopeless at 10M rows.

    python -m bench.baseline CSV_FOLDER OUT_FOLDER

is the script the whole-day benchmarks time: `read_delivery`, `rolling_forecast`, the result
written to OUT_FOLDER/forecast.parquet.
"""

from __future__ import annotations

import sys
from pathlib import Path

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


def rolling_forecast(audience: pd.DataFrame, availability: pd.DataFrame) -> pd.DataFrame:
    """The same forecast vectorised, as a user who knows pandas writes it: a rolling median of
    the last 4 exhibitions per (signal, program, weekday), then for each slot the latest
    exhibition strictly before its date (`merge_asof`). Much faster than the
    groupby-apply above: the stronger opponent for the whole-day benchmark."""
    history = audience[["signal", "program_code", "exhibition_date", "average_audience"]].assign(
        weekday=audience["exhibition_date"].dt.day_of_week
    ).sort_values([*KEY, "exhibition_date"], ignore_index=True)
    groups = history.groupby(KEY, sort=False)["average_audience"]
    history["predicted_audience"] = groups.rolling(4, min_periods=1).median().to_numpy()
    history["history_size"] = (groups.cumcount() + 1).clip(upper=4)
    slots = availability.assign(weekday=availability["date"].dt.day_of_week).sort_values("date")
    result = pd.merge_asof(
        slots, history.drop(columns="average_audience").sort_values("exhibition_date"),
        left_on="date", right_on="exhibition_date", by=KEY, allow_exact_matches=False, direction="backward",
    )
    result["history_size"] = result["history_size"].fillna(0)
    return result.sort_values(["signal", "program_code", "date"])[
        ["signal", "program_code", "date", "weekday", "available_time", "predicted_audience", "history_size"]
    ].astype({"weekday": "int8", "history_size": "int8"})


def read_delivery(audience_csv: str, availability_csv: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two delivered CSV files, read as a user's script reads them (no validation)."""
    audience = pd.read_csv(audience_csv, encoding="utf-8-sig", parse_dates=["exhibition_date"],
                           dtype={"signal": "string", "program_code": "string"})
    availability = pd.read_csv(availability_csv, sep=";", encoding="utf-8-sig",
                               dtype={"signal": "string", "program_code": "string"})
    availability["date"] = pd.to_datetime(availability["date"], format="%d/%m/%Y")
    return audience, availability


def main(csv: Path, out: Path) -> None:
    audience, availability = read_delivery(str(next(csv.glob("*program_audience*.csv"))),
                                           str(next(csv.glob("*inventory_availability*.csv"))))
    rolling_forecast(audience, availability).to_parquet(out / "forecast.parquet", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
