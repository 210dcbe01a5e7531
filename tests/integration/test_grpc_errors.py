"""Each error case answers its canonical status code, with BadRequest field violations
where the request was at fault."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest

from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server.errors import bad_request_violations
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    make_backend,
    running_service,
    server_settings,
    serving_snapshot,
    settings,
    warehouse,
)

RUN = dt.date(2026, 11, 30)
D = dt.date(2026, 12, 1)


@pytest.fixture
def stub(warehouse, tmp_path: Path):  # noqa: ANN001, ANN201, F811
    backend = serving_snapshot(warehouse, RUN, tmp_path)
    settings = server_settings(tmp_path / "home", max_range_days=31, max_page_size=50)  # noqa: F811
    with running_service(settings, backend) as service:
        channel = grpc.insecure_channel(f"127.0.0.1:{service.port}")
        yield pb_grpc.ForecastServiceStub(channel)
        channel.close()


def _iso(day: dt.date | None) -> str:
    return day.isoformat() if day is not None else ""


def _period(start=D, end=D + dt.timedelta(days=6), **fields) -> pb.ListSlotsRequest:  # noqa: ANN001, ANN003
    return pb.ListSlotsRequest(start_date=_iso(start), end_date=_iso(end), **fields)


def _fails(call, request) -> grpc.RpcError:  # noqa: ANN001
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request, timeout=10)
        if not isinstance(result, pb.ListSlotsResponse | pb.GetProgramSlotsResponse):
            list(result)  # a stream fails when read
    return caught.value


@pytest.mark.parametrize("request_, field", [
    (_period(end=D - dt.timedelta(days=1)), "end_date"),
    (_period(end=D + dt.timedelta(days=31)), "end_date"),
    (_period(start=None), "start_date"),
    (_period(end=None), "end_date"),
    (_period(page_size=-1), "page_size"),
    (_period(page_size=51), "page_size"),
    (_period(page_token="garbage!"), "page_token"),
    (_period(signal="S P1"), "signal"),
    (_period(program_code="HUCK;DROP"), "program_code"),
    (_period(program_code="X" * 33), "program_code"),
])
def test_bad_list_request_is_invalid_argument_naming_the_field(stub, request_, field):  # noqa: ANN001
    error = _fails(stub.ListSlots, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request_violations(error)
    assert [f for f, _ in violations] == [field], violations
    assert all(why for _, why in violations)


def test_every_violation_is_reported_at_once(stub):  # noqa: ANN001
    error = _fails(stub.ListSlots, _period(end=D - dt.timedelta(days=1), signal="?", page_size=-5))
    assert {f for f, _ in bad_request_violations(error)} == {"end_date", "signal", "page_size"}


@pytest.mark.parametrize("text", ["2026-02-30", "20261201", "2026-W49-2", "2026-12-01T00:00", "1/12/2026"])
def test_a_date_not_written_yyyy_mm_dd_or_impossible_is_invalid_argument(stub, text):  # noqa: ANN001
    request = _period()
    request.end_date = text
    error = _fails(stub.ListSlots, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(error)[0][0] == "end_date"


def test_a_run_date_with_no_published_run_is_not_found(stub):  # noqa: ANN001
    error = _fails(stub.ListSlots, _period(run_date="2026-11-29"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "2026-11-29" in error.details()


def test_bad_stream_request_is_invalid_argument(stub):  # noqa: ANN001
    request = pb.StreamSlotsRequest(start_date=_iso(D), end_date=_iso(D - dt.timedelta(days=3)))
    error = _fails(stub.StreamSlots, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(error)[0][0] == "end_date"


def test_token_reused_with_other_filters_is_invalid_argument(stub):  # noqa: ANN001
    first = stub.ListSlots(_period(page_size=5), timeout=10)
    assert first.next_page_token
    error = _fails(stub.ListSlots, _period(page_size=5, signal="SP1", page_token=first.next_page_token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(error)[0][0] == "page_token"


@pytest.mark.parametrize("request_, field", [
    (pb.GetProgramSlotsRequest(date=_iso(D)), "program_code"),
    (pb.GetProgramSlotsRequest(program_code="HU CK", date=_iso(D)), "program_code"),
    (pb.GetProgramSlotsRequest(program_code="HUCK", start_date=_iso(D),
                               end_date=_iso(D - dt.timedelta(days=1))), "end_date"),
    (pb.GetProgramSlotsRequest(program_code="HUCK", start_date=_iso(D),
                               end_date=_iso(D + dt.timedelta(days=40))), "end_date"),
    (pb.GetProgramSlotsRequest(program_code="HUCK", start_date=_iso(D)), "end_date"),
    (pb.GetProgramSlotsRequest(program_code="HUCK", date=_iso(D), start_date=_iso(D)), "start_date"),
    (pb.GetProgramSlotsRequest(program_code="HUCK", date="2026-12-32"), "date"),
    (pb.GetProgramSlotsRequest(program_code="HUCK", date=_iso(D), run_date="yesterday"), "run_date"),
])
def test_bad_program_request_is_invalid_argument_naming_the_field(stub, request_, field):  # noqa: ANN001
    error = _fails(stub.GetProgramSlots, request_)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request_violations(error)] == [field]


def test_unknown_program_is_not_found(stub):  # noqa: ANN001
    error = _fails(stub.GetProgramSlots, pb.GetProgramSlotsRequest(program_code="NOPE", date=_iso(D)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "NOPE" in error.details()


@pytest.mark.parametrize("fields", [{"program_code": "NOPE"}, {"signal": "SP9"}, {"signal": "SP1", "program_code": "NOPE"}])
def test_unknown_program_or_signal_as_a_period_filter_is_not_found(stub, fields):  # noqa: ANN001
    """Not an empty answer: a typo must not pass for "no slots" (issue 19)."""
    for call, request in ((stub.ListSlots, _period(**fields)),
                          (stub.StreamSlots, pb.StreamSlotsRequest(start_date=_iso(D), end_date=_iso(D), **fields))):
        error = _fails(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert f"is not in the published run {RUN}" in error.details()


def test_known_codes_with_no_slot_in_the_period_are_just_empty(stub):  # noqa: ANN001
    far = dt.date(2030, 1, 1)
    assert list(stub.ListSlots(_period(far, far, program_code="HUCK"), timeout=10).slots) == []
    assert list(stub.ListSlots(_period(signal="DF", program_code="VALE"), timeout=10).slots) == []


@pytest.mark.parametrize("kind", ["snapshot", "warehouse"])
def test_nothing_published_is_unavailable_on_every_rpc(kind, warehouse, settings):  # noqa: ANN001, F811
    backend = make_backend(kind, warehouse)
    backend.refresh()
    with running_service(settings, backend) as service:
        channel = grpc.insecure_channel(f"127.0.0.1:{service.port}")
        stub = pb_grpc.ForecastServiceStub(channel)
        for call, request in (
            (stub.ListSlots, _period()),
            (stub.StreamSlots, pb.StreamSlotsRequest(start_date=_iso(D), end_date=_iso(D))),
            (stub.GetProgramSlots, pb.GetProgramSlotsRequest(program_code="HUCK", date=_iso(D))),
            (stub.GetFreshness, pb.GetFreshnessRequest()),
        ):
            error = _fails(call, request)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, call
            assert "published" in error.details()
        channel.close()


def test_expired_deadline_is_deadline_exceeded(stub):  # noqa: ANN001
    request = pb.StreamSlotsRequest(start_date=_iso(D), end_date=_iso(D + dt.timedelta(days=27)))
    # a deadline already past when the call starts: a tiny positive one races a fast
    # loopback answer and made this test flaky
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamSlots(request, timeout=-1))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_oversized_request_is_resource_exhausted(stub):  # noqa: ANN001
    error = _fails(stub.ListSlots, _period(signal="S" * (2 * 1024 * 1024)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_an_old_clients_date_messages_are_refused_not_misread(stub):  # noqa: ANN001
    """Before the ISO strings, start_date and end_date were google.type.Date under numbers
    1 and 2 (now reserved): such a request must fail as missing its dates."""
    from google.type import date_pb2

    def field(number: int, body: bytes) -> bytes:  # a length-delimited field, body < 128 bytes
        return bytes([number << 3 | 2, len(body)]) + body

    old = b"".join(field(n, date_pb2.Date(year=2026, month=12, day=d).SerializeToString())
                   for n, d in ((1, 1), (2, 7)))
    request = pb.ListSlotsRequest.FromString(old)
    assert request.start_date == "" and request.SerializeToString() == old  # kept as unknown fields
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListSlots(request, timeout=10)  # the old bytes, as they are
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request_violations(caught.value)] == ["start_date", "end_date"]
