"""The synthetic generator: real formats, deterministic, and the bundled sample never drifts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from airtime import sample
from cli import main as cli

BUNDLED = Path(sample.__file__).parent / "sample_data"


def read_audience(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype={"signal": str, "program_code": str})


def read_availability(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=";", encoding="utf-8-sig", dtype={"signal": str, "program_code": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%d/%m/%Y").dt.date
    return frame


@pytest.fixture(scope="module")
def default_files(tmp_path_factory) -> tuple[Path, Path]:
    return sample.generate(tmp_path_factory.mktemp("sample"))


def test_bundled_sample_equals_a_fresh_generation_with_the_defaults(default_files):
    audience, availability = default_files
    assert (BUNDLED / sample.AUDIENCE_FILE).read_bytes() == audience.read_bytes()
    assert (BUNDLED / sample.AVAILABILITY_FILE).read_bytes() == availability.read_bytes()


def test_same_seed_gives_the_same_bytes_and_another_seed_other_data(tmp_path):
    first = sample.generate(tmp_path / "a", rows=3_000, seed=11)
    again = sample.generate(tmp_path / "b", rows=3_000, seed=11)
    other = sample.generate(tmp_path / "c", rows=3_000, seed=12)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert first[0].read_bytes() != other[0].read_bytes()


@pytest.mark.parametrize("rows", [1, 999, 20_000, 400_000])
def test_writes_exactly_the_requested_audience_rows(tmp_path, rows):
    audience, _ = sample.generate(tmp_path, rows=rows)
    assert audience.read_bytes().count(b"\r\n") == rows + 1


def test_audience_file_has_the_real_format(default_files):
    raw = default_files[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + sample.AUDIENCE_HEADER.encode() + b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    first_row = raw.split(b"\r\n")[1].decode().split(",")
    assert len(first_row) == 5
    dt.date.fromisoformat(first_row[2])
    assert first_row[3].endswith(".000Z") and first_row[3][10] == "T"

    frame = read_audience(default_files[0])
    assert len(frame) == 20_000
    assert frame["average_audience"].gt(0).all()
    assert not frame.duplicated(["signal", "program_code", "exhibition_date"]).any()
    assert set(frame["signal"]) == set(sample.SIGNALS)


def test_late_night_programs_start_on_the_next_utc_date(default_files):
    frame = read_audience(default_files[0])
    utc_date = frame["program_start_time"].str.slice(0, 10)
    differs = utc_date != frame["exhibition_date"]
    assert 0.05 < differs.mean() < 0.3
    # always the next day: the broadcast day ends at 03:00 local, 06:00 UTC
    nxt = (pd.to_datetime(frame.loc[differs, "exhibition_date"]) + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%d")
    assert (nxt == utc_date[differs]).all()


def test_availability_file_has_the_real_format(default_files):
    raw = default_files[1].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + sample.AVAILABILITY_HEADER.encode() + b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    day, month, year = raw.split(b"\r\n")[1].decode().split(";")[2].split("/")
    assert (len(day), len(month), len(year)) == (2, 2, 4)

    frame = read_availability(default_files[1])
    assert 1_000 <= len(frame) <= 2_000
    assert frame["available_time"].between(1, 300).all()
    assert not frame.duplicated(["signal", "program_code", "date"]).any()
    assert frame["date"].min() == dt.date(2026, 12, 1)
    assert frame["date"].max() == dt.date(2026, 12, 31)


def test_availability_comes_after_the_history_and_includes_pairs_without_history(default_files):
    audience = read_audience(default_files[0])
    availability = read_availability(default_files[1])
    last_exhibition = dt.date.fromisoformat(audience["exhibition_date"].max())
    assert last_exhibition == sample.DEFAULT_END_DATE
    assert availability["date"].min() > last_exhibition

    known = set(zip(audience["signal"], audience["program_code"], strict=True))
    offered = set(zip(availability["signal"], availability["program_code"], strict=True))
    without_history = offered - known
    assert without_history and len(without_history) < len(offered) / 2


def test_history_has_slots_with_fewer_than_four_same_weekday_exhibitions(default_files):
    audience = read_audience(default_files[0])
    audience["weekday"] = pd.to_datetime(audience["exhibition_date"]).dt.day_of_week
    per_weekday = audience.groupby(["signal", "program_code", "weekday"]).size()
    assert (per_weekday < 4).any() and (per_weekday >= 4).any()


def test_end_date_moves_the_whole_calendar(tmp_path):
    audience, availability = sample.generate(tmp_path, rows=2_000, end_date=dt.date(2020, 7, 1))
    assert read_audience(audience)["exhibition_date"].max() == "2020-07-01"
    assert read_availability(availability)["date"].min() == dt.date(2020, 7, 4)


def test_program_codes_are_distinct_four_letter_codes_even_past_the_letter_space():
    import numpy as np

    numbers = np.array([0, 1, 2, 26**4 - 1, 26**4, 26**4 + 1])
    codes = sample.program_codes(numbers)
    assert len(set(codes)) == len(codes)
    assert all(c[:4].isalpha() and c[:4].isupper() for c in codes)


def test_sample_data_writes_the_files_and_names_their_delivery_day(tmp_path, capsys):
    assert cli.main(["sample-data", str(tmp_path / "out"), "--rows", "500", "--seed", "3"]) == 0
    assert (tmp_path / "out" / sample.AUDIENCE_FILE).is_file()
    assert (tmp_path / "out" / sample.AVAILABILITY_FILE).is_file()
    printed = capsys.readouterr().out
    assert str(tmp_path / "out") in printed.replace("\n", "")
    assert "their delivery day: 2026-11-30" in printed  # what `make run` runs the bundled sample as
