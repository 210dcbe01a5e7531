"""A query's mistakes answer alike on every path: the command line reading the warehouse,
the command line with --server, gRPC and HTTP/JSON, against a real DuckDB warehouse and a
real server on port 0 (both backends for gRPC and HTTP).

- an unknown program or signal (a typo) is exit 7, NOT_FOUND with a ResourceInfo per
  unknown code, HTTP 404, with one message naming the run and the closest known codes;
- a broken rule (end before start, a range over the maximum, --date with --start, a
  malformed code) is exit 2, INVALID_ARGUMENT with the field, HTTP 400, with one message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import ConfigError, UnknownProgramError
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server.errors import bad_request_violations
from tests.integration.grpc_fixtures import (
    ROOT,
    forecast_table,
    make_backend,
    publish_run,
    running_service,
    server_settings,
)
from tests.integration.test_http_gateway import get

RUN = dt.date(2026, 11, 30)
START, END = "2026-12-01", "2026-12-07"  # inside the fixture's slots, 2026-12-01 .. 2026-12-28
DAY = "2026-12-05"
MAX_DAYS = 31


@dataclass(frozen=True)
class Mistake:
    """One query, as the command line, gRPC and HTTP each write it."""

    cli: tuple[str, ...]
    rpc: str  # the ForecastService method
    fields: dict[str, str]  # its request's fields
    message: str  # what every path says

    @property
    def http(self) -> str:
        fields = dict(self.fields)
        if self.rpc == "GetProgramSlots":
            code = urllib.parse.quote(fields.pop("program_code"))
            return f"/v1/programs/{code}/slots?{urllib.parse.urlencode(fields)}"
        route = "/v1/slots:stream" if self.rpc == "StreamSlots" else "/v1/slots"
        return f"{route}?{urllib.parse.urlencode(fields)}"


def _period(*extra: str, **fields: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """A period query's command line and request fields."""
    return (("query", "period", "--start", START, "--end", END, *extra),
            {"start_date": START, "end_date": END, **fields})


def _program(code: str, *extra: str, **fields: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """A program query's command line and request fields."""
    return ("query", "program", "--program", code, *extra), {"program_code": code, **fields}


def _case(query: tuple[tuple[str, ...], dict[str, str]], rpc: str, message: str) -> Mistake:
    return Mistake(query[0], rpc, query[1], message)


IN_RUN = f"is not in the published run {RUN}"
TYPOS = [
    _case(_period("--program", "HUKC", program_code="HUKC"), "StreamSlots",
          f"program 'HUKC' {IN_RUN}; did you mean HUCK?"),
    _case(_period("--program", "HUKC", program_code="HUKC"), "ListSlots",
          f"program 'HUKC' {IN_RUN}; did you mean HUCK?"),
    _case(_period("--signal", "SP2", signal="SP2"), "StreamSlots", f"signal 'SP2' {IN_RUN}; did you mean SP1?"),
    _case(_program("HUKC", "--date", DAY, date=DAY), "GetProgramSlots",
          f"program 'HUKC' {IN_RUN}; did you mean HUCK?"),
    _case(_program("huck"), "GetProgramSlots", f"program 'huck' {IN_RUN}; did you mean HUCK?"),
    _case(_program("HUCK", "--signal", "SP2", "--date", DAY, signal="SP2", date=DAY), "GetProgramSlots",
          f"signal 'SP2' {IN_RUN}; did you mean SP1?"),
    _case(_period("--signal", "XX9", "--program", "HUKC", signal="XX9", program_code="HUKC"), "StreamSlots",
          f"signal 'XX9' {IN_RUN}; its signals are BH, DF, SP1; program 'HUKC' {IN_RUN}; did you mean HUCK?"),
]
LONG = "2027-01-15"  # 46 days from START
RULES = [
    _case((("query", "period", "--start", END, "--end", START), {"start_date": END, "end_date": START}),
          "StreamSlots", f"end_date: {START} is before start_date {END}"),
    _case((("query", "period", "--start", START, "--end", LONG), {"start_date": START, "end_date": LONG}),
          "ListSlots", f"end_date: range of 46 days is longer than the maximum of {MAX_DAYS}"),
    _case(_program("HUCK", "--start", START, "--end", LONG, start_date=START, end_date=LONG), "GetProgramSlots",
          f"end_date: range of 46 days is longer than the maximum of {MAX_DAYS}"),
    _case(_program("HUCK", "--date", DAY, "--start", START, date=DAY, start_date=START), "GetProgramSlots",
          "start_date: give date, or start_date and end_date, not both"),
    _case(_program("HUCK", "--start", START, start_date=START), "GetProgramSlots",
          "end_date: required with start_date (YYYY-MM-DD)"),
    _case(_program("HU CK", "--date", DAY, date=DAY), "GetProgramSlots",
          "program_code: malformed code 'HU CK': expected 1-32 of A-Z a-z 0-9 _ -"),
    _case(_period("--signal", "S;P1", signal="S;P1"), "StreamSlots",
          "signal: malformed code 'S;P1': expected 1-32 of A-Z a-z 0-9 _ -"),
]


@dataclass
class Served:
    home: Path
    target: str
    base: str
    stub: pb_grpc.ForecastServiceStub


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mistakes")
    publish_run(DuckDBWarehouse(tmp / "home" / "warehouse.duckdb"), RUN, forecast_table(RUN), tmp)
    return tmp / "home"


@contextlib.contextmanager
def _serving(home: Path, kind: str) -> Iterator[Served]:
    backend = make_backend(kind, DuckDBWarehouse(home / "warehouse.duckdb"))
    backend.refresh()
    settings = server_settings(home, max_range_days=MAX_DAYS)
    with running_service(settings, backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        base = f"http://127.0.0.1:{service.start_http(settings, 0, '127.0.0.1')}"
        yield Served(home, f"127.0.0.1:{service.port}", base, pb_grpc.ForecastServiceStub(channel))


@pytest.fixture(scope="module", params=["snapshot", "warehouse"])
def served(request: pytest.FixtureRequest, home: Path) -> Iterator[Served]:
    with _serving(home, request.param) as found:
        yield found


@pytest.fixture(scope="module")
def remote(home: Path) -> Iterator[Served]:
    """What the command line's --server asks: the default backend."""
    with _serving(home, "snapshot") as found:
        yield found


def _grpc_error(served: Served, mistake: Mistake) -> grpc.RpcError:
    call = getattr(served.stub, mistake.rpc)
    request = getattr(pb, f"{mistake.rpc}Request")(**mistake.fields)
    with pytest.raises(grpc.RpcError) as caught:
        answer = call(request, timeout=10)
        if mistake.rpc == "StreamSlots":
            list(answer)  # a stream fails when read
    return caught.value


def _resources(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    found = []
    for detail in status.details if status else []:
        info = error_details_pb2.ResourceInfo()
        if detail.Unpack(info):
            found.append((info.resource_type, info.resource_name))
    return found


def _local_and_remote(served: Served, *args: str) -> tuple[subprocess.CompletedProcess, ...]:
    """`airtime <args>` reading the warehouse, and with --server, run side by side."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")}
    env |= {"AIRTIME_HOME": str(served.home), "AIRTIME_MAX_RANGE_DAYS": str(MAX_DAYS), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.Popen([sys.executable, "-m", "cli", *args, *where], env=env, cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for where in ((), ("--server", served.target))]
    done = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    return tuple(done)


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


@pytest.mark.parametrize("mistake", TYPOS, ids=lambda m: f"{m.rpc}:{m.message[:24]}")
def test_an_unknown_code_is_not_found_on_grpc_and_http_naming_the_closest(served: Served, mistake: Mistake) -> None:
    error = _grpc_error(served, mistake)
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, mistake.message)
    kinds = {"signal": "airtime.v1.Signal", "program_code": "airtime.v1.Program"}
    expected = [(kinds[f], mistake.fields[f]) for f in kinds if f"'{mistake.fields.get(f)}' is not in" in mistake.message]
    assert _resources(error) == expected
    status, _, body = get(served.base + mistake.http)
    answer = json.loads(body)
    assert (status, answer["code"], answer["message"]) == (404, 5, mistake.message)


@pytest.mark.parametrize("mistake", [m for m in TYPOS if m.rpc != "ListSlots"],
                         ids=lambda m: f"{' '.join(m.cli[1:])}")
def test_an_unknown_code_is_exit_7_with_one_message_locally_and_with_server(remote: Served,
                                                                          mistake: Mistake) -> None:
    line = f"error (UnknownProgramError): {mistake.message}"
    for done in _local_and_remote(remote, *mistake.cli):
        assert (done.returncode, _last_line(done.stderr), done.stdout) == (UnknownProgramError.exit_code, line, ""), \
            done.args


@pytest.mark.parametrize("mistake", RULES, ids=lambda m: m.message[:40])
def test_a_broken_rule_is_invalid_argument_on_grpc_and_400_on_http_with_one_message(served: Served,
                                                                                   mistake: Mistake) -> None:
    error = _grpc_error(served, mistake)
    field, why = mistake.message.split(": ", 1)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, mistake.message)
    assert bad_request_violations(error) == [(field, why)]
    status, _, body = get(served.base + mistake.http)
    answer = json.loads(body)
    assert (status, answer["code"], answer["message"]) == (400, 3, mistake.message)


@pytest.mark.parametrize("mistake", RULES, ids=lambda m: m.message[:40])
def test_a_broken_rule_is_exit_2_with_one_message_locally_and_with_server(remote: Served, mistake: Mistake) -> None:
    line = f"error (InvalidQueryError): {mistake.message}"
    for done in _local_and_remote(remote, *mistake.cli):
        assert (done.returncode, _last_line(done.stderr)) == (ConfigError.exit_code, line), done.args


@pytest.mark.parametrize("args", [
    ("query", "period", "--start", "2030-01-01", "--end", "2030-01-07", "--program", "HUCK"),
    ("query", "program", "--program", "VALE", "--signal", "DF"),  # both known, never together
    ("query", "program", "--program", "HUCK", "--date", "2031-01-01"),
])
def test_known_codes_with_no_slot_in_the_query_answer_empty_everywhere(remote: Served, args) -> None:  # noqa: ANN001
    local, through_server = _local_and_remote(remote, *args, "--format", "json")
    assert (local.returncode, json.loads(local.stdout)) == (0, []), local.stderr
    assert (through_server.returncode, through_server.stdout) == (0, local.stdout), through_server.stderr
