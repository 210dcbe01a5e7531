"""What operators rely on: reflection, metrics, the access log, and a server process that
starts from settings and drains on SIGTERM."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from airtime.errors import UnknownProgramError
from airtime.query_rules import InvalidQueryError
from grpc_server.client import ForecastClient
from grpc_server.metrics import ServiceMetrics
from grpc_server.server import SERVICE_NAME
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    ROOT,
    forecast_table,
    publish_run,
    running_service,
    serving_snapshot,
    settings,
    warehouse,
)

RUN = dt.date(2026, 11, 30)
D = dt.date(2026, 12, 1)


@pytest.fixture
def published(warehouse, tmp_path: Path):  # noqa: ANN001, ANN201, F811
    return serving_snapshot(warehouse, RUN, tmp_path)


def test_reflection_describes_the_service_and_its_messages(published, settings):  # noqa: ANN001, F811
    with running_service(settings, published) as service, \
            grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = database.get_services()
        assert SERVICE_NAME in services and "grpc.health.v1.Health" in services
        method = database.FindFileContainingSymbol(SERVICE_NAME)
        assert method.name == "airtime/v1/forecast_service.proto"
        assert "google/type/date.proto" in method.dependency


def test_metrics_count_requests_by_method_and_code(published, settings):  # noqa: ANN001, F811
    metrics = ServiceMetrics()
    port = metrics.serve_http(0, addr="127.0.0.1")
    with running_service(settings, published, metrics=metrics) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        client.freshness()
        client.program_slots("HUCK", D)
        with pytest.raises(UnknownProgramError):
            client.program_slots("NOPE", D)
        # a call is counted when its handler returns, which for an error is just after
        # grpc.aio sent the status (context.abort sends it, then raises): the client can read
        # /metrics first, so give the count a moment to land
        not_found = r'airtime_grpc_requests_total\{code="NOT_FOUND",method="/airtime.v1.ForecastService/GetProgramSlots"\} 1.0'
        deadline = time.monotonic() + 5
        while True:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if re.search(not_found, text) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert re.search(r'airtime_grpc_requests_total\{code="OK",method="/airtime.v1.ForecastService/GetFreshness"\} 1.0', text)
    assert re.search(not_found, text)
    assert 'airtime_grpc_request_seconds_bucket{le="0.005",method="/airtime.v1.ForecastService/GetProgramSlots"}' in text
    assert re.search(r"airtime_served_slots 308", text)


def test_metrics_count_http_calls_by_route_template_and_status(published, settings):  # noqa: ANN001, F811
    metrics = ServiceMetrics()
    port = metrics.serve_http(0, addr="127.0.0.1")
    with running_service(settings, published, metrics=metrics) as service:
        base = f"http://127.0.0.1:{service.start_http(settings, 0, '127.0.0.1')}"
        urllib.request.urlopen(f"{base}/v1/freshness", timeout=5).read()
        for path in (f"/v1/programs/HUCK/slots?date={D}", f"/v1/programs/VALE/slots?date={D}"):
            urllib.request.urlopen(base + path, timeout=5).read()
        for path in (f"/v1/programs/NOPE/slots?date={D}", "/nowhere/../etc"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(base + path, timeout=5)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    # one label per rule, whatever the program code: two programs answered, one unknown
    assert 'airtime_http_requests_total{route="/v1/freshness",status="200"} 1.0' in text
    assert 'airtime_http_requests_total{route="/v1/programs/{program_code}/slots",status="200"} 2.0' in text
    assert 'airtime_http_requests_total{route="/v1/programs/{program_code}/slots",status="404"} 1.0' in text
    assert 'airtime_http_requests_total{route="unmatched",status="404"} 1.0' in text
    assert 'airtime_http_request_seconds_count{route="/v1/freshness"} 1.0' in text
    assert "NOPE" not in text and "nowhere" not in text


def test_access_log_has_one_structured_record_per_call(published, settings, caplog):  # noqa: ANN001, F811
    caplog.set_level(logging.INFO, logger="grpc_server.access")
    with running_service(settings, published) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        client.list_slots(D, D, page_size=3)
        with pytest.raises(InvalidQueryError):
            client.list_slots(D, D - dt.timedelta(days=1))
    records = [r for r in caplog.records if r.name == "grpc_server.access"]
    assert [(r.method, r.code) for r in records] == [
        ("/airtime.v1.ForecastService/ListSlots", "OK"),
        ("/airtime.v1.ForecastService/ListSlots", "INVALID_ARGUMENT"),
    ]
    assert all(r.duration_ms >= 0 and r.peer for r in records)


def test_server_process_serves_the_published_run_and_drains_on_sigterm(warehouse, tmp_path: Path):  # noqa: ANN001, F811
    publish_run(warehouse, RUN, forecast_table(RUN), tmp_path)
    env = {**os.environ, "AIRTIME_HOME": str(warehouse.path.parent), "AIRTIME_METRICS_PORT": "0",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "grpc_server.server", "--port", "0"], cwd=ROOT,
                               env=env, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            found = re.search(r"on port (\d+)", line)
            port = int(found.group(1)) if found else None
        assert port, "the server never said which port it listens on"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
            while health.Check(request, timeout=5).status != health_pb2.HealthCheckResponse.SERVING:
                assert time.monotonic() < deadline, "the first run never loaded"
                time.sleep(0.1)
        with ForecastClient(f"127.0.0.1:{port}") as client:
            assert client.freshness().run_date == RUN
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_create_server_gives_an_unstarted_server_and_its_port(published, settings):  # noqa: ANN001, F811
    from grpc_server.server import create_server

    server, port = create_server("127.0.0.1:0", settings=settings, backend=published, poll=False)
    assert port > 0
    server.start()
    try:
        with ForecastClient(f"127.0.0.1:{port}") as client:
            assert client.freshness().run_date == RUN
    finally:
        server.stop(None).wait()
