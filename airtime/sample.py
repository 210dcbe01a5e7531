"""Synthetic delivery files in the broadcaster's two real formats (see ../shared/data/README.md).

`generate()` writes `program_audience.csv` and `inventory_availability.csv`: the demo data
of `make run`, test fixtures and the 10M-row benchmark input. The same arguments give the
same bytes: the data is drawn block by block of programs, each block from its own random
stream keyed by (seed, block), so the output does not depend on how much is held in memory.

The shape follows the real files: a handful of signals, programs airing on fixed weekdays
(daily, Monday-Friday, weekends, weekly), a broadcast day running from 05:00 to 03:00 local
time so late-night exhibitions start on the next UTC date, occasional missed exhibitions,
programs that began recently (fewer than 4 same-weekday exhibitions), and availability a few
days after the last exhibition, including (signal, program) pairs with no history at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from airtime.progress import Progress

AUDIENCE_FILE = "program_audience.csv"
AVAILABILITY_FILE = "inventory_availability.csv"
AUDIENCE_HEADER = "signal,program_code,exhibition_date,program_start_time,average_audience"
AVAILABILITY_HEADER = "signal;program_code;date;available_time"

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 7
# The bundled sample: history up to late November 2026, availability all of December.
DEFAULT_END_DATE = dt.date(2026, 11, 28)

HISTORY_DAYS = 364  # 52 weeks of exhibitions ending at end_date
AVAILABILITY_GAP_DAYS = 3  # availability starts this many days after the last exhibition
AVAILABILITY_DAYS = 31
PROGRAMS_PER_BLOCK = 256  # the unit of randomness and of memory: ~150k audience rows

SIGNALS = np.array(["SP1", "RJ", "BH", "DF", "PE1", "NAC"])
# Audience scale per signal (SP1 is the largest market), multiplied by the program's level.
SIGNAL_WEIGHT = np.array([1.0, 0.7, 0.35, 0.2, 0.25, 0.5])
UTC_OFFSET_MINUTES = 3 * 60  # Brazil (America/Sao_Paulo) is UTC-3, no daylight saving since 2019

# Airing patterns (Monday first) and how often programs follow each.
SCHEDULES = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1],  # daily
        [1, 1, 1, 1, 1, 0, 0],  # Monday to Friday
        [0, 0, 0, 0, 0, 1, 1],  # weekends
        [1, 0, 0, 0, 0, 0, 0],  # weekly, on one day (rolled per program below)
    ],
    dtype=bool,
)
SCHEDULE_WEIGHTS = [0.15, 0.35, 0.15, 0.35]
NEW_PROGRAM_SHARE = 0.12  # programs announced in availability with no history yet
RECENT_PROGRAM_SHARE = 0.08  # programs that began within the last four weeks
MISSED_SHARE = 0.03  # exhibitions replaced by something else (sport, news)
SLOT_SHARE = 0.6  # programs with history that also have ad time on offer
SLOT_SKIP_SHARE = 0.1


@dataclass(frozen=True)
class _Block:
    """One block of programs: audience rows (numpy columns) and availability rows."""

    audience: dict[str, np.ndarray]
    availability: dict[str, np.ndarray]
    pair_rows: np.ndarray  # audience rows per (signal, program) pair, in pair order
    pair_slots: np.ndarray  # availability rows per pair, in pair order


def run_date_for(end_date: dt.date = DEFAULT_END_DATE) -> dt.date:
    """The delivery day the files fit: the day before their availability starts."""
    return end_date + dt.timedelta(days=AVAILABILITY_GAP_DAYS - 1)


def generate(
    out_dir: Path,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    end_date: dt.date = DEFAULT_END_DATE,
    progress: Progress | None = None,
    availability_days: int = AVAILABILITY_DAYS,
) -> tuple[Path, Path]:
    """Write exactly `rows` audience rows (last exhibition on or before `end_date`) and the
    matching availability (`availability_days` days of it, from the third day after
    `end_date`); return (audience_path, availability_path)."""
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    out_dir.mkdir(parents=True, exist_ok=True)
    audience_path, availability_path = out_dir / AUDIENCE_FILE, out_dir / AVAILABILITY_FILE
    with audience_path.open("wb") as audience, availability_path.open("wb") as availability:
        audience.write(f"\ufeff{AUDIENCE_HEADER}\r\n".encode())
        availability.write(f"\ufeff{AVAILABILITY_HEADER}\r\n".encode())
        for block in _blocks(rows, seed, end_date, availability_days):
            _write_csv(audience, _audience_table(block.audience), ",")
            _write_csv(availability, _availability_table(block.availability), ";")
            if progress is not None:
                progress.add(len(block.audience["pair"]))
    return audience_path, availability_path


def _blocks(rows: int, seed: int, end_date: dt.date, availability_days: int = AVAILABILITY_DAYS
            ) -> Iterator[_Block]:
    """Blocks until `rows` audience rows; the last block is cut at a pair boundary (its
    last pair keeps only its most recent exhibitions) so the count is exact."""
    remaining = rows
    index = 0
    while remaining > 0:
        rng = np.random.default_rng([seed, index])
        block = _draw_block(rng, index, end_date, availability_days)
        if block.pair_rows.sum() > remaining:
            block = _cut(block, remaining)
        remaining -= len(block.audience["pair"])
        yield _shuffled(block, rng)
        index += 1


def _draw_block(rng: np.random.Generator, index: int, end_date: dt.date,
                availability_days: int = AVAILABILITY_DAYS) -> _Block:
    n = PROGRAMS_PER_BLOCK
    first_program = index * n

    # Programs: airing weekdays, local start time, audience level, novelty.
    kind = rng.choice(len(SCHEDULES), size=n, p=SCHEDULE_WEIGHTS)
    mask = SCHEDULES[kind]
    weekly = kind == 3
    mask[weekly] = _rolled(mask[weekly], rng.integers(0, 7, size=int(weekly.sum())))
    # Minutes after local midnight of the broadcast day: 05:00 .. 02:59 the next morning.
    start_minute = rng.integers(5 * 60, 27 * 60, size=n)
    level = np.exp(rng.normal(13.0, 1.1, size=n))  # median ~440k viewers
    novelty = rng.random(n)
    new = novelty < NEW_PROGRAM_SHARE
    recent = (novelty >= NEW_PROGRAM_SHARE) & (novelty < NEW_PROGRAM_SHARE + RECENT_PROGRAM_SHARE)
    first_day = np.where(recent, HISTORY_DAYS - rng.integers(1, 28, size=n), 0)
    first_day = np.where(new, HISTORY_DAYS, first_day)  # past the end: no exhibitions

    # Pairs: each program on a random non-empty subset of the signals, in signal order.
    on_signal = rng.random((n, len(SIGNALS))) < rng.uniform(0.2, 1.0, size=(n, 1))
    on_signal[~on_signal.any(axis=1), 0] = True
    program_of, signal_of = np.nonzero(on_signal)
    weekday_effect = np.exp(rng.normal(0.0, 0.15, size=(len(program_of), 7)))

    # Exhibitions: pair x day grid of HISTORY_DAYS days ending at end_date.
    first_date = np.datetime64(end_date) - (HISTORY_DAYS - 1)
    days = first_date + np.arange(HISTORY_DAYS)
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    airs = mask[program_of][:, weekday] & (np.arange(HISTORY_DAYS) >= first_day[program_of, None])
    airs &= rng.random(airs.shape) >= MISSED_SHARE
    pair, day = np.nonzero(airs)  # row-major: pair order, then date order
    trend = 1.0 + 0.1 * np.sin(day / HISTORY_DAYS * 2 * np.pi + program_of[pair])
    average = (
        level[program_of[pair]]
        * SIGNAL_WEIGHT[signal_of[pair]]
        * weekday_effect[pair, weekday[day]]
        * trend
        * np.exp(rng.normal(0.0, 0.2, size=len(pair)))
    )
    exhibition_date = days[day]
    start_utc = (
        exhibition_date.astype("datetime64[m]")
        + start_minute[program_of[pair]]
        + UTC_OFFSET_MINUTES
    )
    audience = {
        "pair": pair,
        "signal": signal_of[pair],
        "program": first_program + program_of[pair],
        "exhibition_date": exhibition_date,
        "program_start_time": start_utc,
        "average_audience": np.clip(average, 1_000.0, 40_000_000.0),
    }

    # Availability: the airing days of a window after the history, for programs on offer.
    offered = np.where(new, True, rng.random(n) < SLOT_SHARE)[program_of]
    slot_days = np.datetime64(end_date) + AVAILABILITY_GAP_DAYS + np.arange(availability_days)
    slot_weekday = (slot_days.view("int64") - 4) % 7
    has_slot = mask[program_of][:, slot_weekday] & offered[:, None]
    has_slot &= rng.random(has_slot.shape) >= SLOT_SKIP_SHARE
    slot_pair, slot_day = np.nonzero(has_slot)
    # Ad seconds on offer: mostly short breaks, some long ones, 1..300.
    seconds = np.where(
        rng.random(len(slot_pair)) < 0.7,
        rng.integers(1, 121, size=len(slot_pair)),
        rng.integers(121, 301, size=len(slot_pair)),
    )
    availability = {
        "pair": slot_pair,
        "signal": signal_of[slot_pair],
        "program": first_program + program_of[slot_pair],
        "date": slot_days[slot_day],
        "available_time": seconds,
    }
    n_pairs = len(program_of)
    return _Block(
        audience,
        availability,
        np.bincount(pair, minlength=n_pairs),
        np.bincount(slot_pair, minlength=n_pairs),
    )


def _rolled(rows: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    columns = (np.arange(rows.shape[1])[None, :] - shifts[:, None]) % rows.shape[1]
    return np.take_along_axis(rows, columns, axis=1)


def _cut(block: _Block, rows: int) -> _Block:
    """Keep the first pairs holding `rows` audience rows; the last kept pair loses its
    oldest exhibitions (a program that began recently). Pairs past the cut are dropped,
    availability included, so availability never names a pair that was cut away."""
    ends = np.cumsum(block.pair_rows)
    last = int(np.searchsorted(ends, rows))  # the pair holding row number `rows`
    before = int(ends[last - 1]) if last else 0
    position = np.arange(len(block.audience["pair"]))  # rows are in pair, then date order
    keep = (position < before) | (
        (position >= ends[last] - (rows - before)) & (position < ends[last])
    )
    aud = block.audience
    avail = block.availability
    keep_slots = avail["pair"] <= last
    return _Block(
        {k: v[keep] for k, v in aud.items()},
        {k: v[keep_slots] for k, v in avail.items()},
        block.pair_rows[: last + 1],
        block.pair_slots[: last + 1],
    )


def _shuffled(block: _Block, rng: np.random.Generator) -> _Block:
    """Audience rows in no particular order, as delivered; availability stays sorted."""
    order = rng.permutation(len(block.audience["pair"]))
    return _Block(
        {k: v[order] for k, v in block.audience.items()},
        block.availability,
        block.pair_rows,
        block.pair_slots,
    )


def program_codes(numbers: np.ndarray) -> np.ndarray:
    """Four capital letters per program number (like HUCK), spread by a bijection mod 26**4
    so neighbours do not look alike; numbers past 26**4 get a numeric suffix."""
    space = 26**4
    # 7919 is prime, coprime with 26: an affine bijection of 0..26**4-1
    spread = ((numbers % space) * 7919 + 190_321) % space
    letters = np.stack([(spread // 26**k) % 26 for k in (3, 2, 1, 0)], axis=1) + ord("A")
    codes = letters.astype(np.uint8).view("S4").ravel().astype(str)
    wrapped = numbers >= space
    if wrapped.any():
        codes = codes.astype(object)
        codes[wrapped] = codes[wrapped] + (numbers[wrapped] // space).astype(str)
    return codes.astype(str)


def _audience_table(columns: dict[str, np.ndarray]) -> pa.Table:
    return pa.table(
        {
            "signal": SIGNALS[columns["signal"]],
            "program_code": program_codes(columns["program"]),
            "exhibition_date": pa.array(columns["exhibition_date"].astype("datetime64[D]")),
            "program_start_time": np.datetime_as_string(
                columns["program_start_time"].astype("datetime64[ms]"), unit="ms", timezone="UTC"
            ),
            "average_audience": columns["average_audience"],
        }
    )


def _availability_table(columns: dict[str, np.ndarray]) -> pa.Table:
    date = columns["date"].astype("datetime64[D]")
    iso = np.datetime_as_string(date, unit="D")
    # DD/MM/YYYY from YYYY-MM-DD by slicing fixed-width strings (no per-row Python).
    raw = iso.astype("U10").view("U1").reshape(-1, 10)
    day_first = raw[:, [8, 9, 4, 5, 6, 4, 0, 1, 2, 3]].copy()
    day_first[:, [2, 5]] = "/"
    return pa.table(
        {
            "signal": SIGNALS[columns["signal"]],
            "program_code": program_codes(columns["program"]),
            "date": day_first.view("U10").ravel(),
            "available_time": columns["available_time"].astype(np.int64),
        }
    )


def _write_csv(sink, table: pa.Table, delimiter: str) -> None:
    if table.num_rows == 0:
        return
    pacsv.write_csv(
        table,
        sink,
        pacsv.WriteOptions(
            include_header=False, delimiter=delimiter, quoting_style="none", eol="\r\n"
        ),
    )
