"""The forecast rule (README.md, first section) written the obvious way, in pure Python: the reference
the DuckDB SQL is checked against (property test and the golden test on the real files)."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable

DEPTH = 4

Exhibition = tuple[str, str, dt.date, float]  # signal, program_code, exhibition_date, audience
Slot = tuple[str, str, dt.date, int]  # signal, program_code, date, available_time


def naive_forecast(history: Iterable[Exhibition], slots: Iterable[Slot]) -> list[dict]:
    """One dict per slot, in the slots' order."""
    by_pair: dict[tuple[str, str], list[tuple[dt.date, float]]] = defaultdict(list)
    for signal, program, day, value in history:
        by_pair[(signal, program)].append((day, value))
    rows = []
    for signal, program, day, seconds in slots:
        earlier = sorted(
            (d, v) for d, v in by_pair[(signal, program)] if d < day and d.weekday() == day.weekday()
        )
        used = [v for _, v in earlier[-DEPTH:]]
        rows.append(
            {
                "signal": signal,
                "program_code": program,
                "date": day,
                "weekday": day.weekday(),
                "available_time": seconds,
                "predicted_audience": statistics.median(used) if used else None,
                "history_size": len(used),
            }
        )
    return rows


def naive_merge(deliveries: Iterable[Iterable[Exhibition]]) -> list[Exhibition]:
    """History after deliveries in run order: the latest delivery wins per key."""
    merged: dict[tuple[str, str, dt.date], float] = {}
    for delivery in deliveries:
        for signal, program, day, value in delivery:
            merged[(signal, program, day)] = value
    return [(s, p, d, v) for (s, p, d), v in merged.items()]


def assert_same_forecast(frame, expected: list[dict], rel: float = 1e-9) -> None:
    """`frame` (compute_forecast's output) holds exactly the rows of `expected`, each equal
    (medians to `rel`: the SQL may average the two middle values in another order)."""
    import math

    import pytest

    assert len(frame) == len(expected)
    got = {}
    for row in frame.itertuples(index=False):
        day = row.date.date() if hasattr(row.date, "date") else row.date
        prediction = None if row.predicted_audience is None or math.isnan(row.predicted_audience) else row.predicted_audience
        key = (row.signal, row.program_code, day)
        assert key not in got, f"slot {key} appears twice"
        got[key] = (int(row.weekday), int(row.available_time), prediction, int(row.history_size))
    for want in expected:
        key = (want["signal"], want["program_code"], want["date"])
        assert key in got, f"slot {key} is missing"
        weekday, seconds, prediction, size = got[key]
        assert (weekday, seconds, size) == (want["weekday"], want["available_time"], want["history_size"]), key
        if want["predicted_audience"] is None:
            assert prediction is None, key
        else:
            assert prediction == pytest.approx(want["predicted_audience"], rel=rel), key
