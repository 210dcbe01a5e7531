"""Issue 21, as an operator meets it on a copy of the real files (../shared/data): each
delivery that is wrong as a whole, or dated out of range, ends with exit 3 naming why (held
by the gate, or refused by ingest naming file and line); the day published before stays
served; and the operator who insists gets it published (`airtime accept` for a held
delivery, `--max-bad-rows` for refused lines).

In-process runs (steps.runner, as `airtime run` does) on a copy of one home where
2020-07-21 is published; one case goes through the `airtime` command itself.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from airtime import query
from airtime.duckdb_warehouse import DuckDBWarehouse
from airtime.errors import DeliveryHeldError, InputError
from airtime.warehouse import PUBLISHED, SlotFilter
from steps import gate, runner
from steps.scaffold import make_context
from tests.conftest import SHARED_DATA, require_shared
from tests.delivery_changes import Change, derive, exhibitions_added, slots_moved
from tests.pipeline_helpers import cli, local_settings

JUL21, JUL22 = dt.date(2020, 7, 21), dt.date(2020, 7, 22)
HUCK = SlotFilter(dt.date(2020, 8, 1), dt.date(2020, 8, 1), "SP1", "HUCK")  # a Saturday
HUCK_FORECAST = 1_106_053.7229  # ../shared/data/README.md: the known answer, from 4 exhibitions
HUCK_SATURDAYS = ("2020-07-04", "2020-07-11", "2020-07-18")  # after the real history, before 07-22


@pytest.fixture(scope="module")
def real_files() -> Path:
    for name in ("tvaberta_program_audience.csv", "tvaberta_inventory_availability.csv"):
        require_shared(SHARED_DATA / name, "the real input files")
    return SHARED_DATA


@pytest.fixture(scope="module")
def published_jul21(tmp_path_factory: pytest.TempPathFactory, real_files: Path) -> Path:
    """A home where the real files are published as the delivery of 2020-07-21."""
    home = tmp_path_factory.mktemp("published") / "home"
    assert runner.run_day(local_settings(home, real_files), JUL21).record.state == PUBLISHED
    return home


def served(home: Path) -> tuple[dt.date, str, float | None]:
    """What a client asking for SP1/HUCK on 2020-08-01 gets: the run, its generation, the forecast."""
    run, rows = query.run_query(DuckDBWarehouse(home / "warehouse.duckdb"), HUCK)
    return run.run_date, run.generation, rows[0].predicted_audience if rows else None


def one_year_back(rows: list[list[str]]) -> list[list[str]]:
    return slots_moved(-365)(rows)


@dataclass(frozen=True)
class Case:
    day: dt.date
    audience: Change | None = None
    availability: Change | None = None
    held: bool = True  # held by the gate (else refused by ingest, naming file and line)
    why: tuple[str, ...] = ()  # what the message must say: the rule, its numbers, its setting
    # a refused line: also published with it set aside (`--max-bad-rows 1`); run once, for the
    # case that changes a forecast (a line is set aside the same way whatever its rule)
    set_aside: bool = False


CASES = [
    # a re-delivery of a date with no earlier published run: compared with its published version
    pytest.param(Case(JUL21, audience=lambda rows: rows[::10], why=(
        "against the published delivery of the same date, 2020-07-21",
        "row-count: audience has 899 rows, 10% of the 8,987", "AIRTIME_DQ_MIN_ROWS_RATIO=0.5")),
        id="redelivery-a-tenth-of-the-audience"),
    pytest.param(Case(JUL21, availability=lambda rows: rows[::2], why=(
        "upcoming-slots: 1,146 slots dated on or after the delivery day, 50% of the 2,292",
        "AIRTIME_DQ_MIN_UPCOMING_SLOTS_RATIO=0.7")), id="redelivery-half-the-availability"),
    pytest.param(Case(JUL21, audience=lambda rows: [[*r[:4], repr(float(r[4]) * 1.5)] for r in rows], why=(
        "rewritten-history: the audience rewrites 8,987 of the 8,987 exhibitions",
        "AIRTIME_DQ_MAX_REWRITTEN_RATIO=0.1")), id="redelivery-history-x1.5"),
    pytest.param(Case(JUL21, availability=one_year_back, why=(
        "past-slots: 2,292 of the 2,292 slots (100%) are dated before the delivery day 2020-07-21",
        "AIRTIME_DQ_MAX_PAST_SLOTS_RATIO=0.5")), id="redelivery-slots-a-year-back"),
    # the next day, against the published 2020-07-21
    pytest.param(Case(JUL22, availability=one_year_back, why=(
        "against the previous published delivery, 2020-07-21",
        "upcoming-slots: 0 slots dated on or after the delivery day", "past-slots")), id="slots-a-year-back"),
    pytest.param(Case(JUL22, availability=lambda rows: [[*r[:3], "0"] for r in rows], why=(
        "available-time: available_time of the upcoming slots", "all signals 0 s of 340,978 s (0%)",
        "AIRTIME_DQ_MIN_AVAILABLE_TIME_RATIO=0.7")), id="no-available-time"),
    pytest.param(Case(JUL22, audience=lambda rows: [r for r in rows if r[0] not in ("BH", "DF")], why=(
        "vanished-signals: signals with audience before and none now: BH, DF",
        "AIRTIME_DQ_MAX_VANISHED_SIGNALS=0")), id="two-signals-gone-from-the-audience"),
    # rules of time: refused line by line
    pytest.param(Case(JUL22, audience=exhibitions_added(("SP1", "HUCK", "2020-07-25", "9000000")), held=False, why=(
        "tvaberta_program_audience.csv: line 8989, column exhibition_date, value '2020-07-25': is after the"
        " delivery day 2020-07-22: a program that has not aired has no measured audience",), set_aside=True),
        id="an-exhibition-after-the-delivery-day"),
    pytest.param(Case(JUL22, audience=exhibitions_added(("SP1", "HUCK", "0000-01-01", "9000000")), held=False, why=(
        "line 8989, column exhibition_date, value '0000-01-01': must be within 1990-01-01 .. 2022-07-22",
        "AIRTIME_DQ_EARLIEST_DATE")), id="an-exhibition-in-year-0"),
    pytest.param(Case(JUL22, audience=exhibitions_added(("SP1", "HUCK", "9999-12-31", "9000000")), held=False, why=(
        "line 8989, column exhibition_date, value '9999-12-31': must be within 1990-01-01 .. 2022-07-22",)),
        id="an-exhibition-in-9999"),
    pytest.param(Case(JUL22, availability=lambda rows: [*rows, ["SP1", "HUCK", "01/01/0001", "10"]], held=False, why=(
        "tvaberta_inventory_availability.csv: line 2294, column date, value '01/01/0001': must be within"
        " 1990-01-01 .. 2022-07-22", "AIRTIME_DQ_HORIZON_DAYS=730")), id="a-slot-in-year-1"),
    pytest.param(Case(JUL22, availability=lambda rows: [*rows, ["SP1", "HUCK", "31/12/9999", "10"]], held=False, why=(
        "line 2294, column date, value '31/12/9999': must be within 1990-01-01 .. 2022-07-22",)),
        id="a-slot-in-9999"),
]


@pytest.mark.parametrize("case", CASES)
def test_a_wrong_delivery_exits_3_naming_why_the_published_day_stays_served_and_an_operator_may_insist(
        case: Case, published_jul21: Path, real_files: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(published_jul21, home)
    before = served(home)
    delivery = derive(real_files, tmp_path / "delivery", audience=case.audience, availability=case.availability)
    settings = local_settings(home, delivery)

    with pytest.raises(InputError) as refused:
        runner.run_day(settings, case.day)
    message = str(refused.value)
    assert refused.value.exit_code == 3
    assert isinstance(refused.value, DeliveryHeldError) == case.held, message
    for text in case.why:
        assert text in message, message
    assert served(home) == before  # the published generation of 2020-07-21, its forecast untouched

    if case.held:  # `airtime accept`: exactly the held generation, from its stored artifacts
        ctx = make_context(settings, case.day, needs_source=False)
        ctx.generation, ctx.pinned = gate.held_generation(ctx).generation, True
        gate.accept(ctx, "the operator knows better", "test")
        finished = runner.run_day(settings, case.day, generation=ctx.gen)
    elif case.set_aside:  # `--max-bad-rows 1`: the line is set aside, the rest published
        finished = runner.run_day(settings.model_copy(update={"max_bad_rows": 1}), case.day)
        assert finished.record.quarantined_rows == 1
        assert served(home)[2] == pytest.approx(HUCK_FORECAST)  # the exhibition set aside feeds no forecast
    else:
        return
    assert finished.record.state == PUBLISHED
    assert served(home)[:2] == (case.day, finished.record.generation)


def test_huck_at_990_billion_is_held_by_the_command_until_an_operator_accepts_it(
        published_jul21: Path, real_files: Path, tmp_path: Path) -> None:
    """The issue's worst case, through `airtime` itself: three new HUCK exhibitions under the
    1e12 cap made HUCK's forecast 990,000,000,000."""
    home = tmp_path / "home"
    shutil.copytree(published_jul21, home)
    delivery = derive(real_files, tmp_path / "delivery", audience=exhibitions_added(
        *(("SP1", "HUCK", day, "990000000000") for day in HUCK_SATURDAYS)))

    held = cli(home, "run", "--date", JUL22.isoformat(), "--source", str(delivery))
    assert held.returncode == 3, held.stdout + held.stderr
    assert "audience-outliers: 3 exhibitions have an audience more than 15 median absolute deviations" in held.stderr
    assert "SP1/HUCK 2020-07-18 990,000,000,000" in held.stderr and "AIRTIME_DQ_AUDIENCE_OUTLIER_MADS=15" in held.stderr
    assert served(home)[0] == JUL21 and served(home)[2] == pytest.approx(HUCK_FORECAST)

    accepted = cli(home, "accept", "--date", JUL22.isoformat(), "--reason", "the operator insists")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert served(home)[0] == JUL22 and served(home)[2] == pytest.approx(990e9)


def test_slots_moved_before_the_delivery_day_are_counted_until_their_share_is_held(
        published_jul21: Path, real_files: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(published_jul21, home)
    few = derive(real_files, tmp_path / "few", availability=slots_moved(-60, every=10))  # 10% before the day
    result = runner.run_day(local_settings(home, few), JUL22)
    assert result.record.state == PUBLISHED and result.steps[0].manifest.extra["past_slots"] == 230
    most = derive(real_files, tmp_path / "most", availability=lambda rows: slots_moved(-60)(rows[:1500]) + rows[1500:])
    with pytest.raises(DeliveryHeldError, match=r"past-slots: 1,5\d\d of the 2,292 slots \(6\d%\)"):
        runner.run_day(local_settings(home, most), dt.date(2020, 7, 23))
