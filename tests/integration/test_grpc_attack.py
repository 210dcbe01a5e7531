"""The service under attack: streams that never read and idle Watch streams hold no
thread, so other clients are still answered; idle readers are dropped; auth fails closed
and follows a rotated tokens file."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import ConfigError
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server.server import Service
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    FIRST_SLOT,
    ROOT,
    forecast_table,
    make_backend,
    publish_run,
    running_service,
    server_settings,
    serving_snapshot,
    warehouse,
)

RUN = dt.date(2026, 11, 30)
PROGRAMS = tuple(f"P{i:03d}" for i in range(60))  # ~66,000 slots: far more than any window
EVERYTHING = pb.StreamSlotsRequest(start_date=FIRST_SLOT.isoformat(),
                                   end_date=(FIRST_SLOT + dt.timedelta(days=365)).isoformat())
# a client that never reads: without BDP probing its window stays at the initial 64 KiB
SLOW = [("grpc.http2.bdp_probe", 0)]


@pytest.fixture(scope="module")
def big_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object]]:
    tmp = tmp_path_factory.mktemp("attack")
    store = DuckDBWarehouse(tmp / "home" / "warehouse.duckdb")
    publish_run(store, RUN, forecast_table(RUN, days=366, programs=PROGRAMS), tmp)
    backend = make_backend("snapshot", store)
    backend.refresh()
    yield tmp / "home", backend


def _program_query(port: int, metadata=()) -> int:  # noqa: ANN001
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.ForecastServiceStub(channel)
        request = pb.GetProgramSlotsRequest(program_code="P007", date=(FIRST_SLOT + dt.timedelta(days=40)).isoformat())
        return len(stub.GetProgramSlots(request, timeout=5, metadata=metadata).slots)


def _open_attack(service: Service, slow: int, watches: int, metadata=()) -> tuple[list, list]:  # noqa: ANN001
    """Idle Watch streams first, then readers that stop after one message, each kind on
    connections of its own (unread data fills a connection's window)."""
    channels = [grpc.insecure_channel(f"127.0.0.1:{service.port}", options=SLOW) for _ in range(4)]
    held = []
    for i in range(watches):
        stream = health_pb2_grpc.HealthStub(channels[i % 2]).Watch(health_pb2.HealthCheckRequest(),
                                                                   metadata=metadata)
        assert next(stream).status == health_pb2.HealthCheckResponse.SERVING
        held.append(stream)
    for i in range(slow):
        stream = pb_grpc.ForecastServiceStub(channels[2 + i % 2]).StreamSlots(EVERYTHING, metadata=metadata)
        assert next(stream).slots  # started, then never read again
        held.append(stream)
    return channels, held


def test_slow_readers_and_idle_watch_streams_do_not_deny_other_clients(big_run) -> None:  # noqa: ANN001
    home, backend = big_run
    # the old server had 4 threads: 4 such streams denied everyone; here 10x that
    with running_service(server_settings(home), backend) as service:
        channels, held = _open_attack(service, slow=20, watches=20)
        try:
            for _ in range(20):
                assert _program_query(service.port) == 3
        finally:
            for stream in held:
                stream.cancel()
            for channel in channels:
                channel.close()


def test_a_reader_that_stops_reading_is_dropped_with_deadline_exceeded(big_run) -> None:  # noqa: ANN001
    home, backend = big_run
    with running_service(server_settings(home, server_stream_idle_seconds=0.5), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}", options=SLOW) as channel:
        stream = pb_grpc.ForecastServiceStub(channel).StreamSlots(EVERYTHING)
        read = len(next(stream).slots)
        time.sleep(2)
        with pytest.raises(grpc.RpcError) as caught:
            for message in stream:
                read += len(message.slots)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert read < backend.served().record.forecast_rows
        # a reader that keeps reading gets everything
        assert sum(len(m.slots) for m in pb_grpc.ForecastServiceStub(channel).StreamSlots(EVERYTHING)) \
            == backend.served().record.forecast_rows


def test_health_check_is_open_but_watch_needs_a_token(warehouse, tmp_path: Path) -> None:  # noqa: ANN001, F811
    backend = serving_snapshot(warehouse, RUN, tmp_path)
    with running_service(server_settings(tmp_path / "home", tokens="s3cret"), backend) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            next(health.Watch(health_pb2.HealthCheckRequest(), timeout=5))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=5,
                             metadata=(("authorization", "Bearer s3cret"),))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


def test_tokens_file_rotated_in_place_is_used_without_restart(big_run, tmp_path: Path) -> None:  # noqa: ANN001
    home, backend = big_run
    tokens = tmp_path / "secret" / "tokens"
    tokens.parent.mkdir()
    tokens.write_text("old-token\n")
    with running_service(server_settings(home, tokens_file=tokens), backend) as service:
        old, new = (("authorization", "Bearer old-token"),), (("authorization", "Bearer new-token"),)
        assert _program_query(service.port, old) == 3
        replacement = tokens.with_name("tokens.new")
        replacement.write_text("# rotated\nnew-token\n")
        os.replace(replacement, tokens)  # as the kubelet swaps a Secret volume: a new inode
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _program_query(service.port, new) == 3
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                assert time.monotonic() < deadline, "the rotated token was never accepted"
                time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as caught:
            _program_query(service.port, old)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_tokens_file_with_no_token_refuses_to_build_the_server(warehouse, tmp_path: Path) -> None:  # noqa: ANN001, F811
    backend = serving_snapshot(warehouse, RUN, tmp_path)
    tokens = tmp_path / "tokens"
    tokens.write_text("# no tokens yet\n\n")
    with pytest.raises(ConfigError, match="no bearer token"):
        with running_service(server_settings(tmp_path / "home", tokens_file=tokens), backend):
            pass


@pytest.mark.parametrize("module", ["grpc_server.server", "cli.main"])
def test_tokens_that_yield_none_stop_the_process_with_exit_2_and_one_line(tmp_path: Path, module: str) -> None:
    args = ["--port", "0"] if module == "grpc_server.server" else ["serve", "--port", "0"]
    env = {**os.environ, "AIRTIME_HOME": str(tmp_path / "home"), "AIRTIME_TOKENS": ",,,",
           "AIRTIME_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "AIRTIME_TOKENS yield no bearer token" in lines[0], done.stderr


def test_calls_past_the_server_wide_limit_are_resource_exhausted(big_run) -> None:  # noqa: ANN001
    home, backend = big_run
    with running_service(server_settings(home, server_max_concurrent_calls=3), backend) as service:
        channels, held = _open_attack(service, slow=0, watches=3)
        try:
            with pytest.raises(grpc.RpcError) as caught:
                _program_query(service.port)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            for stream in held:
                stream.cancel()
            for channel in channels:
                channel.close()
        deadline = time.monotonic() + 10
        while True:  # the cancelled streams give their places back
            try:
                assert _program_query(service.port) == 3
                break
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.1)
