"""The command a Ctrl-C's line names (cli/main.py `_resume`): it resumes the date the run
stopped on with the same source and settings, and the rest of a backfill."""

from __future__ import annotations

import argparse
import datetime as dt

from airtime import interrupts
from cli.main import _resume


def test_a_run_resumes_its_date_with_the_same_source() -> None:
    args = argparse.Namespace(command="run", date=None, source="../shared data", max_bad_rows=None)
    assert _resume(args, interrupts.Interrupt("load", "2020-07-22")) == (
        "airtime run --date 2020-07-22 --source '../shared data'")
    args.date = dt.date(2020, 7, 21)  # stopped before its first step: the date asked
    assert _resume(args, interrupts.Interrupt()) == "airtime run --date 2020-07-21 --source '../shared data'"


def test_a_backfill_resumes_from_the_date_it_stopped_on() -> None:
    args = argparse.Namespace(command="backfill", start=dt.date(2020, 7, 1), end=dt.date(2020, 7, 31),
                              source="s3://bucket/in", skip_missing=True, same_files=False, max_bad_rows=3)
    assert _resume(args, interrupts.Interrupt("gate", "2020-07-22")) == (
        "airtime backfill --start 2020-07-22 --end 2020-07-31 --skip-missing --source s3://bucket/in"
        " --max-bad-rows 3")


def test_other_commands_name_nothing_to_resume() -> None:
    assert _resume(argparse.Namespace(command="query"), interrupts.Interrupt()) is None
