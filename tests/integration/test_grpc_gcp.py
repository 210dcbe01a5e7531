"""The query service answers the same on both profiles: the same delivery run through the
pipeline on the local profile (DuckDB) and on the gcp profile (BigQuery, local-bigquery),
then the same requests to a server over each, for both backends (snapshot, warehouse)."""

from __future__ import annotations

import datetime as dt

import pytest

from airtime.warehouse import SlotFilter
from grpc_server.client import ForecastClient, query_rows
from steps import runner
from steps.scaffold import make_context
from tests.gcp_helpers import new_profile
from tests.integration.grpc_fixtures import make_backend, running_service, server_settings
from tests.pipeline_helpers import local_settings, make_source

pytestmark = pytest.mark.emulators
DAY = dt.date(2026, 11, 30)


@pytest.fixture(scope="module")
def published(tmp_path_factory, gcs_emulator, bigquery_emulator):
    """(local warehouse, gcp warehouse) after the same run, both published."""
    source = make_source(tmp_path_factory.mktemp("source"))
    local = local_settings(tmp_path_factory.mktemp("local"), source)
    runner.run_day(local, DAY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)  # read by google-cloud-storage
        gcp = new_profile(gcs_emulator, bigquery_emulator)
        gcp.upload_day(source, DAY)
        runner.run_day(gcp.settings(), DAY)
        yield (make_context(local, DAY).warehouse,
               make_context(gcp.settings(), DAY).warehouse)


@pytest.mark.parametrize("kind", ["snapshot", "warehouse"])
def test_both_profiles_answer_every_query_the_same(published, tmp_path, kind):
    local_wh, gcp_wh = published
    slots = local_wh.read_forecast(DAY)
    dates = slots["date"].to_pylist()
    first, last = min(dates), max(dates)
    signal, program = slots["signal"][0].as_py(), slots["program_code"][0].as_py()
    queries = [(SlotFilter(first, last), False), (SlotFilter(first, first + dt.timedelta(days=2), signal), False),
               (SlotFilter(first, last, None, program), False), (SlotFilter(first, last, None, program), True),
               (SlotFilter(first, first, signal, program), True)]
    answers = []
    for name, warehouse in (("local", local_wh), ("gcp", gcp_wh)):
        backend = make_backend(kind, warehouse)
        backend.refresh()
        with running_service(server_settings(tmp_path / name), backend) as service:
            target = f"127.0.0.1:{service.port}"
            with ForecastClient(target) as client:
                fresh = client.freshness()
            answers.append(((fresh.run_date, fresh.forecast_rows, fresh.availability_rows),
                            [query_rows(target, where, program=program) for where, program in queries]))
    assert answers[0] == answers[1]
    (run_date, rows, _), results = answers[0]
    assert run_date == DAY and rows == slots.num_rows
    assert len(results[0][1]) == slots.num_rows and all(r[1] for r in results)
