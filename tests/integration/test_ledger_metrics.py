"""The pipeline's metrics read what real runs did: days run by `airtime run` in fresh processes
(local profile), then a real server on port 0 reads the same ledger and its /metrics port is
scraped over HTTP, as Managed Prometheus scrapes it."""

from __future__ import annotations

import datetime as dt
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from prometheus_client.parser import text_string_to_metric_families

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import InputError, IntegrityError, VerificationError
from grpc_server.backend import SnapshotBackend
from grpc_server.ledger_metrics import day_seconds
from tests.integration.grpc_fixtures import running_service, server_settings
from tests.pipeline_helpers import cli, generation_dir, make_source

DAY1, DAY2 = dt.date(2026, 11, 30), dt.date(2026, 12, 1)
STEPS = {"ingest", "preprocess", "gate", "load", "verify"}


def scrape(home: Path, ready: bool = True, **settings) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # noqa: ANN003
    """Start a server on the home's ledger, read the ledger once, GET /metrics. ready: as
    `serve` marks a started server whose first look at the ledger is over."""
    warehouse = DuckDBWarehouse(home / "warehouse.duckdb")
    backend = SnapshotBackend(warehouse, reload_interval=3600.0)
    backend.refresh()
    with running_service(server_settings(home, **settings), backend, ledger=warehouse) as service:
        service.ledger_metrics.refresh()
        if ready:
            service.started.set()
            service.checked.set()
        port = service.metrics.serve_http(0, "127.0.0.1")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def one(metrics: dict, name: str, **labels: str) -> float:
    return metrics[(name, tuple(sorted(labels.items())))]


def labelled(metrics: dict, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: value for (n, key), value in metrics.items() if n == name}


def _rewrite_audience(folder: Path, keep_every: int) -> None:
    path = folder / "program_audience.csv"
    header, *lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line]
    path.write_text("\n".join([header, *lines[::keep_every]]) + "\n", encoding="utf-8")


@pytest.fixture
def day1(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A home with DAY1 published by a real run, and DAY2's delivery: a copy of DAY1's."""
    source = tmp_path / "src"
    make_source(source / f"dt={DAY1}")
    home = tmp_path / "home"
    done = cli(home, "run", "--date", str(DAY1), "--source", str(source))
    assert done.returncode == 0, done.stderr
    shutil.copytree(source / f"dt={DAY1}", source / f"dt={DAY2}")
    yield home, source


def test_a_published_then_a_held_day_then_a_verify_mismatch_read_as_they_happened(day1) -> None:  # noqa: ANN001
    home, source = day1
    published = scrape(home)
    record = DuckDBWarehouse(home / "warehouse.duckdb").run_record(DAY1)
    assert one(published, "airtime_ledger_run_date_seconds") == day_seconds(DAY1)
    assert one(published, "airtime_ledger_published_run_date_seconds") == day_seconds(DAY1)
    assert one(published, "airtime_ledger_published_at_seconds") == pytest.approx(record.published_at.timestamp())
    assert one(published, "airtime_served_published_at_seconds") == pytest.approx(record.published_at.timestamp())
    assert labelled(published, "airtime_ledger_run_state", "state")["published"] == 1
    assert sum(labelled(published, "airtime_ledger_run_state", "state").values()) == 1
    assert one(published, "airtime_ledger_run_exit_code") == 0
    assert labelled(published, "airtime_ledger_run_rows", "table") == {
        "audience": record.audience_rows, "availability": record.availability_rows, "forecast": record.forecast_rows}
    assert record.forecast_rows > 0
    assert one(published, "airtime_ledger_run_quarantined_rows") == record.quarantined_rows
    assert set(labelled(published, "airtime_ledger_step_seconds", "step")) == STEPS
    assert all(seconds >= 0 for seconds in labelled(published, "airtime_ledger_step_seconds", "step").values())
    assert labelled(published, "airtime_ledger_step_attempts", "step") == dict.fromkeys(STEPS, 1)
    assert set(labelled(published, "airtime_ledger_step_failed", "step").values()) == {0}
    assert one(published, "airtime_ledger_held_deliveries") == 0
    assert one(published, "airtime_server_ready") == 1  
    assert set(labelled(published, "airtime_ledger_failing_runs", "exit_code").values()) == {0}

    # DAY2: a third of the audience rows: the gate holds the delivery (exit 3)
    _rewrite_audience(source / f"dt={DAY2}", 3)
    held = cli(home, "run", "--date", str(DAY2), "--source", str(source))
    assert held.returncode == InputError.exit_code, held.stderr
    after_hold = scrape(home)
    assert one(after_hold, "airtime_ledger_run_date_seconds") == day_seconds(DAY2)
    assert one(after_hold, "airtime_ledger_published_run_date_seconds") == day_seconds(DAY1)
    assert labelled(after_hold, "airtime_ledger_run_state", "state")["held"] == 1
    assert one(after_hold, "airtime_ledger_run_exit_code") == InputError.exit_code
    assert one(after_hold, "airtime_ledger_held_deliveries") == 1
    assert labelled(after_hold, "airtime_ledger_step_failed", "step") == {
        "ingest": 0, "preprocess": 0, "gate": 1}  # load and verify never ran
    assert one(after_hold, "airtime_ledger_failing_runs", exit_code="3") == 1

    # DAY1's published forecast altered in the warehouse: `airtime verify` demotes it (exit 4)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("UPDATE forecast SET predicted_audience = predicted_audience * 2"
                " WHERE rowid = (SELECT min(rowid) FROM forecast WHERE predicted_audience IS NOT NULL)")
    con.close()
    mismatch = cli(home, "verify", "--date", str(DAY1))
    assert mismatch.returncode == VerificationError.exit_code, mismatch.stderr
    after_mismatch = scrape(home)
    assert one(after_mismatch, "airtime_ledger_failing_runs", exit_code=str(VerificationError.exit_code)) == 1
    assert one(after_mismatch, "airtime_ledger_published_run_date_seconds") == 0  # nothing published now
    assert one(after_mismatch, "airtime_ledger_held_deliveries") == 1  # DAY2 still waits


def test_damaged_history_fails_the_next_day_with_exit_9_and_a_new_delivery_clears_it(day1) -> None:  # noqa: ANN001
    home, source = day1
    # the day's audience: most of the history the next day starts from
    (history,) = (generation_dir(home, DAY1) / "ingest").glob("audience-*.parquet")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (average_audience * 2 AS average_audience) FROM '{history}')"
                f" TO '{history}.tmp' (FORMAT parquet)")
    con.close()
    good = history.read_bytes()
    Path(f"{history}.tmp").replace(history)
    damaged = cli(home, "run", "--date", str(DAY2), "--source", str(source))
    assert damaged.returncode == IntegrityError.exit_code, damaged.stderr
    failed = scrape(home)
    assert labelled(failed, "airtime_ledger_run_state", "state")["failed"] == 1
    assert one(failed, "airtime_ledger_run_exit_code") == IntegrityError.exit_code
    assert one(failed, "airtime_ledger_failing_runs", exit_code=str(IntegrityError.exit_code)) == 1
    assert labelled(failed, "airtime_ledger_step_failed", "step")["preprocess"] == 1

    # restored (as from an object version), the run again publishes the day and the failure is gone
    history.write_bytes(good)
    again = cli(home, "run", "--date", str(DAY2), "--source", str(source))
    assert again.returncode == 0, again.stderr
    recovered = scrape(home)
    assert labelled(recovered, "airtime_ledger_run_state", "state")["published"] == 1
    assert one(recovered, "airtime_ledger_run_exit_code") == 0
    assert set(labelled(recovered, "airtime_ledger_failing_runs", "exit_code").values()) == {0}
    assert labelled(recovered, "airtime_ledger_step_attempts", "step")["preprocess"] == 2


def test_the_deadline_is_today_at_the_setting_in_the_business_timezone(day1) -> None:  # noqa: ANN001
    home, _ = day1
    metrics = scrape(home, ready=False, publish_deadline=dt.time(6, 30), timezone="America/Sao_Paulo")
    assert one(metrics, "airtime_server_ready") == 0
    zone = ZoneInfo("America/Sao_Paulo")
    today = dt.datetime.now(zone).date()
    assert one(metrics, "airtime_due_run_date_seconds") == day_seconds(today)
    assert one(metrics, "airtime_publish_deadline_seconds") == \
        dt.datetime.combine(today, dt.time(6, 30), zone).timestamp()
    assert one(metrics, "airtime_bigquery_bytes_billed_limit_bytes") == 100 * 1024**3
    # DAY1 is published, today is not: late once today's deadline has passed
    assert one(metrics, "airtime_forecast_late") == (0 if dt.datetime.now(zone).time() < dt.time(6, 30) else 1)
    assert one(scrape(home, publish_deadline=dt.time(0, 0)), "airtime_forecast_late") == 1
    assert one(scrape(home, publish_deadline=dt.time(23, 59, 59)), "airtime_forecast_late") == 0
