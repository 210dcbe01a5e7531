"""The whole daily job on the real delivered files (../shared/data): every published
row equals an independent pure-Python reading and forecast."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt

import pandas as pd
import pytest

from airtime.query import run_query
from airtime.warehouse import SlotFilter
from steps import runner
from steps.scaffold import make_context
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
    result = runner.run_day(settings, dt.date(2020, 7, 21))
    assert result.record.state == "published"
    assert (result.record.audience_rows, result.record.availability_rows) == (8987, 2292)

    history, slots = read_independently(shared_data)
    warehouse = make_context(settings, dt.date(2020, 7, 21)).warehouse
    run, rows = run_query(warehouse, SlotFilter(dt.date(2020, 1, 1), dt.date(2020, 12, 31)))
    assert run.run_date == dt.date(2020, 7, 21)
    assert_same_forecast(pd.DataFrame([dataclasses.asdict(r) for r in rows]), naive_forecast(history, slots))
    assert sum(r.predicted_audience is None and r.history_size == 0 for r in rows) == 312

    _, [huck] = run_query(warehouse, SlotFilter(dt.date(2020, 8, 1), dt.date(2020, 8, 1), "SP1", "HUCK"))
    assert huck.history_size == 4 and huck.weekday == 5
    assert huck.predicted_audience == pytest.approx(1_106_053.7229, abs=1e-3)
