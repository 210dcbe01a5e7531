"""Consecutive daily deliveries of the synthetic sample (airtime/sample.py), as a broadcaster
sends them: each day the audience history up to two days before (the same values every day,
one more day of exhibitions each time) and the slots of the next 31 days (the same slots
every day, one day more at the end and the day gone at the start). The history is the whole
of it, growing by a day each day, or with `history_days` its last days only: then each
delivery is the previous one shifted by a day (`make bench-month`, bench/month.py).

Cut from two draws rather than one `sample.generate` per day: that draws every exhibition's
audience and the programs on offer anew for each end date, so two of its outputs a day apart
disagree about the whole history (which the gate rightly holds as rewritten).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from airtime import sample

BOM, EOL = b"\xef\xbb\xbf", b"\r\n"


def _as_delivered(path: Path, header: str, delimiter: str) -> pa.Table:
    """Every column as the text the file holds, so a day's file repeats its lines byte for byte."""
    names = header.split(delimiter)
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter),
                          convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())))


def _write(path: Path, header: str, delimiter: str, rows: pa.Table) -> None:
    with path.open("wb") as sink:
        sink.write(BOM + header.encode() + EOL)
        if rows.num_rows:
            pacsv.write_csv(rows, sink, pacsv.WriteOptions(include_header=False, delimiter=delimiter,
                                                           quoting_style="none", eol="\r\n"))


def daily_deliveries(root: Path, first: dt.date, days: int, *, rows: int = 3000, seed: int = 7,
                     history_days: int | None = None) -> Iterator[tuple[dt.date, Path]]:
    """Each delivery day from `first` with its folder `root/dt=<D>/`, written just before it is
    yielded: a caller may remove a day's folder once done with it. `rows` audience rows are
    drawn for the history up to the last day; with `history_days`, each day's audience holds
    only the exhibitions of that many days up to two days before it."""
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    gap = dt.timedelta(days=sample.AVAILABILITY_GAP_DAYS - 1)  # delivery day - last exhibition
    sample.generate(root / "history", rows=rows, seed=seed, end_date=dates[-1] - gap)
    sample.generate(root / "slots", rows=rows, seed=seed, end_date=first - gap,
                    availability_days=sample.AVAILABILITY_DAYS + days)
    exhibitions = _as_delivered(root / "history" / sample.AUDIENCE_FILE, sample.AUDIENCE_HEADER, ",")
    slots = _as_delivered(root / "slots" / sample.AVAILABILITY_FILE, sample.AVAILABILITY_HEADER, ";")
    exhibited = exhibitions.column("exhibition_date")  # YYYY-MM-DD: compared as text
    slot_date = pc.cast(pc.strptime(slots.column("date"), "%d/%m/%Y", "s"), pa.date32())
    for day in dates:
        folder = root / f"dt={day.isoformat()}"
        folder.mkdir(parents=True)
        kept = pc.less_equal(exhibited, (day - gap).isoformat())
        if history_days is not None:
            kept = pc.and_(kept, pc.greater(exhibited, (day - gap - dt.timedelta(days=history_days)).isoformat()))
        offered = pc.and_(pc.greater(slot_date, pa.scalar(day, pa.date32())),
                          pc.less_equal(slot_date, pa.scalar(day + dt.timedelta(days=sample.AVAILABILITY_DAYS),
                                                             pa.date32())))
        _write(folder / sample.AUDIENCE_FILE, sample.AUDIENCE_HEADER, ",", exhibitions.filter(kept))
        _write(folder / sample.AVAILABILITY_FILE, sample.AVAILABILITY_HEADER, ";", slots.filter(offered))
        yield day, folder


def sample_days(root: Path, first: dt.date, days: int, *, rows: int = 3000, seed: int = 7) -> list[dt.date]:
    """Write `root/dt=<D>/` for `days` delivery days from `first`; returns the days."""
    return [day for day, _ in daily_deliveries(root, first, days, rows=rows, seed=seed)]
