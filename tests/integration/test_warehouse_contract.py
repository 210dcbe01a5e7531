"""One contract, two warehouses: DuckDB (local profile) and BigQuery (gcp profile,
against local-bigquery). Every test runs on both and expects the same behaviour."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airtime import retention
from airtime.errors import StorageError, SupersededError
from airtime.schema import FORECAST
from airtime.store import LocalStore
from airtime.warehouse import (
    FAILED,
    LOADED,
    PRUNED,
    PUBLISHED,
    RUNNING,
    SUCCEEDED,
    SUPERSEDED,
    Attempt,
    Figures,
    SlotFilter,
)
from tests import emulators
from tests.warehouse_backends import (
    Backend,
    bigquery_backend,
    duckdb_backend,
    parquet_figures,
    run_load,
    write_run_files,
)

ROOT = Path(__file__).resolve().parents[2]
D1, D2 = dt.date(2026, 12, 1), dt.date(2026, 12, 2)


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulators)])
def backend(request, tmp_path: Path) -> Backend:
    if request.param == "duckdb":
        return duckdb_backend(tmp_path)
    emulator = request.getfixturevalue("bigquery_emulator")
    return bigquery_backend(emulator.url, emulators.BIGQUERY_PROJECT)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return write_run_files(tmp_path / "d1", D1)


def test_an_empty_warehouse_has_an_empty_ledger(backend: Backend):
    warehouse = backend.open()
    assert warehouse.ledger() == []
    assert warehouse.run_record(D1) is None
    assert warehouse.latest_published() is None


def test_figures_read_back_equal_the_figures_of_the_loaded_files(backend: Backend, files):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    assert warehouse.figures(D1, "digest-1") == parquet_figures(files)
    record = warehouse.run_record(D1)
    assert record.state == LOADED
    assert (record.audience_rows, record.availability_rows, record.forecast_rows) == (120, 120, 120)
    assert record.checksums == {t: f.checksum for t, f in parquet_figures(files).items()}


def test_loading_a_date_twice_leaves_one_copy(backend: Backend, files):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    backend.open().load_run(run_load(D1, files))  # a retry, from another process's view
    assert warehouse.figures(D1, "digest-1") == parquet_figures(files)
    assert [r.run_date for r in warehouse.ledger()] == [D1]


def test_reloading_a_generation_replaces_its_rows_and_keeps_other_dates(backend: Backend, files, tmp_path):
    warehouse = backend.open()
    other = write_run_files(tmp_path / "d2", D2, rows=50)
    warehouse.load_run(run_load(D1, files))
    warehouse.load_run(run_load(D2, other, "digest-d2"))
    changed = write_run_files(tmp_path / "d1b", D1, variant=1, rows=80)
    warehouse.load_run(run_load(D1, changed))  # the same generation, loaded again
    assert warehouse.figures(D1, "digest-1") == parquet_figures(changed)
    assert warehouse.figures(D2, "digest-d2") == parquet_figures(other)


def test_a_new_generation_loads_beside_the_published_one_and_replaces_it_only_when_published(
        backend: Backend, files, tmp_path):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    warehouse.publish(D1, "digest-1", "digest-1")
    served = warehouse.read_forecast(D1)
    changed = write_run_files(tmp_path / "d1b", D1, variant=1, rows=80)
    warehouse.load_run(run_load(D1, changed, "digest-2"))
    # loaded, not verified: every reader still gets the published generation
    assert warehouse.read_forecast(D1).equals(served)
    assert (warehouse.run_record(D1).generation, warehouse.run_record(D1).state) == ("digest-1", PUBLISHED)
    assert warehouse.latest_published().generation == "digest-1"
    assert warehouse.figures(D1, "digest-1") == parquet_figures(files)
    assert warehouse.figures(D1, "digest-2") == parquet_figures(changed)
    # a failure of the new generation leaves the published one alone
    warehouse.record_failure(D1, "digest-2", "verify", "mismatch")
    assert warehouse.run_record(D1).state == PUBLISHED
    assert warehouse.generation_record(D1, "digest-2").state == FAILED

    warehouse.load_run(run_load(D1, changed, "digest-2"))
    warehouse.publish(D1, "digest-2", "digest-2")
    assert warehouse.read_forecast(D1).num_rows == 80
    assert {r.generation: r.state for r in warehouse.generations(D1)} == \
        {"digest-1": SUPERSEDED, "digest-2": PUBLISHED}
    # the superseded rows went with the switch: one copy of the date
    assert warehouse.figures(D1, "digest-1")["forecast"].rows == 0


def test_publish_refuses_a_generation_older_than_the_one_published(backend: Backend, files, tmp_path):
    """Two runs of one date at once: the delivery loaded last stays served, the other is told."""
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files, "first"))
    warehouse.load_run(run_load(D1, write_run_files(tmp_path / "d1b", D1, variant=1, rows=80), "second"))
    warehouse.publish(D1, "second", "second")
    with pytest.raises(SupersededError, match="generation second of the same date, loaded after it"):
        warehouse.publish(D1, "first", "first")
    assert (warehouse.run_record(D1).generation, warehouse.read_forecast(D1).num_rows) == ("second", 80)


def test_an_unpublished_generation_can_be_removed_a_published_one_cannot(backend: Backend, files, tmp_path):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    warehouse.publish(D1, "digest-1", "digest-1")
    warehouse.load_run(run_load(D1, write_run_files(tmp_path / "d1b", D1, variant=1, rows=80), "held"))
    warehouse.remove_generation(D1, "held")
    assert warehouse.generation_record(D1, "held").state == PRUNED
    assert warehouse.figures(D1, "held")["forecast"].rows == 0
    with pytest.raises(StorageError, match="is published: not removed"):
        warehouse.remove_generation(D1, "digest-1")
    assert warehouse.figures(D1, "digest-1") == parquet_figures(files)


def test_a_published_generation_expires_only_behind_a_later_published_date(backend: Backend, files, tmp_path):
    """Warehouse retention's own operation: a published generation's rows and ledger state
    go together, never those of the newest published date (the one served)."""
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    warehouse.publish(D1, "digest-1", "digest-1")
    with pytest.raises(StorageError, match="newest published date, the one served: not expired"):
        warehouse.expire_generation(D1, "digest-1")
    other = write_run_files(tmp_path / "d2", D2, rows=50)
    warehouse.load_run(run_load(D2, other, "digest-d2"))
    with pytest.raises(StorageError, match="is loaded, not published: not expired"):
        warehouse.expire_generation(D2, "digest-d2")
    warehouse.publish(D2, "digest-d2", "digest-d2")

    warehouse.expire_generation(D1, "digest-1")
    assert warehouse.generation_record(D1, "digest-1").state == PRUNED
    assert warehouse.figures(D1, "digest-1") == {t: Figures(0, 0) for t in parquet_figures(files)}
    assert warehouse.read_forecast(D1).num_rows == 0
    assert warehouse.run_record(D1).state == PRUNED
    # the served date is untouched, and is what every "latest" question answers
    assert warehouse.figures(D2, "digest-d2") == parquet_figures(other)
    assert (warehouse.latest_published().run_date, warehouse.published_before(D2)) == (D2, None)
    backend.open().expire_generation(D1, "digest-1")  # a prune killed after it, run again: nothing to do
    with pytest.raises(StorageError, match="newest published date"):
        warehouse.expire_generation(D2, "digest-d2")
    with pytest.raises(StorageError, match="is published: not removed"):
        warehouse.remove_generation(D2, "digest-d2")  # the guard of the unpublished removal stays


def test_prune_plans_by_the_ledger_expires_past_retention_and_keeps_what_the_oldest_kept_day_builds_on(
        backend: Backend, tmp_path):
    """retention.plan_removals and remove on this warehouse: four published days, one kept
    before the newest (Dec 3), the day it builds on (Dec 2), Dec 1 expired; then nothing."""
    warehouse = backend.open()
    days = [D1 + dt.timedelta(days=i) for i in range(4)]
    for day in days:
        warehouse.load_run(run_load(day, write_run_files(tmp_path / day.isoformat(), day, rows=20), f"g{day.day}"))
        warehouse.publish(day, f"g{day.day}", f"g{day.day}")
    store = LocalStore(tmp_path / "artifacts")
    assert retention.plan_removals(store, warehouse, 1) == []  # no artifacts, rows kept: nothing to do
    [removal] = retention.plan_removals(store, warehouse, 1, 1)
    assert (removal.record.run_date, removal.expire, removal.rows) == (D1, True, True)
    retention.remove(store, warehouse, removal)
    assert {r.run_date: r.state for r in warehouse.ledger()} == {
        days[0]: PRUNED, days[1]: PUBLISHED, days[2]: PUBLISHED, days[3]: PUBLISHED}
    assert warehouse.read_forecast(D1).num_rows == 0 and warehouse.read_forecast(days[1]).num_rows == 20
    assert retention.plan_removals(store, warehouse, 1, 1) == []


def test_a_row_altered_or_deleted_after_the_load_changes_the_figures(backend: Backend, files):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    loaded = warehouse.figures(D1, "digest-1")
    backend.execute("UPDATE {forecast} SET available_time = available_time + 1"
                    " WHERE run_date = DATE '2026-12-01' AND program_code = 'PIRV0'")
    altered = warehouse.figures(D1, "digest-1")
    assert altered["forecast"].rows == loaded["forecast"].rows
    assert altered["forecast"].checksum != loaded["forecast"].checksum
    backend.execute("DELETE FROM {raw_audience} WHERE run_date = DATE '2026-12-01'"
                    " AND program_code = 'KVOB0'")
    assert warehouse.figures(D1, "digest-1")["audience"].rows < loaded["audience"].rows


def test_publish_needs_the_loaded_digest_and_can_be_repeated(backend: Backend, files):
    warehouse = backend.open()
    with pytest.raises(StorageError, match="cannot publish run 2026-12-01"):
        warehouse.publish(D1, "digest-1", "digest-1")
    warehouse.load_run(run_load(D1, files))
    with pytest.raises(StorageError, match="no loaded generation with digest other"):
        warehouse.publish(D1, "other-digest", "other-digest")
    warehouse.publish(D1, "digest-1", "digest-1")
    warehouse.publish(D1, "digest-1", "digest-1")
    record = warehouse.run_record(D1)
    assert record.state == PUBLISHED
    assert record.published_at is not None
    assert warehouse.latest_published().run_date == D1


def test_a_failure_never_demotes_a_published_run(backend: Backend, files, tmp_path):
    warehouse = backend.open()
    warehouse.record_failure(D2, "digest-1", "ingest", "no audience file")
    failed = warehouse.run_record(D2)
    assert (failed.state, failed.failed_step, failed.error, failed.input_digest) == \
        (FAILED, "ingest", "no audience file", "")

    warehouse.load_run(run_load(D1, files))
    warehouse.publish(D1, "digest-1", "digest-1")
    warehouse.record_failure(D1, "digest-1", "verify", "x" * 5000)
    record = warehouse.run_record(D1)
    assert (record.state, record.failed_step, len(record.error)) == (PUBLISHED, "verify", 2000)

    # a new generation of the date starts clean: loaded, no failure, not published; the
    # published one stays served
    warehouse.load_run(run_load(D1, files, "digest-3"))
    record = warehouse.generation_record(D1, "digest-3")
    assert (record.state, record.failed_step, record.error, record.published_at) == \
        (LOADED, None, None, None)
    assert warehouse.latest_published().generation == "digest-1"


def test_a_published_run_that_fails_a_recheck_is_demoted(backend: Backend, files):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    warehouse.publish(D1, "digest-1", "digest-1")
    warehouse.record_failure(D1, "digest-1", "verify", "forecast checksum differs", demote=True)
    assert (warehouse.run_record(D1).state, warehouse.latest_published()) == (FAILED, None)


def test_attempts_are_recorded_before_and_after_the_work_and_listed_newest_first(backend: Backend):
    warehouse = backend.open()
    t0 = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    killed = Attempt("a1", D1, "ingest", RUNNING, t0, host="pod-1")
    warehouse.start_attempt(killed)  # never ended: killed
    warehouse.start_attempt(Attempt("a2", D1, "ingest", RUNNING, t0 + dt.timedelta(minutes=5), host="pod-2"))
    warehouse.end_attempt("a2", FAILED, t0 + dt.timedelta(minutes=6), "line 1\n" + "e" * 5000)
    warehouse.start_attempt(Attempt("a3", D2, "ingest", RUNNING, t0 + dt.timedelta(days=1)))
    warehouse.end_attempt("a3", SUCCEEDED, t0 + dt.timedelta(days=1, minutes=1))

    assert [a.attempt_id for a in warehouse.attempts()] == ["a3", "a2", "a1"]
    first, second = warehouse.attempts(D1)[::-1]
    assert first == killed
    assert (second.state, second.host, len(second.error)) == (FAILED, "pod-2", 5007)  # in full
    assert [a.state for a in warehouse.attempts(D2)] == [SUCCEEDED]


def test_a_loaded_run_that_fails_later_is_marked_failed(backend: Backend, files):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    warehouse.record_failure(D1, "digest-1", "verify", "forecast checksum differs")
    record = warehouse.run_record(D1)
    assert (record.state, record.failed_step) == (FAILED, "verify")
    assert record.forecast_rows == 120  # the load's figures stay for the post-mortem


def test_ledger_is_newest_first_and_latest_published_skips_unpublished(backend: Backend, tmp_path):
    warehouse = backend.open()
    for day in (D1, D2, dt.date(2026, 11, 30)):
        warehouse.load_run(run_load(day, write_run_files(tmp_path / str(day), day, rows=10),
                                    f"digest-{day}"))
    warehouse.publish(D1, f"digest-{D1}", f"digest-{D1}")
    warehouse.publish(dt.date(2026, 11, 30), "digest-2026-11-30", "digest-2026-11-30")
    assert [r.run_date for r in warehouse.ledger()] == [D2, D1, dt.date(2026, 11, 30)]
    assert warehouse.latest_published().run_date == D1


def test_read_forecast_returns_the_run_rows_typed_ordered_and_filtered(backend: Backend, files):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    assert warehouse.read_forecast(D1).num_rows == 0  # loaded, not published: not read
    warehouse.publish(D1, "digest-1", "digest-1")
    expected = _read(files["forecast"]).sort_by([("signal", "ascending"), ("program_code", "ascending"), ("date", "ascending")])
    table = warehouse.read_forecast(D1)
    assert table.schema == FORECAST.arrow_schema
    assert table.equals(expected)

    where = SlotFilter(start=D1 + dt.timedelta(days=2), end=D1 + dt.timedelta(days=4),
                           signal="SP")
    some = warehouse.read_forecast(D1, where)
    mask = pc.and_(pc.and_(pc.greater_equal(expected["date"], where.start),
                           pc.less_equal(expected["date"], where.end)),
                   pc.equal(expected["signal"], "SP"))
    assert some.equals(expected.filter(mask))
    assert some.num_rows > 0
    assert warehouse.read_forecast(D1, SlotFilter(program_code="KVOB0")).num_rows == 4
    assert warehouse.read_forecast(D2).num_rows == 0


def _read(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path).cast(FORECAST.arrow_schema)


def test_a_process_killed_mid_load_leaves_the_previous_state(backend: Backend, files, tmp_path):
    warehouse = backend.open()
    warehouse.load_run(run_load(D1, files))
    before = warehouse.figures(D1, "digest-1")
    changed = write_run_files(tmp_path / "d1b", D1, variant=1, rows=70)
    spec = {"warehouse": backend.spec, "run_date": D1.isoformat(), "digest": "digest-1",
            "files": {t: str(p) for t, p in changed.items()}}
    proc = subprocess.run([sys.executable, "-m", "tests.warehouse_backends", "crash-load",
                           json.dumps(spec)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 137, proc.stderr
    assert warehouse.figures(D1, "digest-1") == before

    # the retry (crash point no longer armed) completes the replacement
    warehouse.load_run(run_load(D1, changed))
    assert warehouse.figures(D1, "digest-1") == parquet_figures(changed)
