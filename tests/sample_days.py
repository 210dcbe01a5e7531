"""Consecutive daily deliveries of the synthetic sample (airtime/sample.py), as a broadcaster
sends them: each day the whole audience history up to two days before (the same values every
day, one more day of exhibitions each time) and the slots of the next 31 days (the same slots
every day, one day more at the end and the day gone at the start).

Cut from two draws rather than one `sample.generate` per day: that draws every exhibition's
audience and the programs on offer anew for each end date, so two of its outputs a day apart
disagree about the whole history (which the gate rightly holds as rewritten).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airtime import sample

BOM, EOL = b"\xef\xbb\xbf", b"\r\n"


def _rows(path: Path) -> tuple[bytes, list[bytes]]:
    header, *lines = path.read_bytes().removeprefix(BOM).split(EOL)
    return header, [line for line in lines if line]


def sample_days(root: Path, first: dt.date, days: int, *, rows: int = 3000, seed: int = 7) -> list[dt.date]:
    """Write `root/dt=<D>/` for `days` delivery days from `first`; returns the days."""
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    gap = dt.timedelta(days=sample.AVAILABILITY_GAP_DAYS - 1)  # delivery day - last exhibition
    audience, _ = sample.generate(root / "history", rows=rows, seed=seed, end_date=dates[-1] - gap)
    _, availability = sample.generate(root / "slots", rows=rows, seed=seed, end_date=first - gap,
                                      availability_days=sample.AVAILABILITY_DAYS + days)
    audience_header, exhibitions = _rows(audience)
    slots_header, slots = _rows(availability)
    slot_dates = [dt.datetime.strptime(line.split(b";")[2].decode(), "%d/%m/%Y").date() for line in slots]
    for day in dates:
        folder = root / f"dt={day.isoformat()}"
        folder.mkdir(parents=True)
        cut = (day - gap).isoformat().encode()
        kept = [line for line in exhibitions if line.split(b",")[2] <= cut]
        window = range((day - first).days, (day - first).days + sample.AVAILABILITY_DAYS)
        offered = [line for line, date in zip(slots, slot_dates, strict=True) if (date - first).days - 1 in window]
        for name, header, lines in ((sample.AUDIENCE_FILE, audience_header, kept),
                                    (sample.AVAILABILITY_FILE, slots_header, offered)):
            (folder / name).write_bytes(BOM + EOL.join([header, *lines]) + EOL)
    return dates
