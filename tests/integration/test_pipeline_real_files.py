"""The whole daily job on the real delivered files (../shared/data): every published
row equals an independent pure-Python reading and forecast."""

from __future__ import annotations

import csv
import datetime as dt

import pandas as pd
import pytest

from airtime import pipeline
from airtime.query import PeriodQuery, ProgramQuery, run_query
from tests.naive_forecast import assert_same_forecast, naive_forecast
from tests.pipeline_helpers import local_settings


def read_independently(folder):
    with (folder / "tvaberta_program_audience.csv").open(encoding="utf-8-sig", newline="") as fh:
        history = [(r["signal"], r["program_code"], dt.date.fromisoformat(r["exhibition_date"]),
                    float(r["average_audience"])) for r in csv.DictReader(fh)]
    with (folder / "tvaberta_inventory_availability.csv").open(encoding="utf-8-sig", newline="") as fh:
        slots = [(r["signal"], r["program_code"], dt.datetime.strptime(r["date"], "%d/%m/%Y").date(),
                  int(r["available_time"])) for r in csv.DictReader(fh, delimiter=";")]
    return history, slots


def test_every_published_row_matches_an_independent_implementation(tmp_path, shared_data):
    settings = local_settings(tmp_path, shared_data)
    result = pipeline.run_day(settings, dt.date(2020, 7, 21))
    assert result.record.state == "published"
    assert (result.record.audience_rows, result.record.availability_rows) == (8987, 2292)

    history, slots = read_independently(shared_data)
    warehouse = pipeline.make_context(settings, dt.date(2020, 7, 21)).warehouse
    run, rows = run_query(warehouse, PeriodQuery(dt.date(2020, 1, 1), dt.date(2020, 12, 31)))
    assert run.run_date == dt.date(2020, 7, 21)
    assert_same_forecast(pd.DataFrame(rows), naive_forecast(history, slots))
    assert sum(r["predicted_audience"] is None and r["history_size"] == 0 for r in rows) == 312

    _, [huck] = run_query(warehouse, ProgramQuery("HUCK", dt.date(2020, 8, 1), dt.date(2020, 8, 1), "SP1"))
    assert huck["history_size"] == 4 and huck["weekday"] == 5
    assert huck["predicted_audience"] == pytest.approx(1_106_053.7229, abs=1e-3)
