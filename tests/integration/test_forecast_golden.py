"""The forecast on the broadcaster's real files (../shared/data): the known answers of its
README, and every row equal to the naive implementation. The files are read here with pandas,
independently of the ingest step, so a reading bug there cannot hide a forecast bug here."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from tests.forecast_frames import compute_forecast
from tests.naive_forecast import assert_same_forecast, naive_forecast


@pytest.fixture
def real(shared_data) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = shared_data
    audience = pd.read_csv(
        data / "tvaberta_program_audience.csv", encoding="utf-8-sig", dtype={"signal": str, "program_code": str}
    )
    audience["exhibition_date"] = pd.to_datetime(audience["exhibition_date"], format="%Y-%m-%d")
    availability = pd.read_csv(
        data / "tvaberta_inventory_availability.csv",
        sep=";",
        encoding="utf-8-sig",
        dtype={"signal": str, "program_code": str, "available_time": "int32"},
    )
    availability["date"] = pd.to_datetime(availability["date"], format="%d/%m/%Y")
    return audience, availability


@pytest.fixture
def forecast(real) -> pd.DataFrame:
    return compute_forecast(*real)


def test_real_files_give_one_forecast_row_per_slot(real, forecast):
    assert len(real[1]) == 2_292
    assert len(forecast) == 2_292
    assert not forecast.duplicated(["signal", "program_code", "date"]).any()


def test_real_slots_without_history_have_null_prediction_and_history_size_zero(forecast):
    missing = forecast["predicted_audience"].isna()
    assert missing.sum() == 312
    assert (forecast.loc[missing, "history_size"] == 0).all()
    assert (forecast.loc[~missing, "history_size"] > 0).all()


def test_known_answer_sp1_huck_2020_08_01(forecast):
    row = forecast[
        (forecast["signal"] == "SP1")
        & (forecast["program_code"] == "HUCK")
        & (forecast["date"] == pd.Timestamp("2020-08-01"))
    ]
    assert len(row) == 1
    assert row["weekday"].iloc[0] == 5  # a Saturday
    assert row["history_size"].iloc[0] == 4
    assert row["predicted_audience"].iloc[0] == pytest.approx(1_106_053.7229, abs=1e-4)
    assert math.floor(row["predicted_audience"].iloc[0] * 1e4) == 11_060_537_229


def test_every_real_row_equals_the_naive_implementation(real, forecast):
    audience, availability = real
    exhibitions = [
        (s, p, d.date(), v)
        for s, p, d, v in audience[["signal", "program_code", "exhibition_date", "average_audience"]].itertuples(
            index=False
        )
    ]
    slots = [
        (s, p, d.date(), int(t))
        for s, p, d, t in availability[["signal", "program_code", "date", "available_time"]].itertuples(index=False)
    ]
    expected = naive_forecast(exhibitions, slots)
    assert sum(row["predicted_audience"] is None for row in expected) == 312
    assert_same_forecast(forecast, expected)
    assert {row["date"] for row in expected} <= {
        dt.date(2020, 7, 22) + dt.timedelta(days=n) for n in range(38)
    }
