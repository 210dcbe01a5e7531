"""Every bad request is the client's error: fuzzed fields of every RPC, against a real
server on port 0, answer INVALID_ARGUMENT (with BadRequest details), NOT_FOUND or
FAILED_PRECONDITION (with PreconditionFailure details), never INTERNAL, never a
traceback in the log. Examples per test come from the Hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from airtime.warehouse import SlotFilter
from grpc_server.errors import bad_request_violations
from grpc_server.queries import RunId, encode_token
from tests.integration.grpc_fixtures import (
    FIRST_SLOT,
    forecast_table,
    make_backend,
    publish_run,
    running_service,
    server_settings,
)

RUN = dt.date(2026, 11, 30)
CLIENT_ERRORS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                 grpc.StatusCode.FAILED_PRECONDITION}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Target:
    stub: pb_grpc.ForecastServiceStub
    run: RunId
    tokens: list[str] = field(default_factory=list)


@pytest.fixture(scope="module", params=["snapshot", "warehouse"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    warehouse = DuckDBWarehouse(tmp / "home" / "warehouse.duckdb")
    publish_run(warehouse, RUN, forecast_table(RUN), tmp)
    backend = make_backend(request.param, warehouse)
    backend.refresh()
    records = _Records()
    logging.getLogger().addHandler(records)
    try:
        with running_service(server_settings(tmp / "home"), backend) as service, \
                grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            stub = pb_grpc.ForecastServiceStub(channel)
            tokens = []  # real tokens of other queries: "another filter's token"
            for signal in ("", "SP1", "DF"):
                page = stub.ListSlots(pb.ListSlotsRequest(
                    start_date=FIRST_SLOT.isoformat(), end_date=(FIRST_SLOT + dt.timedelta(days=9)).isoformat(),
                    signal=signal, page_size=7), timeout=10)
                tokens.append(page.next_page_token)
            yield Target(stub, backend.served().id, tokens)
    finally:
        logging.getLogger().removeHandler(records)
    problems = [r for r in records.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, [r.getMessage() for r in problems]


INT32 = st.integers(-2**31, 2**31 - 1)
NEAR = st.dates(FIRST_SLOT - dt.timedelta(days=400), FIRST_SLOT + dt.timedelta(days=400))
# request dates are ISO strings (YYYY-MM-DD): real ones, impossible ones, other ISO 8601
# spellings the server must refuse, and any text
DATES = st.one_of(
    st.none(),
    NEAR.map(dt.date.isoformat),
    st.builds("{:04d}-{:02d}-{:02d}".format, st.integers(-1, 10_001), st.integers(-1, 13), st.integers(-1, 32)),
    st.builds("{}-{}-{}".format, INT32, INT32, INT32),
    NEAR.map(lambda d: d.strftime("%Y%m%d")),
    NEAR.map(lambda d: d.isocalendar()).map(lambda c: f"{c[0]}-W{c[1]:02d}-{c[2]}"),
    NEAR.map(lambda d: f"{d.isoformat()}T00:00:00"),
    st.text(max_size=20),
)
# the pinned run: none (latest), the published one, or dates with no published run
RUN_DATES = st.one_of(st.just(""), st.just(RUN.isoformat()), DATES.map(lambda d: d or ""))
CODES = st.one_of(st.sampled_from(["", "SP1", "DF", "HUCK", "VALE", "NOPE", "_999", "a b", "x" * 33]),
                  st.text(max_size=40))
PAGE_SIZES = st.one_of(st.sampled_from([0, 1, 7, 1000, 10_000, 10_001, -1]), INT32)


@st.composite
def page_tokens(draw: st.DrawFn, request: pb.ListSlotsRequest, target: Target) -> str:
    same = SlotFilter(_date(request.start_date), _date(request.end_date), request.signal or None,
                      request.program_code or None)
    kind = draw(st.sampled_from(["none", "random bytes", "text", "other filter", "truncated",
                                 "other run", "forged offset"]))
    if kind == "none":
        return ""
    if kind == "random bytes":
        return base64.urlsafe_b64encode(draw(st.binary(max_size=64))).decode().rstrip("=")
    if kind == "text":
        return draw(st.text(max_size=60))
    real = draw(st.sampled_from(target.tokens))
    if kind == "other filter":
        return real
    if kind == "truncated":
        return real[: draw(st.integers(0, len(real) - 1))]
    offset = draw(st.integers(0, 2**64 - 1))
    if kind == "other run":
        other = RunId(draw(st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))), draw(st.integers(-2**63, 2**63 - 1)))
        return encode_token(other, offset % 1000, same)
    return encode_token(target.run, offset, same)  # checksummed, not signed: anyone can forge one


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _period(message: type, start, end, signal: str, program: str, run_date: str = ""):  # noqa: ANN001, ANN202
    return message(start_date=start or "", end_date=end or "", signal=signal, program_code=program,
                   run_date=run_date)


def _answers_or_client_error(call) -> None:  # noqa: ANN001
    try:
        call()
    except grpc.RpcError as exc:
        code = exc.code()
        assert code in CLIENT_ERRORS, (code, exc.details())
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert bad_request_violations(exc), exc.details()
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            status = rpc_status.from_call(exc)
            assert status is not None and any(
                d.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR) for d in status.details)


@given(data=st.data(), start=DATES, end=DATES, signal=CODES, program=CODES, page_size=PAGE_SIZES,
       run_date=RUN_DATES)
def test_list_slots_fuzz_is_answered_or_a_client_error(target: Target, data, start, end, signal,  # noqa: ANN001
                                                        program, page_size, run_date) -> None:
    request = _period(pb.ListSlotsRequest, start, end, signal, program, run_date)
    request.page_size = page_size
    request.page_token = data.draw(page_tokens(request, target))
    _answers_or_client_error(lambda: target.stub.ListSlots(request, timeout=10))


@given(start=DATES, end=DATES, signal=CODES, program=CODES, run_date=RUN_DATES)
def test_stream_slots_fuzz_is_answered_or_a_client_error(target: Target, start, end, signal,  # noqa: ANN001
                                                          program, run_date) -> None:
    request = _period(pb.StreamSlotsRequest, start, end, signal, program, run_date)
    _answers_or_client_error(lambda: list(target.stub.StreamSlots(request, timeout=10)))


@given(program=CODES, signal=CODES, when=st.sampled_from(["none", "date", "range", "both"]), first=DATES,
       second=DATES, run_date=RUN_DATES)
def test_get_program_slots_fuzz_is_answered_or_a_client_error(target: Target, program, signal, when,  # noqa: ANN001
                                                               first, second, run_date) -> None:
    request = pb.GetProgramSlotsRequest(program_code=program, signal=signal, run_date=run_date)
    if when in ("date", "both"):
        request.date = first or ""
    if when in ("range", "both"):
        request.start_date, request.end_date = first or "", second or ""
    _answers_or_client_error(lambda: target.stub.GetProgramSlots(request, timeout=10))


@given(run_date=RUN_DATES)
def test_get_freshness_fuzz_is_answered_or_a_client_error(target: Target, run_date) -> None:  # noqa: ANN001
    _answers_or_client_error(lambda: target.stub.GetFreshness(pb.GetFreshnessRequest(run_date=run_date),
                                                              timeout=10))


def test_a_forged_token_past_the_end_is_invalid_argument(target: Target) -> None:
    query = SlotFilter(FIRST_SLOT, FIRST_SLOT, None, None)
    request = pb.ListSlotsRequest(start_date=FIRST_SLOT.isoformat(), end_date=FIRST_SLOT.isoformat(),
                                  page_token=encode_token(target.run, 2**64 - 1, query))
    with pytest.raises(grpc.RpcError) as caught:
        target.stub.ListSlots(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(caught.value)[0][0] == "page_token"


def test_a_token_of_a_run_no_longer_served_is_failed_precondition(target: Target) -> None:
    query = SlotFilter(FIRST_SLOT, FIRST_SLOT, None, None)
    gone = RunId(RUN - dt.timedelta(days=3), 1)
    request = pb.ListSlotsRequest(start_date=FIRST_SLOT.isoformat(), end_date=FIRST_SLOT.isoformat(),
                                  page_token=encode_token(gone, 1, query))
    with pytest.raises(grpc.RpcError) as caught:
        target.stub.ListSlots(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

