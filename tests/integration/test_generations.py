"""Generations: a delivery that is not published leaves no trace in anything later days
read, a published generation never changes, and only a verified newer generation replaces
the served one (issue 19, "How it will be checked").

Real DuckDB, real `airtime` processes (tests.pipeline_helpers.cli) and a real gRPC server
on port 0. Wrong deliveries are derived from the real files into tmp_path; the real files
are never copied into the repository.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from airtime import sample
from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import InputError, SupersededError
from airtime.manifest import Manifest
from airtime.warehouse import PUBLISHED
from grpc_server.client import ForecastClient
from steps import runner
from tests.conftest import SHARED_DATA, require_shared
from tests.integration.grpc_fixtures import running_service, server_settings
from tests.pipeline_helpers import (
    ROOT,
    cli,
    dump_warehouse,
    generation_dir,
    history_relation,
    local_settings,
    make_source,
)

JUL21, JUL22, JUL23 = dt.date(2020, 7, 21), dt.date(2020, 7, 22), dt.date(2020, 7, 23)
# the generated sample's delivery day is 2026-11-30 (airtime.sample.run_date_for); earlier
# dates take the same files as their delivery
NOV27, NOV28, NOV29, NOV30 = (dt.date(2026, 11, d) for d in (27, 28, 29, 30))
AUDIENCE, AVAILABILITY = "*program_audience*.csv", "*inventory_availability*.csv"

Rows = list[list[str]]
Change = Callable[[Rows], Rows]


# -- deliveries derived from another ---------------------------------------------------

def derive(source: Path, target: Path, *, audience: Change | None = None,
           availability: Change | None = None) -> Path:
    """A copy of the delivery in `source` (same file names, BOM and CRLF) with each file's
    data rows passed through a change."""
    target.mkdir(parents=True)
    for pattern, sep, change in ((AUDIENCE, ",", audience), (AVAILABILITY, ";", availability)):
        [path] = source.glob(pattern)
        data = path.read_bytes()
        header, *lines = data.removesuffix(b"\r\n").split(b"\r\n")
        rows = [line.decode().split(sep) for line in lines]
        rows = change(rows) if change else rows
        body = b"".join(sep.join(row).encode() + b"\r\n" for row in rows)
        (target / path.name).write_bytes(header + b"\r\n" + body)
    return target


def another_broadcaster(rows: Rows) -> Rows:
    return [[f"O{signal_}", f"O{program}", *rest] for signal_, program, *rest in rows]


def fewer_than_half(rows: Rows) -> Rows:
    return [row for i, row in enumerate(rows) if i % 5 < 2]  # 40%: below dq_min_rows_ratio=0.5


def history_rewritten(rows: Rows) -> Rows:
    return [[*row[:4], repr(float(row[4]) * 1.5)] for row in rows]


def a_refused_line(rows: Rows) -> Rows:
    return [*rows, ["SP1", "HUCK", "29/08/2020", "99999"]]  # available_time above 3600


def last_slot_changed(rows: Rows) -> Rows:
    *rest, (signal_, program, date, seconds) = rows
    return [*rest, [signal_, program, date, str(int(seconds) + 1 if int(seconds) < 3600 else int(seconds) - 1)]]


def first_slot_changed(rows: Rows) -> Rows:
    (signal_, program, date, seconds), *rest = rows
    return [[signal_, program, date, str(int(seconds) + 1 if int(seconds) < 3600 else int(seconds) - 1)], *rest]


def last_slot(folder: Path) -> tuple[str, str, dt.date, int]:
    [path] = folder.glob(AVAILABILITY)
    signal_, program, date, seconds = path.read_bytes().removesuffix(b"\r\n").split(b"\r\n")[-1].decode().split(";")
    return signal_, program, dt.datetime.strptime(date, "%d/%m/%Y").date(), int(seconds)


# -- what a home holds ---------------------------------------------------------------------

def warehouse_of(home: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(home / "warehouse.duckdb")


def publish(home: Path, source: Path, day: dt.date, **settings) -> None:  # noqa: ANN003
    result = runner.run_day(local_settings(home, source, **settings), day)
    assert result.record.state == PUBLISHED


def published_generation(home: Path, day: dt.date) -> str:
    [published] = [r.generation for r in warehouse_of(home).generations(day) if r.state == PUBLISHED]
    return published


def states(home: Path, day: dt.date) -> dict[str, str]:
    return {r.generation: r.state for r in warehouse_of(home).generations(day)}


def forecast(home: Path, day: dt.date) -> list[dict]:
    return warehouse_of(home).read_forecast(day).to_pylist()


def folder_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def published_state(home: Path, day: dt.date) -> tuple:
    """Everything about the date's published generation a reader could see: which one it
    is, when it was published, its served rows and the bytes of its artifacts."""
    [record] = [r for r in warehouse_of(home).generations(day) if r.state == PUBLISHED]
    return (record.generation, record.published_at, forecast(home, day),
            folder_digests(generation_dir(home, day)))


def history(home: Path, day: dt.date) -> list[tuple]:
    """The rows of the published generation's history (what the next day extends)."""
    manifest = Manifest.from_json((generation_dir(home, day) / "preprocess" / "manifest.json").read_bytes())
    with duckdb.connect() as con:
        return con.execute(f"SELECT * FROM {history_relation(home / 'artifacts', manifest, day)} ORDER BY ALL"
                           ).fetchall()


def query_answers(home: Path) -> list[dict]:
    answer = cli(home, "query", "period", "--start", "2020-07-25", "--end", "2020-08-30", "--format", "json")
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def runs_shown(home: Path, day: dt.date) -> list[dict]:
    shown = cli(home, "runs", "--date", day.isoformat(), "--format", "json")
    assert shown.returncode == 0, shown.stderr
    [entry] = json.loads(shown.stdout)
    return entry["generations"]


# -- 1. the sequence with the real files ----------------------------------------

@pytest.fixture(scope="module")
def real_files() -> Path:
    for name in ("tvaberta_program_audience.csv", "tvaberta_inventory_availability.csv"):
        require_shared(SHARED_DATA / name, "the real input files")
    return SHARED_DATA


@dataclass(frozen=True)
class Reference:
    history_rows: int
    history: list[tuple]
    answers: list[dict]
    forecast_22: list[dict]


@pytest.fixture(scope="module")
def never_wrong(tmp_path_factory: pytest.TempPathFactory, real_files: Path) -> Reference:
    """A home where the wrong delivery never arrived: 07-21, 07-22, 07-23 from the real files."""
    home = tmp_path_factory.mktemp("never-wrong")
    for day in (JUL21, JUL22, JUL23):
        publish(home, real_files, day)
    rows = history(home, JUL23)
    return Reference(len(rows), rows, query_answers(home), forecast(home, JUL22))


@dataclass(frozen=True)
class Wrong:
    audience: Change | None
    availability: Change | None
    exit_code: int
    state: str | None  # the wrong generation's ledger state; None: killed before its load committed
    env: dict[str, str] = field(default_factory=dict)


WRONG = [
    pytest.param(Wrong(another_broadcaster, another_broadcaster, InputError.exit_code, "held"),
                 id="another-broadcaster"),
    pytest.param(Wrong(fewer_than_half, fewer_than_half, InputError.exit_code, "held"),
                 id="fewer-than-half-the-rows"),
    pytest.param(Wrong(history_rewritten, None, InputError.exit_code, "held"), id="history-rewritten-x1.5"),
    pytest.param(Wrong(None, a_refused_line, InputError.exit_code, "failed"), id="a-line-refused"),
    pytest.param(Wrong(None, last_slot_changed, 137, None, {"AIRTIME_CRASH_AT": "load-before-commit"}),
                 id="killed-during-load"),
]


@pytest.mark.parametrize("wrong", WRONG)
def test_after_a_wrong_redelivery_the_next_day_publishes_as_if_it_never_arrived(
        tmp_path: Path, real_files: Path, never_wrong: Reference, wrong: Wrong):
    home = tmp_path / "home"
    publish(home, real_files, JUL21)
    publish(home, real_files, JUL22)
    before = published_state(home, JUL22)
    delivery = derive(real_files, tmp_path / "wrong", audience=wrong.audience, availability=wrong.availability)

    attempt = cli(home, "run", "--date", JUL22.isoformat(), "--source", str(delivery), env=wrong.env)
    assert attempt.returncode == wrong.exit_code, attempt.stdout + attempt.stderr
    shown = {g["generation"]: g for g in runs_shown(home, JUL22)}
    others = [g for generation, g in shown.items() if generation != before[0]]
    if wrong.state is None:  # killed: nothing of it loaded, let alone published
        assert all(g["state"] not in ("loaded", "published") for g in others), others
    else:  # kept beside the published generation, inspectable, with its report
        [kept] = others
        assert kept["state"] == wrong.state and kept["error"], kept
    assert published_state(home, JUL22) == before
    assert forecast(home, JUL22) == never_wrong.forecast_22

    following = cli(home, "run", "--date", JUL23.isoformat(), "--source", str(real_files))
    assert following.returncode == 0, following.stdout + following.stderr
    assert warehouse_of(home).run_record(JUL23).state == PUBLISHED
    assert len(history(home, JUL23)) == never_wrong.history_rows
    assert history(home, JUL23) == never_wrong.history
    assert query_answers(home) == never_wrong.answers


# -- 2. kill -9 during a re-delivery -------------------------------------------------------

def test_kill_9_during_a_redelivery_leaves_the_published_generation_and_a_rerun_finishes_it(
        tmp_path: Path):
    first = make_source(tmp_path / "first", rows=200_000, seed=5)
    second = derive(first, tmp_path / "second", availability=last_slot_changed)

    uninterrupted = tmp_path / "uninterrupted"
    publish(uninterrupted, first, NOV30)
    proc = _start_run(uninterrupted, second)
    started = time.monotonic()
    _, err = proc.communicate(timeout=300)
    work = time.monotonic() - started
    assert proc.returncode == 0, err
    reference = dump_warehouse(uninterrupted / "warehouse.duckdb")
    reference_forecast = forecast(uninterrupted, NOV30)

    home = tmp_path / "killed"
    publish(home, first, NOV30)
    before = published_state(home, NOV30)
    assert before[2] != reference_forecast  # the two deliveries answer differently
    # one random moment in each sixth of the work: the attempts die ever further into it,
    # each resuming what the one before left
    rng, kills = random.Random(19), 6
    for moment in [work * (i + rng.random()) / kills for i in range(kills)]:
        proc = _start_run(home, second)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if published_generation(home, NOV30) != before[0]:
            # the kill came after verify published the re-delivery: whole, never half of it
            assert forecast(home, NOV30) == reference_forecast
            break
        assert published_state(home, NOV30) == before

    final = cli(home, "run", "--date", NOV30.isoformat(), "--source", str(second))
    assert final.returncode == 0, final.stderr
    assert forecast(home, NOV30) == reference_forecast
    assert dump_warehouse(home / "warehouse.duckdb") == reference


def _start_run(home: Path, source: Path) -> subprocess.Popen:
    """`airtime run --date 2026-11-30` in a new process, returned once its first line says
    it starts the work (Python's start-up is no moment of the run)."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "--date", NOV30.isoformat(),
                             "--source", str(source)], env=_env(home), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()
    return proc


def _env(home: Path) -> dict[str, str]:
    """The environment of an `airtime` process of `home`, as tests.pipeline_helpers.cli gives it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRTIME_")} \
        | {"AIRTIME_HOME": str(home), "PYTHONPATH": str(ROOT)}


# -- 3. a re-delivery while serving ---------------------------------------------------

def test_a_redelivery_while_serving_never_answers_from_the_previous_day(tmp_path: Path):
    first = make_source(tmp_path / "first", rows=100_000, seed=13)
    second = derive(first, tmp_path / "second", availability=last_slot_changed)
    signal_, program, slot_date, new_seconds = last_slot(second)
    home = tmp_path / "home"
    publish(home, first, NOV29)
    publish(home, first, NOV30)

    settings = server_settings(home, reload_interval_seconds=0.05)
    # (freshness's run, its publish time, the period query's run, the slot's seconds)
    answers: list[tuple[dt.date, dt.datetime | None, dt.date, int]] = []
    failures: list[str] = []
    stop = threading.Event()
    with running_service(settings, None, poll=True) as service, \
            ForecastClient(f"127.0.0.1:{service.port}") as client:
        _wait_for(lambda: _served_date(client) == NOV30, "the server to serve 2026-11-30")

        def call_continuously() -> None:
            while not stop.is_set():
                try:
                    fresh = client.freshness()
                    run_date, [slot] = client.read_period(slot_date, slot_date, signal=signal_,
                                                          program_code=program)
                    answers.append((fresh.run_date, fresh.published_at, run_date, slot.available_time))
                except Exception as exc:  # noqa: BLE001 - collected, asserted below
                    failures.append(repr(exc))

        caller = threading.Thread(target=call_continuously)
        caller.start()
        try:
            redelivery = cli(home, "run", "--date", NOV30.isoformat(), "--source", str(second))
            assert redelivery.returncode == 0, redelivery.stdout + redelivery.stderr
            _wait_for(lambda: answers and answers[-1][3] == new_seconds, "an answer from the re-delivery")
            calls_after_publish = len(answers)
            _wait_for(lambda: len(answers) > calls_after_publish + 5, "a few more answers")
        finally:
            stop.set()
            caller.join(30)

    [new] = [r for r in warehouse_of(home).generations(NOV30) if r.state == PUBLISHED]
    assert failures == []
    assert len(answers) > 20  # the service was asked throughout the re-delivery
    assert {fresh for fresh, _, _, _ in answers} == {NOV30}
    assert {period for _, _, period, _ in answers} == {NOV30}
    _, last_published, _, last_seconds = answers[-1]
    assert (last_published, last_seconds) == (new.published_at, new_seconds)


def _served_date(client: ForecastClient) -> dt.date | None:
    try:
        return client.freshness().run_date
    except Exception:  # noqa: BLE001 - nothing served yet
        return None


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- 4. two runs of one date at once -----------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    folder: Path
    generation: str  # its generation, on top of the base delivery of the day before
    forecast: list[dict]


@pytest.fixture(scope="module")
def rival_deliveries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Delivery, Delivery]:
    """The day before's delivery, and two different deliveries of 2026-11-30, each with what
    it publishes when it runs alone."""
    base = make_source(tmp_path_factory.mktemp("base"), rows=60_000, seed=17)
    rivals = []
    for name, change in (("last", last_slot_changed), ("first", first_slot_changed)):
        folder = derive(base, tmp_path_factory.mktemp(name) / "delivery", availability=change)
        home = tmp_path_factory.mktemp(f"alone-{name}")
        publish(home, base, NOV29)
        publish(home, folder, NOV30)
        rivals.append(Delivery(folder, published_generation(home, NOV30), forecast(home, NOV30)))
    return base, rivals[0], rivals[1]


@pytest.mark.parametrize("stagger", [0.0, 0.4, 1.2])
def test_two_runs_of_one_date_at_once_end_with_one_published_generation_and_a_clear_message(
        tmp_path: Path, rival_deliveries: tuple[Path, Delivery, Delivery], stagger: float):
    base, *rivals = rival_deliveries
    home = tmp_path / "home"
    publish(home, base, NOV29)
    procs = []
    for i, rival in enumerate(rivals):
        if i:
            time.sleep(stagger)
        procs.append(subprocess.Popen([sys.executable, "-m", "cli", "run", "--date", NOV30.isoformat(),
                                       "--source", str(rival.folder)], env=_env(home), cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    ended = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        ended.append((proc.returncode, out, err))

    codes = [code for code, _, _ in ended]
    assert 8 not in codes, ended
    published = [g for g, state in states(home, NOV30).items() if state == PUBLISHED]
    assert len(published) == 1, states(home, NOV30)
    [winner] = published
    by_generation = {rival.generation: rival for rival in rivals}
    assert winner in by_generation
    assert forecast(home, NOV30) == by_generation[winner].forecast
    for rival, (code, out, err) in zip(rivals, ended, strict=True):
        if rival.generation == winner:
            assert code == 0, out + err
        elif code == 0:  # published first, then replaced by the other, loaded after it
            assert states(home, NOV30)[rival.generation] == "superseded"
        else:
            assert code == SupersededError.exit_code, out + err
            assert f"generation {rival.generation} of {NOV30} is not published: generation {winner}" in err, err
            assert "of the same date, loaded after it" in err, err


# -- 5. accept ---------------------------------------------------------------------------

def test_accept_publishes_exactly_the_held_generation_not_what_the_folder_holds_now(tmp_path: Path):
    base = make_source(tmp_path / "base")
    delivery = derive(base, tmp_path / "delivery", audience=history_rewritten)
    rewritten = derive(base, tmp_path / "rewritten", audience=history_rewritten)  # a copy kept aside
    home = tmp_path / "home"
    publish(home, base, NOV29)

    held = cli(home, "run", "--date", NOV30.isoformat(), "--source", str(delivery))
    assert held.returncode == InputError.exit_code, held.stdout + held.stderr
    assert "held by the data-quality gate" in held.stderr
    [held_generation] = [g for g, state in states(home, NOV30).items() if state == "held"]
    for path in base.iterdir():  # the folder now holds another delivery
        shutil.copyfile(path, delivery / path.name)

    accepted = cli(home, "accept", "--date", NOV30.isoformat(), "--reason", "the broadcaster re-measured")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert published_generation(home, NOV30) == held_generation

    # what that delivery gives when nothing holds it
    alone = tmp_path / "alone"
    publish(alone, base, NOV29)
    publish(alone, rewritten, NOV30, dq_max_rewritten_ratio=1.0)
    assert forecast(home, NOV30) == forecast(alone, NOV30)
    assert forecast(home, NOV30) != forecast(home, NOV29)  # which is what the folder's files give


# -- 6. prune ----------------------------------------------------------------------------

def test_prune_removes_superseded_and_replaced_generations_and_keeps_what_later_days_read(tmp_path: Path):
    base = tmp_path / "base"  # history up to 11-26: no exhibition after the first delivery day
    sample.generate(base, rows=3000, seed=3, end_date=NOV27 - dt.timedelta(days=1))
    changed = derive(base, tmp_path / "changed", availability=last_slot_changed)
    rewritten = derive(base, tmp_path / "rewritten", audience=history_rewritten)
    home = tmp_path / "home"
    publish(home, base, NOV27)
    publish(home, base, NOV28)
    [superseded] = states(home, NOV28)
    publish(home, changed, NOV28)  # a re-delivery: the first generation is superseded
    with pytest.raises(InputError):
        publish(home, rewritten, NOV29)  # held by the gate
    [held] = states(home, NOV29)
    publish(home, base, NOV29)  # a later delivery of the date is published instead
    assert (states(home, NOV28)[superseded], states(home, NOV29)[held]) == ("superseded", "held")
    removable = {(NOV28, superseded), (NOV29, held)}
    kept = {(day, published_generation(home, day)) for day in (NOV27, NOV28, NOV29)}
    folders = {(day, g): home / "artifacts" / "runs" / day.isoformat() / g for day, g in removable | kept}
    assert all(folder.is_dir() for folder in folders.values())
    ledger = {day: states(home, day) for day in (NOV27, NOV28, NOV29)}
    digests = {key: folder_digests(folder) for key, folder in folders.items()}

    dry = cli(home, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = {(dt.date.fromisoformat(day), generation)
              for day, generation in re.findall(r"would remove (\S+) generation (\S+)", " ".join(dry.stdout.split()))}
    assert listed == removable, dry.stdout
    assert {key: folder_digests(folder) for key, folder in folders.items()} == digests
    assert {day: states(home, day) for day in (NOV27, NOV28, NOV29)} == ledger

    pruned = cli(home, "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert not any(folders[key].exists() for key in removable)
    assert (states(home, NOV28)[superseded], states(home, NOV29)[held]) == ("pruned", "pruned")
    assert {key: folder_digests(folders[key]) for key in kept} == {key: digests[key] for key in kept}
    for day in (NOV27, NOV28, NOV29):
        checked = cli(home, "verify", "--date", day.isoformat())
        assert checked.returncode == 0, checked.stdout + checked.stderr
    following = cli(home, "run", "--date", NOV30.isoformat(), "--source", str(base))
    assert following.returncode == 0, following.stdout + following.stderr
    assert warehouse_of(home).run_record(NOV30).state == PUBLISHED
