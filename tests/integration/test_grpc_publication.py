"""The query service learns of a new published run from the publication marker, not from a
warehouse query every poll (a BigQuery job per replica every 30 s), and stops serving a
run that a re-check demoted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import NotPublishedError, VerificationError
from airtime.resources import publication_store
from grpc_server.backend import SnapshotBackend
from steps import runner, verify
from steps.scaffold import make_context
from tests.pipeline_helpers import local_settings, make_source

D1, D2 = dt.date(2026, 11, 29), dt.date(2026, 11, 30)


class CountingWarehouse(DuckDBWarehouse):
    """The real DuckDB warehouse, counting the ledger questions the server asks."""

    ledger_reads = 0

    def latest_published(self):  # noqa: ANN201
        self.ledger_reads += 1
        return super().latest_published()


@pytest.fixture
def setup(tmp_path: Path):  # noqa: ANN201
    source = make_source(tmp_path / "src")
    settings = local_settings(tmp_path / "home", source)
    runner.run_day(settings, D1)
    warehouse = CountingWarehouse(settings.warehouse_path)
    backend = SnapshotBackend(warehouse, marker=publication_store(settings), ledger_check=3600)
    return settings, warehouse, backend


def test_polls_read_the_marker_and_ask_the_ledger_only_when_it_changed(setup) -> None:  # noqa: ANN001
    settings, warehouse, backend = setup
    assert backend.refresh() and backend.served().id.run_date == D1
    asked = warehouse.ledger_reads
    for _ in range(20):  # ten minutes of polls at 30 s: no warehouse query
        assert not backend.refresh()
    assert warehouse.ledger_reads == asked

    runner.run_day(settings, D2)  # load and verify rewrite the marker
    assert backend.refresh() and backend.served().id.run_date == D2
    assert warehouse.ledger_reads == asked + 1


def test_the_ledger_is_still_asked_every_ledger_check_interval(setup) -> None:  # noqa: ANN001
    settings, warehouse, _ = setup
    backend = SnapshotBackend(warehouse, marker=publication_store(settings), ledger_check=0.0)
    backend.refresh()
    asked = warehouse.ledger_reads
    backend.refresh()
    assert warehouse.ledger_reads == asked + 1


def test_a_run_demoted_by_a_recheck_is_served_no_more(setup) -> None:  # noqa: ANN001
    settings, warehouse, backend = setup
    backend.refresh()
    with warehouse._connect() as con:  # an altered row, after publishing
        con.execute("UPDATE forecast SET available_time = available_time + 1"
                    " WHERE rowid = (SELECT min(rowid) FROM forecast)")
    with pytest.raises(VerificationError):
        verify.recheck(make_context(settings, D1))
    backend.refresh()
    with pytest.raises(NotPublishedError):
        backend.served()
