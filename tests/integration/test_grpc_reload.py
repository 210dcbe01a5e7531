"""Hot swaps of the served run: pagination pinned to its run, health, and no errors for
clients while a newer run is loaded."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.errors import ConfigError
from airtime.warehouse import SlotFilter
from grpc_server.backend import SnapshotBackend
from grpc_server.client import ForecastClient
from grpc_server.server import SERVICE_NAME
from tests.integration.grpc_fixtures import (  # noqa: F401 - fixtures
    forecast_table,
    make_backend,
    publish_in_subprocess,
    publish_run,
    running_service,
    settings,
    warehouse,
)

D = dt.date(2026, 12, 1)
RUN1, RUN2, RUN3 = dt.date(2026, 11, 28), dt.date(2026, 11, 29), dt.date(2026, 11, 30)


def _all_rows(store, run: dt.date) -> list[dict]:  # noqa: ANN001
    return store.read_forecast(run, SlotFilter(D, D + dt.timedelta(days=27))).to_pylist()


def _health(port: int, service: str = "") -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


@pytest.mark.parametrize("kind", ["snapshot", "warehouse"])
def test_paging_across_a_swap_continues_on_the_run_it_started_on(kind, warehouse, settings, tmp_path: Path):  # noqa: ANN001, F811
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
    backend = make_backend(kind, warehouse)
    backend.refresh()
    with running_service(settings, backend) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        end = D + dt.timedelta(days=27)
        first = client.list_slots(D, end, page_size=50)
        publish_run(warehouse, RUN2, forecast_table(RUN2), tmp_path)
        assert backend.refresh()
        rows, token = list(first.slots), first.next_page_token
        while token:
            page = client.list_slots(D, end, page_size=50, page_token=token)
            assert page.run_date == RUN1
            rows += page.slots
            token = page.next_page_token
        assert [r.__dict__ for r in rows] == _all_rows(warehouse, RUN1)
        assert client.list_slots(D, end, page_size=50).run_date == RUN2  # new pages: new run
        assert _all_rows(warehouse, RUN1) != _all_rows(warehouse, RUN2)


def test_paging_on_a_run_no_longer_held_loads_it_again_while_it_is_published(warehouse, settings,  # noqa: ANN001, F811
                                                                            tmp_path: Path):
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
    backend = SnapshotBackend(warehouse, reload_interval=3600, retain=2, pinned_runs=0)
    backend.refresh()
    with running_service(settings, backend) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        first = client.list_slots(D, D + dt.timedelta(days=27), page_size=50)
        for run in (RUN2, RUN3):  # two swaps: RUN1 is dropped from memory
            publish_run(warehouse, run, forecast_table(run), tmp_path)
            assert backend.refresh()
        page = client.list_slots(D, D + dt.timedelta(days=27), page_size=50, page_token=first.next_page_token)
        assert page.run_date == RUN1  # still published: read again from the warehouse
        assert [r.__dict__ for r in first.slots + page.slots] == _all_rows(warehouse, RUN1)[:100]
        warehouse.record_failure(RUN1, warehouse.run_record(RUN1).generation, "verify", "re-check found other rows", demote=True)
        with pytest.raises(ConfigError) as caught:
            client.list_slots(D, D + dt.timedelta(days=27), page_size=50, page_token=page.next_page_token)
        assert "FAILED_PRECONDITION" in str(caught.value)
        assert isinstance(caught.value.__cause__, grpc.RpcError)
        assert caught.value.__cause__.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_republished_date_is_a_new_run_for_page_tokens(warehouse, settings, tmp_path: Path):  # noqa: ANN001, F811
    publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path, digest="first")
    backend = make_backend("warehouse", warehouse)
    backend.refresh()
    with running_service(settings, backend) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        first = client.list_slots(D, D + dt.timedelta(days=27), page_size=50)
        publish_run(warehouse, RUN1, forecast_table(RUN2), tmp_path, digest="second")
        with pytest.raises(ConfigError) as caught:
            client.list_slots(D, D + dt.timedelta(days=27), page_size=50, page_token=first.next_page_token)
        assert caught.value.__cause__.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_health_is_not_serving_until_a_run_is_loaded(warehouse, settings, tmp_path: Path):  # noqa: ANN001, F811
    backend = make_backend("snapshot", warehouse)
    with running_service(settings, backend) as service:
        for name in ("", SERVICE_NAME):
            assert _health(service.port, name) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not backend.refresh()  # nothing published yet
        assert _health(service.port) == health_pb2.HealthCheckResponse.NOT_SERVING
        publish_run(warehouse, RUN1, forecast_table(RUN1), tmp_path)
        assert backend.refresh()
        for name in ("", SERVICE_NAME):
            assert _health(service.port, name) == health_pb2.HealthCheckResponse.SERVING
        service.health.enter_graceful_shutdown()  # what stop() does first
        assert _health(service.port) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_the_poller_loads_a_newly_published_run_by_itself(warehouse, settings, tmp_path: Path):  # noqa: ANN001, F811
    backend = SnapshotBackend(warehouse, reload_interval=0.05)
    swapped = threading.Event()
    backend.add_listener(lambda run: swapped.set() if run.id.run_date == RUN2 else None)
    with running_service(settings, backend, poll=True) as service:
        publish_in_subprocess(warehouse.path, RUN1, tmp_path)
        publish_in_subprocess(warehouse.path, RUN2, tmp_path)
        assert swapped.wait(60)
        with ForecastClient(f"127.0.0.1:{service.port}") as client:
            assert client.freshness().run_date == RUN2


def test_sixteen_clients_get_no_errors_while_runs_are_swapped(warehouse, settings, tmp_path: Path):  # noqa: ANN001, F811
    runs = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(6)]
    expected = {}
    publish_run(warehouse, runs[0], forecast_table(runs[0], days=60), tmp_path)
    backend = SnapshotBackend(warehouse, reload_interval=3600, retain=8)
    backend.refresh()
    stop, failures, answered = threading.Event(), [], [0] * 16
    with running_service(settings, backend) as service:
        target = f"127.0.0.1:{service.port}"

        def client_loop(i: int) -> None:
            with ForecastClient(target) as client:
                while not stop.is_set():
                    try:
                        if i % 4 == 0:
                            run_date, slots = client.program_slots("HUCK", D + dt.timedelta(days=i))
                            assert {s.program_code for s in slots} == {"HUCK"}
                        elif i % 4 == 1:
                            run_date, slots = client.read_period(D, D + dt.timedelta(days=6))
                        else:
                            slots = list(client.iter_slots(D, D + dt.timedelta(days=13), page_size=37))
                            run_date = None
                        assert slots
                        # every answer is one whole run: compare with that run's rows
                        if run_date is not None and run_date in expected:
                            day_rows = [s.__dict__ for s in slots]
                            assert all(r in expected[run_date] for r in day_rows[:5])
                        answered[i] += 1
                    except Exception as exc:  # noqa: BLE001 - collected, asserted below
                        failures.append(f"client {i}: {exc!r}")
                        return

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for run in runs[1:]:
            publish_run(warehouse, run, forecast_table(run, days=60), tmp_path)
            expected[run] = warehouse.read_forecast(run).to_pylist()
            assert backend.refresh()
        stop.set()
        for t in threads:
            t.join(60)
    assert failures == []
    assert all(n > 0 for n in answered)
