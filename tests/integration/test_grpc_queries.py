"""Every RPC against a real server on port 0, answers checked row for row against the
warehouse, for both backends."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.query import run_query
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from airtime.warehouse import SlotFilter
from grpc_server.client import ForecastClient, query_rows
from grpc_server.convert import to_date
from tests.integration.grpc_fixtures import (
    forecast_table,
    make_backend,
    publish_run,
    running_service,
    server_settings,
)

RUN = dt.date(2026, 11, 30)
D = dt.date(2026, 12, 1)


@pytest.fixture(scope="module", params=["snapshot", "warehouse"])
def served(request, tmp_path_factory):  # noqa: ANN001, ANN201
    # read-only tests: one published run and one server per backend for the module
    tmp_path = tmp_path_factory.mktemp(request.param)
    warehouse = DuckDBWarehouse(tmp_path / "home" / "warehouse.duckdb")
    settings = server_settings(tmp_path / "home")
    record = publish_run(warehouse, RUN, forecast_table(RUN), tmp_path)
    backend = make_backend(request.param, warehouse)
    backend.refresh()
    with running_service(settings, backend) as service:
        yield service, warehouse, record


def _expected(warehouse, start, end, signal=None, program=None) -> list[dict]:  # noqa: ANN001
    return warehouse.read_forecast(RUN, SlotFilter(start, end, signal, program)).to_pylist()


def _dicts(rows) -> list[dict]:  # noqa: ANN001
    return [row.__dict__ for row in rows]


@pytest.mark.parametrize("page_size", [1, 7, 100, 0])
@pytest.mark.parametrize("signal, program", [(None, None), ("SP1", None), (None, "HUCK"), ("DF", "PTV1")])
def test_pages_concatenated_equal_the_published_rows_without_duplicates(served, page_size, signal, program):  # noqa: ANN001
    service, warehouse, _ = served
    start, end = D + dt.timedelta(days=2), D + dt.timedelta(days=9)
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        rows = _dicts(client.iter_slots(start, end, signal=signal, program_code=program,
                                        page_size=page_size))
        first = client.list_slots(start, end, signal=signal, program_code=program, page_size=page_size)
    expected = _expected(warehouse, start, end, signal, program)
    assert rows == expected and len(expected) > 0
    keys = [(r["signal"], r["program_code"], r["date"]) for r in rows]
    assert len(set(keys)) == len(keys)
    assert first.total_size == len(expected) and first.run_date == RUN


def test_stream_gives_the_whole_period_in_chunks_naming_the_run(served):  # noqa: ANN001
    service, warehouse, _ = served
    channel = grpc.insecure_channel(f"127.0.0.1:{service.port}")
    stub = pb_grpc.ForecastServiceStub(channel)
    request = pb.StreamSlotsRequest(start_date=D.isoformat(), end_date=(D + dt.timedelta(days=27)).isoformat())
    responses = list(stub.StreamSlots(request, timeout=10))
    channel.close()
    assert all(r.run_date == to_date(RUN) for r in responses)
    assert sum(len(r.slots) for r in responses) == len(_expected(warehouse, D, D + dt.timedelta(days=27)))


def test_stream_of_an_empty_period_still_names_the_run(served):  # noqa: ANN001
    service, _, _ = served
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        run_date, rows = client.read_period(dt.date(2030, 1, 1), dt.date(2030, 1, 2))
    assert (run_date, rows) == (RUN, [])


def test_program_query_on_a_date_and_on_a_range(served):  # noqa: ANN001
    service, warehouse, _ = served
    day, end = D + dt.timedelta(days=3), D + dt.timedelta(days=10)
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        run_date, on_day = client.program_slots("HUCK", day)
        _, in_range = client.program_slots("VALE", start=day, end=end, signal="SP1")
    assert run_date == RUN
    assert _dicts(on_day) == _expected(warehouse, day, day, None, "HUCK")
    assert [r.signal for r in on_day] == ["BH", "DF", "SP1"]
    assert _dicts(in_range) == _expected(warehouse, day, end, "SP1", "VALE")
    assert len(in_range) == 8


def test_program_query_without_a_date_gives_every_slot_of_the_program(served):  # noqa: ANN001
    service, warehouse, _ = served
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        run_date, rows = client.program_slots("HUCK")
    assert run_date == RUN
    assert _dicts(rows) == _expected(warehouse, None, None, None, "HUCK") and len(rows) > 10


def test_program_with_slots_but_none_on_the_date_answers_empty(served):  # noqa: ANN001
    service, _, _ = served
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        assert client.program_slots("HUCK", dt.date(2031, 1, 1))[1] == []
        assert client.program_slots("VALE", D, signal="DF")[1] == []


def test_missing_prediction_is_absent_not_zero(served):  # noqa: ANN001
    service, warehouse, _ = served
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        rows = list(client.iter_slots(D, D + dt.timedelta(days=27)))
    nulls = [r for r in rows if r.predicted_audience is None]
    assert nulls and all(r.history_size == 0 for r in nulls)
    assert len(nulls) == sum(r["predicted_audience"] is None for r in _expected(warehouse, D, D + dt.timedelta(days=27)))


def test_freshness_names_the_published_run(served):  # noqa: ANN001
    service, _, record = served
    with ForecastClient(f"127.0.0.1:{service.port}") as client:
        fresh = client.freshness()
    assert fresh.run_date == RUN
    assert fresh.published_at == record.published_at
    assert fresh.forecast_rows == record.forecast_rows == 308
    assert fresh.availability_rows == 308 and fresh.audience_rows == 1
    assert fresh.loaded_at is not None


def test_query_rows_matches_the_local_query_row_for_row(served):  # noqa: ANN001
    service, warehouse, _ = served
    target = f"127.0.0.1:{service.port}"
    for where, program in ((SlotFilter(D, D + dt.timedelta(days=6)), False),
                           (SlotFilter(D, D + dt.timedelta(days=6), "SP1", "HUCK"), False),
                           (SlotFilter(D, D, program_code="PTV1"), True),
                           (SlotFilter(D, D + dt.timedelta(days=3), "BH", "PTV1"), True)):
        remote_run, remote = query_rows(target, where, program=program)
        local_run, local = run_query(warehouse, where)
        assert remote_run == local_run.run_date
        assert remote == local
