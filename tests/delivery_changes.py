"""Wrong deliveries for the gate's tests: a copy of a delivery (the real files, say) with the
data rows of each file passed through a change. The copy keeps the file names, the BOM and
the CRLF line ends, so it differs from the original only where the change says."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

AUDIENCE, AVAILABILITY = "*program_audience*.csv", "*inventory_availability*.csv"
SEPARATOR = {AUDIENCE: ",", AVAILABILITY: ";"}

Rows = list[list[str]]  # a file's data rows, split into fields
Change = Callable[[Rows], Rows]


def read_rows(folder: Path, pattern: str) -> tuple[bytes, Rows]:
    """The header line and the data rows of the folder's file matching `pattern`."""
    [path] = folder.glob(pattern)
    header, *lines = path.read_bytes().removesuffix(b"\r\n").split(b"\r\n")
    return header, [line.decode().split(SEPARATOR[pattern]) for line in lines]


def derive(source: Path, target: Path, *, audience: Change | None = None,
           availability: Change | None = None) -> Path:
    target.mkdir(parents=True)
    for pattern, change in ((AUDIENCE, audience), (AVAILABILITY, availability)):
        [path] = source.glob(pattern)
        header, rows = read_rows(source, pattern)
        rows = change(rows) if change else rows
        body = b"".join(SEPARATOR[pattern].join(row).encode() + b"\r\n" for row in rows)
        (target / path.name).write_bytes(header + b"\r\n" + body)
    return target


def slot_date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%d/%m/%Y").date()


def slot_text(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def slots_moved(days: int, every: int = 1) -> Change:
    """Every `every`-th slot `days` later (earlier when negative)."""
    def change(rows: Rows) -> Rows:
        return [[s, p, slot_text(slot_date(d) + dt.timedelta(days=days)) if i % every == 0 else d, t]
                for i, (s, p, d, t) in enumerate(rows)]
    return change


def exhibitions_added(*rows: tuple[str, str, str, str]) -> Change:
    """(signal, program, exhibition date, audience) rows added at the end, starting at 20:00 UTC."""
    return lambda existing: existing + [[s, p, d, f"{d}T20:00:00.000Z", a] for s, p, d, a in rows]
