"""Warehouse retention (AIRTIME_WAREHOUSE_RETENTION_DAYS): `airtime prune` removes the warehouse
rows of published generations past it, by the ledger, and marks them `pruned`; the newest
published date stays served, the day the oldest kept one builds on stays, a prune killed
half-way is finished by the next, and the default (0) keeps every published date's rows.

Real DuckDB, real `airtime` processes (tests.pipeline_helpers.cli), a real gRPC server on
port 0, and a sequence of daily deliveries (airtime/sample_days.py). The same operation on
both warehouses: tests/integration/test_warehouse_contract.py.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import RunNotPublishedError
from airtime.sample_days import sample_days
from airtime.warehouse import PRUNED, PUBLISHED
from grpc_server.client import ForecastClient
from steps import runner
from tests.integration.grpc_fixtures import running_service, server_settings
from tests.integration.test_generations import _served_date, _wait_for, folder_digests
from tests.pipeline_helpers import cli, dump_warehouse, local_settings

FIRST = dt.date(2026, 11, 25)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(6)]  # 11-25 .. 11-30
NEWEST = DAYS[-1]
# two days kept before the newest (11-28, 11-29), and 11-27, which the oldest of them builds on
RETENTION = {"AIRTIME_RETENTION_DAYS": "2", "AIRTIME_WAREHOUSE_RETENTION_DAYS": "2"}
EXPIRED, KEPT = DAYS[:2], DAYS[2:]


def warehouse_of(home: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(home / "warehouse.duckdb")


def ledger(home: Path) -> dict[dt.date, dict[str, str]]:
    days: dict[dt.date, dict[str, str]] = {}
    for record in warehouse_of(home).ledger():
        days.setdefault(record.run_date, {})[record.generation] = record.state
    return days


def published(home: Path, day: dt.date) -> str:
    [generation] = [g for g, state in ledger(home)[day].items() if state == PUBLISHED]
    return generation


def rows_of(home: Path, day: dt.date, generation: str) -> dict[str, int]:
    return {table: f.rows for table, f in warehouse_of(home).figures(day, generation).items()}


def generation_folder(home: Path, day: dt.date, generation: str) -> Path:
    return home / "artifacts" / "runs" / day.isoformat() / generation


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[dt.date, str]]:
    """Six daily deliveries published in one home; each test works on a copy."""
    root = tmp_path_factory.mktemp("retention")
    source = root / "source"
    assert sample_days(source, FIRST, len(DAYS)) == DAYS
    home = root / "home"
    for day in DAYS:
        assert runner.run_day(local_settings(home, source), day).record.state == PUBLISHED
    return home, source, {day: published(home, day) for day in DAYS}


@pytest.fixture
def home(month, tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(month[0], copy)
    return copy


def test_prune_expires_old_published_rows_keeps_the_one_built_on_and_the_newest_stays_served(month, home):
    _, _, generations = month
    before = dump_warehouse(home / "warehouse.duckdb")
    served = {day: warehouse_of(home).read_forecast(day) for day in KEPT}

    dry = cli(home, "prune", "--dry-run", env=RETENTION)
    assert dry.returncode == 0, dry.stderr
    listed = re.findall(r"would remove (\S+) generation (\S+) \(published, [^)]*\): \d+ objects and its warehouse rows",
                        " ".join(dry.stdout.split()))
    assert sorted(listed) == [(day.isoformat(), generations[day]) for day in EXPIRED], dry.stdout
    assert dump_warehouse(home / "warehouse.duckdb") == before  # a dry run changes nothing

    with running_service(server_settings(home, reload_interval_seconds=0.05), None, poll=True) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        _wait_for(lambda: _served_date(client) == NEWEST, f"the server to serve {NEWEST}")
        answer = client.read_period(NEWEST, NEWEST + dt.timedelta(days=40))
        pruned = cli(home, "prune", env=RETENTION)
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert "2 generation(s) removed" in pruned.stdout and "warehouse rows for 2 days" in pruned.stdout
        # the server, polling all along, serves the same run and answers the same
        assert client.freshness().run_date == NEWEST
        assert client.read_period(NEWEST, NEWEST + dt.timedelta(days=40)) == answer
        with pytest.raises(RunNotPublishedError, match="pruned, not published"):  # NOT_FOUND
            client.freshness(EXPIRED[0])
    asked = cli(home, "query", "period", "--start", NEWEST.isoformat(), "--end", NEWEST.isoformat(),
                "--run", EXPIRED[1].isoformat())
    assert asked.returncode == 6, asked.stdout + asked.stderr

    for day in EXPIRED:
        assert ledger(home)[day] == {generations[day]: PRUNED}
        assert rows_of(home, day, generations[day]) == {"audience": 0, "availability": 0, "forecast": 0}
        assert not generation_folder(home, day, generations[day]).exists()
    for day in KEPT:  # 11-27 too: the day the oldest kept day (11-28) builds on
        assert ledger(home)[day] == {generations[day]: PUBLISHED}
        assert warehouse_of(home).read_forecast(day).equals(served[day])
        assert generation_folder(home, day, generations[day]).is_dir()
    assert warehouse_of(home).latest_published().generation == generations[NEWEST]
    checked = cli(home, "verify", "--date", NEWEST.isoformat())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = cli(home, "prune", env=RETENTION)
    assert again.returncode == 0 and "0 generation(s) removed" in again.stdout, again.stdout + again.stderr


def test_a_prune_killed_half_way_is_finished_by_the_next(month, home):
    _, _, generations = month
    newest = warehouse_of(home).read_forecast(NEWEST)
    # killed (like kill -9) once the first generation's artifacts are gone, its rows not yet
    killed = cli(home, "prune", env=RETENTION | {"AIRTIME_CRASH_AT": "prune-after-artifacts"})
    assert killed.returncode == 137, killed.stdout + killed.stderr
    first, second = EXPIRED[1], EXPIRED[0]  # newest first
    assert not generation_folder(home, first, generations[first]).exists()
    assert ledger(home)[first] == {generations[first]: PUBLISHED}  # as it was: the next prune plans it
    assert rows_of(home, first, generations[first])["forecast"] > 0
    assert generation_folder(home, second, generations[second]).is_dir()

    finished = cli(home, "prune", env=RETENTION)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"remove {first} generation {generations[first]}" in finished.stdout
    assert "0 objects and its warehouse rows" in finished.stdout
    for day in EXPIRED:
        assert ledger(home)[day] == {generations[day]: PRUNED}
        assert rows_of(home, day, generations[day])["forecast"] == 0
    assert warehouse_of(home).latest_published().generation == generations[NEWEST]
    assert warehouse_of(home).read_forecast(NEWEST).equals(newest)


def test_without_the_setting_prune_keeps_every_published_dates_rows(month, home):
    _, _, generations = month
    before = dump_warehouse(home / "warehouse.duckdb")
    pruned = cli(home, "prune", env={"AIRTIME_RETENTION_DAYS": "2"})
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "warehouse rows" not in pruned.stdout.replace("\n", " ")
    for day in EXPIRED:  # the artifacts go, the rows and the ledger stay: today's behaviour
        assert not generation_folder(home, day, generations[day]).exists()
    assert dump_warehouse(home / "warehouse.duckdb") == before

    # set later, it expires what the earlier prune left: the rows only, the artifacts being gone
    expired = cli(home, "prune", env=RETENTION)
    assert expired.returncode == 0, expired.stdout + expired.stderr
    assert expired.stdout.count("0 objects and its warehouse rows") == 2, expired.stdout
    assert {day: ledger(home)[day] for day in EXPIRED} == {day: {generations[day]: PRUNED} for day in EXPIRED}


def test_a_date_redelivered_after_its_rows_expired_is_served_until_the_next_prune_expires_it_again(month, home):
    """Retention goes by the date against the newest published one, not by when a generation
    was loaded: an old date run again publishes (its date answers queries, the newest stays
    the one served), then the next prune expires it like any date past retention. It builds
    on the newest earlier published date still in the ledger, none here."""
    _, source, generations = month
    assert cli(home, "prune", env=RETENTION).returncode == 0
    old = EXPIRED[1]  # 11-26, which was built on 11-25, expired too
    rerun = cli(home, "run", "--date", old.isoformat(), "--source", str(source))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    again = published(home, old)
    assert again != generations[old]  # another generation: it builds on nothing now
    assert ledger(home)[old] == {generations[old]: PRUNED, again: PUBLISHED}
    assert warehouse_of(home).read_forecast(old).num_rows > 0
    assert warehouse_of(home).latest_published().generation == generations[NEWEST]
    digests = folder_digests(generation_folder(home, NEWEST, generations[NEWEST]))

    pruned = cli(home, "prune", env=RETENTION)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert ledger(home)[old] == {generations[old]: PRUNED, again: PRUNED}
    assert warehouse_of(home).read_forecast(old).num_rows == 0
    assert folder_digests(generation_folder(home, NEWEST, generations[NEWEST])) == digests
    assert ledger(home)[KEPT[0]] == {generations[KEPT[0]]: PUBLISHED}  # what 11-28 builds on, still


def test_the_warehouse_retention_is_refused_below_the_artifact_retention(tmp_path: Path):
    refused = cli(tmp_path / "home", "prune", "--dry-run",
                  env={"AIRTIME_RETENTION_DAYS": "5", "AIRTIME_WAREHOUSE_RETENTION_DAYS": "3"})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "AIRTIME_WAREHOUSE_RETENTION_DAYS='3'" in refused.stderr
    assert "below AIRTIME_RETENTION_DAYS (5)" in refused.stderr


def test_each_row_group_holds_one_date_so_a_prune_drops_whole_groups(home):
    # DuckDBWarehouse opens the file without vacuum merges (its _open says why): after six
    # small days and a prune of two, no row group of a data table mixes dates (the zone map
    # of its run_date column has one value), and the expired dates' groups are gone whole,
    # leaving no partly empty group for a later checkpoint to rewrite
    tables = ("raw_audience", "raw_availability", "forecast")
    before = {table: _run_dates_per_group(home, table) for table in tables}
    assert all(len(before[table]) >= len(DAYS) for table in tables), before  # a group (at least) a day
    assert cli(home, "prune", env=RETENTION).returncode == 0
    for table in tables:
        after = _run_dates_per_group(home, table)
        assert all(low == high for low, high in after), (table, after)
        assert {low for low, _ in after} == {day.isoformat() for day in KEPT}, (table, after)
        assert len(after) == len(before[table]) - sum(1 for low, _ in before[table]
                                                       if low in {d.isoformat() for d in EXPIRED}), table


def _run_dates_per_group(home: Path, table: str) -> list[tuple[str, str]]:
    """(min, max) run_date of each row group of `table`, from DuckDB's zone maps."""
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        stats = con.execute(f"SELECT stats FROM pragma_storage_info('{table}') WHERE column_name = 'run_date'"
                            " AND segment_type = 'DATE' ORDER BY row_group_id, segment_id").fetchall()
    return [tuple(re.search(r"Min: ([\d-]+), Max: ([\d-]+)", s).groups()) for (s,) in stats]
