"""Clients that withhold: calls opened and never finished, connections that never say
hello, headers left half-sent. None of them may take a call slot, a thread or a second of
someone else's answer (issue 20; docs/query-service.md, "Under load and attack")."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server import interceptors
from grpc_server.server import Service
from tests.h2_attacker import (
    AttackProcess,
    Withholder,
    closed_by_peer,
    grpc_message,
    open_silent,
    open_unfinished_headers,
)
from tests.integration.grpc_fixtures import (
    FIRST_SLOT,
    running_service,
    server_settings,
    serving_snapshot,
)

RUN = dt.date(2026, 11, 30)
TOKEN = "s3cret-token"
FRESHNESS = "/airtime.v1.ForecastService/GetFreshness"
# Every call of the client with a token is answered, none slower than this at p99: a
# denial, not a figure. The figure (p99 under attack against quiet, target within 2x) is
# `make bench-grpc`'s row "with 1,100 half-open streams": timings belong to benchmarks.
DENIED = 0.1
QUERY = pb.GetProgramSlotsRequest(program_code="HUCK", date=FIRST_SLOT.isoformat())


@pytest.fixture(scope="module")
def home_and_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object]]:
    tmp = tmp_path_factory.mktemp("withholding")
    backend = serving_snapshot(DuckDBWarehouse(tmp / "home" / "warehouse.duckdb"), RUN, tmp)
    yield tmp / "home", backend


def _metric(service: Service, name: str, **labels: str) -> float:
    for family in service.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def _eventually(service: Service, name: str, value: float, **labels: str) -> float:
    """The metric once it reaches value (the last refused calls are still being counted
    when their client has its answer), or what it is after a few seconds."""
    deadline = time.monotonic() + 5
    while (seen := _metric(service, name, **labels)) < value and time.monotonic() < deadline:
        time.sleep(0.02)
    return seen


def _p99(stub: pb_grpc.ForecastServiceStub, metadata: tuple = (), calls: int = 300) -> float:
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        assert stub.GetProgramSlots(QUERY, metadata=metadata, timeout=5).slots
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return seconds[int(calls * 0.99) - 1]


def _ready(service: Service) -> Service:
    """running_service drives the backend itself: mark the first look at the ledger done."""
    service.started.set()
    service.checked.set()
    return service


def test_a_client_without_a_token_holds_nothing_whatever_it_withholds(home_and_backend) -> None:  # noqa: ANN001
    """The issue's attack: 11 connections x 100 calls whose request never comes. Before,
    they held all 1,000 slots and every other call got RESOURCE_EXHAUSTED; now each
    ends UNAUTHENTICATED as its headers arrive, and a client with a token sees no
    difference."""
    home, backend = home_and_backend
    metadata = (("authorization", f"Bearer {TOKEN}"),)
    with running_service(server_settings(home, tokens=TOKEN), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = pb_grpc.ForecastServiceStub(channel)
        quiet = _p99(stub, metadata)
        with AttackProcess(service.port, FRESHNESS, connections=11, streams=100) as attack:
            under_attack = _p99(stub, metadata)
            # a health check, open without a token, is answered too
            assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert attack.statuses() == {str(grpc.StatusCode.UNAUTHENTICATED.value[0]): 1100}
        print(f"p99 quiet {quiet * 1000:.2f} ms, under attack {under_attack * 1000:.2f} ms")
        assert under_attack < DENIED
        assert _eventually(service, "airtime_grpc_requests_total", 1100, method=FRESHNESS,
                           code="UNAUTHENTICATED") == 1100
        assert _metric(service, "airtime_grpc_refused_total", reason=interceptors.UNAUTHENTICATED) == 1100
        assert service.admission.in_flight == 0 and service.admission.waiting == 0


def test_withheld_messages_wait_in_a_bounded_room_never_in_a_call_slot(home_and_backend, caplog) -> None:  # noqa: ANN001
    """Without tokens anyone may call, so the room for calls waiting for their message is
    bounded instead: past it the oldest is crowded out, and each waits receive_seconds at
    most. Calls that send their message meanwhile are answered as if nothing happened."""
    home, backend = home_and_backend
    settings = server_settings(home, server_receive_seconds=1.5, server_max_waiting_calls=500)
    caplog.set_level(logging.WARNING, logger="grpc_server.interceptors")
    with running_service(settings, backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = pb_grpc.ForecastServiceStub(channel)
        quiet = _p99(stub)
        started = time.monotonic()
        half_message = grpc_message(b"x" * 100)[:8]
        with AttackProcess(service.port, FRESHNESS, connections=6, streams=100) as nothing, \
                AttackProcess(service.port, FRESHNESS, connections=5, streams=100, body=half_message) as half:
            assert service.admission.waiting <= 500
            under_attack = _p99(stub)
            assert _ready(service).ready()  # waiting calls are not saturation
            ended = nothing.statuses() + half.statuses()
            took = time.monotonic() - started
        print(f"p99 quiet {quiet * 1000:.2f} ms, under attack {under_attack * 1000:.2f} ms; all ended in {took:.1f}s")
        assert under_attack < DENIED
        assert took < 1.5 + 3.0
        exhausted, deadline = (str(code.value[0]) for code in (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                                               grpc.StatusCode.DEADLINE_EXCEEDED))
        assert set(ended) == {exhausted, deadline} and ended.total() == 1100
        assert ended[exhausted] >= 600  # 1,100 into a room of 500
        assert _eventually(service, "airtime_grpc_refused_total", ended[exhausted],
                           reason=interceptors.CROWDED_OUT) == ended[exhausted]
        assert _eventually(service, "airtime_grpc_refused_total", ended[deadline],
                           reason=interceptors.RECEIVE_TIMEOUT) == ended[deadline]
        assert service.admission.waiting == 0 and service.admission.in_flight == 0
    # logged, but at most one line per reason and period, however many calls
    lines = [r for r in caplog.records if r.name == "grpc_server.interceptors"]
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]


def test_a_body_that_is_no_message_is_invalid_argument_and_logged_quietly(home_and_backend, caplog) -> None:  # noqa: ANN001
    home, backend = home_and_backend
    caplog.set_level(logging.INFO)
    with running_service(server_settings(home), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        raw = channel.unary_unary(FRESHNESS)  # no serializer: the bytes go as they are
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff\xff\xff\xff", timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid GetFreshness request" in caught.value.details()
        assert _eventually(service, "airtime_grpc_requests_total", 1, method=FRESHNESS, code="INVALID_ARGUMENT") == 1
    access = [r for r in caplog.records if r.name == "grpc_server.access"]
    assert any(getattr(r, "code", None) == "INVALID_ARGUMENT" for r in access)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text


def test_calls_past_the_slots_are_refused_and_readiness_reports_saturation(home_and_backend, monkeypatch) -> None:  # noqa: ANN001
    home, backend = home_and_backend
    monkeypatch.setattr(interceptors, "SATURATION_SECONDS", 0.5)
    with running_service(server_settings(home, server_max_concurrent_calls=2), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        _ready(service)
        health = health_pb2_grpc.HealthStub(channel)
        watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(2)]
        for watch in watches:
            next(watch)
        assert not service.ready()  # every slot taken
        with pytest.raises(grpc.RpcError) as caught:
            pb_grpc.ForecastServiceStub(channel).GetProgramSlots(QUERY, timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _metric(service, "airtime_grpc_refused_total", reason=interceptors.BUSY) == 1
        for watch in watches:
            watch.cancel()
        deadline = time.monotonic() + 5
        while not service.ready():  # the slots come back, and the refusal ages out
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert pb_grpc.ForecastServiceStub(channel).GetProgramSlots(QUERY, timeout=5).slots


def test_connections_that_never_finish_their_preface_or_headers_stop_no_one(home_and_backend) -> None:  # noqa: ANN001
    home, backend = home_and_backend
    with running_service(server_settings(home, server_handshake_seconds=1.0), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        silent = open_silent(service.port, 50)
        stuck = open_unfinished_headers(service.port, FRESHNESS, 50)
        try:
            stub = pb_grpc.ForecastServiceStub(channel)
            assert stub.GetProgramSlots(QUERY, timeout=5).slots
            # the handshake deadline closes those that never sent their preface
            assert closed_by_peer(silent, timeout=5) == 50
            assert stub.GetProgramSlots(QUERY, timeout=5).slots
            assert service.admission.in_flight == 0
        finally:
            for sock in silent + stuck:
                sock.close()


@pytest.mark.skipif(shutil.which("h2load") is None and not __import__("os").environ.get("CI"),
                    reason="h2load is not installed (bash .ci/install-bench-tools)")
@pytest.mark.parametrize("tokens", [TOKEN, None], ids=["tokens-required", "no-tokens"])
def test_the_issues_h2load_attack_leaves_other_clients_their_answers(home_and_backend, tokens) -> None:  # noqa: ANN001
    """Verbatim from issue 20: a length prefix of 100, 3 bytes, END_STREAM, 1,100 times."""
    home, backend = home_and_backend
    overrides = {"tokens": tokens} if tokens else {}
    metadata = (("authorization", f"Bearer {TOKEN}"),) if tokens else ()
    body = home.parent / "trunc.bin"
    body.write_bytes(b"\x00\x00\x00\x00\x64abc")
    with running_service(server_settings(home, **overrides), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = pb_grpc.ForecastServiceStub(channel)
        quiet = _p99(stub, metadata)
        attack = subprocess.Popen(
            ["h2load", "-n", "1100", "-c", "11", "-m", "100", "-H", "content-type: application/grpc",
             "-H", "te: trailers", "-d", str(body), f"http://127.0.0.1:{service.port}{FRESHNESS}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            under_attack = _p99(stub, metadata)
            out = attack.communicate(timeout=60)[0]
        finally:
            attack.kill()
        print(f"p99 quiet {quiet * 1000:.2f} ms, under attack {under_attack * 1000:.2f} ms")
        assert under_attack < DENIED
        assert "1100 done" in out, out
        refused = "UNAUTHENTICATED" if tokens else "INVALID_ARGUMENT"  # truncated: no whole message
        seen = _eventually(service, "airtime_grpc_requests_total", 1100, method=FRESHNESS, code=refused)
        codes = {code: _metric(service, "airtime_grpc_requests_total", method=FRESHNESS, code=code)
                 for code in ("OK", "UNAUTHENTICATED", "INVALID_ARGUMENT", "CANCELLED", "RESOURCE_EXHAUSTED", "UNKNOWN")}
        # grpc's core ends one call in a few hundred itself before any handler sees it (a
        # truncated message ending its stream): h2load has its answer, our metric not
        assert 1090 <= seen <= 1100 and codes["OK"] == 0, codes
        assert service.admission.in_flight == 0 and service.admission.waiting == 0


def test_no_thread_per_withheld_call(home_and_backend) -> None:  # noqa: ANN001
    import threading

    home, backend = home_and_backend
    with running_service(server_settings(home, server_receive_seconds=5.0), backend) as service:
        before = threading.active_count()
        with Withholder(service.port, FRESHNESS, connections=4, streams=100) as attack:
            deadline = time.monotonic() + 10
            while service.admission.waiting < 400:  # every withheld call has reached the server
                assert time.monotonic() < deadline, service.admission.waiting
                time.sleep(0.05)
            # the attacker's own reader threads are 4; the server adds none
            assert threading.active_count() <= before + 4 + 2
        assert attack.ended <= 400
