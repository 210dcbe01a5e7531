"""Published runs written straight into a DuckDB warehouse, and running servers on port 0.

Independent of the pipeline's steps: a run is the Parquet files load_run takes, a load,
then publish, exactly the warehouse calls the verify step ends with.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.schema import FORECAST
from airtime.settings import Settings
from airtime.warehouse import Figures, RunLoad, RunRecord
from grpc_server.backend import ForecastBackend, SnapshotBackend, WarehouseBackend
from grpc_server.server import Service, build_service

ROOT = Path(__file__).resolve().parents[2]
SIGNALS = ("BH", "DF", "SP1")
PROGRAMS = ("HUCK", "PTV1", "VALE", "_999")
FIRST_SLOT = dt.date(2026, 12, 1)

AUDIENCE_SCHEMA = pa.schema([
    ("signal", pa.string()), ("program_code", pa.string()), ("exhibition_date", pa.date32()),
    ("program_start_time", pa.timestamp("ms", tz="UTC")), ("average_audience", pa.float64()),
])
AVAILABILITY_SCHEMA = pa.schema([
    ("signal", pa.string()), ("program_code", pa.string()), ("date", pa.date32()),
    ("available_time", pa.int32()),
])


def forecast_table(run_date: dt.date, *, days: int = 28, signals=SIGNALS, programs=PROGRAMS,
                   first: dt.date = FIRST_SLOT) -> pa.Table:
    """A full grid of slots; values depend on the run date, so runs are told apart.
    Every 7th slot has no history (null prediction), and DF does not air VALE."""
    salt = run_date.toordinal() % 97
    rows: dict[str, list] = {name: [] for name in FORECAST.arrow_schema.names}
    for s, signal in enumerate(signals):
        for p, program in enumerate(programs):
            if (signal, program) == ("DF", "VALE"):
                continue
            for d in range(days):
                date = first + dt.timedelta(days=d)
                n = s * 1000 + p * 100 + d
                rows["signal"].append(signal)
                rows["program_code"].append(program)
                rows["date"].append(date)
                rows["weekday"].append(date.weekday())
                rows["available_time"].append(10 + (n + salt) % 290)
                history = 0 if n % 7 == 0 else 1 + n % 4
                rows["history_size"].append(history)
                rows["predicted_audience"].append(None if history == 0 else 1000.5 * (n + salt))
    return pa.Table.from_pydict(rows, schema=FORECAST.arrow_schema)


def publish_run(warehouse: DuckDBWarehouse, run_date: dt.date, forecast: pa.Table,
                folder: Path, digest: str | None = None) -> RunRecord:
    """Load and publish a run made of `forecast` (plus small matching raw tables)."""
    folder = folder / f"run-{run_date}-{digest or 'a'}"
    folder.mkdir(parents=True, exist_ok=True)
    availability = forecast.select(["signal", "program_code", "date", "available_time"])
    audience = pa.Table.from_pylist(
        [{"signal": "SP1", "program_code": "HUCK", "exhibition_date": run_date,
          "program_start_time": dt.datetime.combine(run_date, dt.time(20), dt.UTC),
          "average_audience": 12345.5}],
        schema=AUDIENCE_SCHEMA,
    )
    files = {}
    for name, table in (("audience", audience), ("availability", availability.cast(AVAILABILITY_SCHEMA)),
                        ("forecast", forecast)):
        files[name] = folder / f"{name}.parquet"
        pq.write_table(table, files[name])
    digest = digest or f"digest-{run_date}"
    figures = {"audience": Figures(1, 0), "availability": Figures(availability.num_rows, 0),
               "forecast": Figures(forecast.num_rows, 0)}
    warehouse.load_run(RunLoad(run_date=run_date, generation=digest, input_digest=digest, files=files,
                               figures=figures, started_at=dt.datetime.now(dt.UTC)))
    warehouse.publish(run_date, digest, digest)
    record = warehouse.run_record(run_date)
    assert record is not None
    return record


def server_settings(home: Path, **overrides) -> Settings:  # noqa: ANN003
    # reload_interval: tests drive reloads with backend.refresh(), the poller stays idle
    values = {"home": home, "metrics_port": 0, "reload_interval_seconds": 3600.0, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_backend(kind: str, warehouse: DuckDBWarehouse) -> ForecastBackend:
    if kind == "warehouse":
        return WarehouseBackend(warehouse, reload_interval=3600.0)
    return SnapshotBackend(warehouse, reload_interval=3600.0)


def serving_snapshot(warehouse: DuckDBWarehouse, run_date: dt.date, folder: Path) -> ForecastBackend:
    """A snapshot backend already serving one freshly published run."""
    publish_run(warehouse, run_date, forecast_table(run_date), folder)
    backend = make_backend("snapshot", warehouse)
    backend.refresh()
    return backend


def publish_in_subprocess(path: Path, run_date: dt.date, folder: Path, days: int = 28) -> None:
    """publish_run from another process, as the pipeline does beside a running server.
    (One process cannot hold a DuckDB file read-only and read-write at once; two can,
    taking turns on the file lock.)"""
    code = (
        "import datetime as dt, sys; from pathlib import Path;"
        "from airtime.duckdb_warehouse import DuckDBWarehouse;"
        "from tests.integration.grpc_fixtures import forecast_table, publish_run;"
        "d = dt.date.fromisoformat(sys.argv[2]);"
        "publish_run(DuckDBWarehouse(Path(sys.argv[1])), d, forecast_table(d, days=int(sys.argv[4])),"
        " Path(sys.argv[3]))"
    )
    subprocess.run([sys.executable, "-c", code, str(path), run_date.isoformat(), str(folder), str(days)],
                   check=True, cwd=ROOT, timeout=120)


@contextlib.contextmanager
def running_service(settings: Settings, backend: ForecastBackend, *, poll: bool = False,
                    **kwargs) -> Iterator[Service]:  # noqa: ANN003
    """A started server on a free port. Without poll the test drives backend.refresh()
    itself: a poller reading the file while the test writes it would trip DuckDB's
    one-configuration-per-process rule."""
    service = build_service("127.0.0.1:0", settings=settings, backend=backend, poll=poll, **kwargs)
    service.server.start()
    try:
        yield service
    finally:
        service.stop(grace=None)


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(tmp_path / "home" / "warehouse.duckdb")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return server_settings(tmp_path / "home")


def airtime_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`airtime ARGS` as a user runs it: a process of its own, output captured."""
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def wait_until_serving(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until the `airtime serve` process on port says SERVING (health Check, which needs no
    token); fails at once if the process exits."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
                    return
            except grpc.RpcError:
                pass
            assert process.poll() is None, "airtime serve exited"
            assert time.monotonic() < deadline, "airtime serve never became SERVING"
            time.sleep(0.1)
