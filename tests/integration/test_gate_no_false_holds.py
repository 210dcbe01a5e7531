"""The gate holds nothing a broadcaster really sends (issue 21, "How it will be checked"):
the real files delivered day after day, and a month of the synthetic sample's daily
deliveries, all publish, and no rule of airtime/plausibility.py even finds anything."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airtime.sample_days import daily_deliveries, sample_days
from airtime.warehouse import PUBLISHED
from steps import runner
from tests.conftest import SHARED_DATA, require_shared
from tests.gate_harness import judge_day
from tests.pipeline_helpers import local_settings


def _publish_quietly(home: Path, source: Path, days: list[dt.date]) -> list[dict]:
    """Run each day in order; every one must publish with no finding. Returns the gate's figures."""
    settings = local_settings(home, source)
    figures = []
    for day in days:
        result = runner.run_day(settings, day)
        gated = next(step for step in result.steps if step.step == "gate").manifest.extra
        assert (day, result.record.state, gated["findings"]) == (day, PUBLISHED, [])
        figures.append(gated["figures"])
    return figures


def test_the_real_files_day_after_day_and_after_a_gap_pass(tmp_path: Path) -> None:
    require_shared(SHARED_DATA / "tvaberta_program_audience.csv", "the real input files")
    days = [dt.date(2020, 7, d) for d in (21, 22, 23, 28)]  # 07-28: five days late, 10 days of slots past
    figures = _publish_quietly(tmp_path / "home", SHARED_DATA, days)
    # a slot dated before the delivery day is kept and counted, not refused: 07-22's 60 on 07-23
    assert [(f["slots"], f["past_slots"]) for f in figures] == [(2292, 0), (2292, 0), (2292, 60), (2292, 306)]
    assert figures[2]["upcoming_first"] == "2020-07-23"


def test_a_month_of_the_synthetic_samples_days_passes(tmp_path: Path) -> None:
    """30 daily deliveries judged by the gate's rules (tests/gate_harness.py: a second each
    through `airtime run` would cost this suite half a minute), the first two also through
    the pipeline, whose gate must see them alike."""
    source = tmp_path / "source"
    days = sample_days(source, dt.date(2026, 11, 1), 30)
    settings = local_settings(tmp_path / "home", source)
    judged, previous = [], None
    for day in days:
        previous = judge_day(source / f"dt={day}", day, tmp_path / "judged" / str(day), settings, previous=previous)
        judged.append(previous)
    assert [(j.run_date, j.held) for j in judged] == [(day, False) for day in days], \
        [(j.run_date, j.findings) for j in judged if j.held]
    assert {j.figures["upcoming_first"] for j in judged} == {(day + dt.timedelta(days=1)).isoformat() for day in days}
    assert _publish_quietly(settings.home, source, days[:2]) == [j.figures for j in judged[:2]]


def test_deliveries_shifted_by_a_day_pass_as_next_days(tmp_path: Path) -> None:
    """bench/month.py's days: each delivery the previous one with its oldest day of
    exhibitions gone and a new day added; the gate must take each as an ordinary next day."""
    settings = local_settings(tmp_path / "home", tmp_path / "source")
    judged, previous, oldest = [], None, []
    for day, folder in daily_deliveries(tmp_path / "source", dt.date(2026, 11, 1), 3, history_days=300):
        oldest.append(min(line.split(",")[2] for line in (folder / "program_audience.csv").read_text(
            encoding="utf-8-sig").splitlines()[1:]))
        previous = judge_day(folder, day, tmp_path / "judged" / str(day), settings, previous=previous)
        judged.append(previous)
    assert oldest == ["2026-01-04", "2026-01-05", "2026-01-06"]  # 300 days up to 2 days before
    assert [(j.run_date, j.held) for j in judged] == [(j.run_date, False) for j in judged], \
        [(j.run_date, j.findings) for j in judged if j.held]
