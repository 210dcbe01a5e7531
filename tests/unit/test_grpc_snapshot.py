"""The snapshot index answers exactly what a plain filter over the rows answers."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from airtime.schema import FORECAST
from airtime.warehouse import RunRecord, SlotFilter
from grpc_server.queries import RunId, decode_token, encode_token, filter_digest
from grpc_server.snapshot import Snapshot

SIGNALS = ["BH", "SP1", "_X"]
PROGRAMS = ["A", "HUCK", "PTV1", "Z9"]
DAY0 = dt.date(2026, 1, 1)


def _table(seed: int) -> pa.Table:
    rng = random.Random(seed)
    rows = []
    for signal in SIGNALS:
        for program in PROGRAMS:
            for d in rng.sample(range(40), rng.randint(0, 12)):  # gaps, empty series
                date = DAY0 + dt.timedelta(days=d)
                history = rng.randint(0, 4)
                rows.append({"signal": signal, "program_code": program, "date": date,
                             "weekday": date.weekday(), "available_time": rng.randint(1, 300),
                             "predicted_audience": None if history == 0 else rng.random() * 1e6,
                             "history_size": history})
    rng.shuffle(rows)  # the snapshot must not rely on the warehouse's order
    return pa.Table.from_pylist(rows, schema=FORECAST.arrow_schema)


def _record() -> RunRecord:
    return RunRecord(dt.date(2026, 1, 1), "published", "d", 0, 0, 0, 0,
                     published_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def _expected(table: pa.Table, q: SlotFilter) -> list[dict]:
    rows = [r for r in table.to_pylist()
            if q.start <= r["date"] <= q.end
            and (q.signal is None or r["signal"] == q.signal)
            and (q.program_code is None or r["program_code"] == q.program_code)]
    return sorted(rows, key=lambda r: (r["signal"], r["program_code"], r["date"]))


def _rows(snapshot: Snapshot, q: SlotFilter, offset: int, size: int) -> list[dict]:
    cols = snapshot.columns(snapshot.select(q).rows(offset, size))
    return [dict(zip(FORECAST.names, values, strict=True)) for values in zip(*cols.columns, strict=True)]


@given(
    seed=st.integers(0, 10_000),
    start=st.integers(-3, 42),
    length=st.integers(1, 45),
    signal=st.sampled_from([None, *SIGNALS, "NOPE"]),
    program=st.sampled_from([None, *PROGRAMS, "NOPE"]),
    page=st.integers(1, 17),
    day_index=st.booleans(),
)
def test_pages_of_the_index_concatenate_to_the_filtered_rows(seed, start, length, signal, program, page,
                                                            day_index):
    table = _table(seed)
    # with and without the per-day index (binary search is the fallback for sparse data)
    snapshot = Snapshot(_record(), table, dt.datetime.now(dt.UTC),
                        max_day_index_cells=Snapshot.MAX_DAY_INDEX_CELLS if day_index else 0)
    q = SlotFilter(DAY0 + dt.timedelta(days=start), DAY0 + dt.timedelta(days=start + length - 1),
                  signal, program)
    expected = _expected(table, q)
    assert snapshot.select(q).total == len(expected)
    paged = []
    for offset in range(0, len(expected) + page, page):
        paged += _rows(snapshot, q, offset, page)
    assert paged == expected


def test_empty_run_answers_nothing() -> None:
    snapshot = Snapshot(_record(), FORECAST.arrow_schema.empty_table(), dt.datetime.now(dt.UTC))
    q = SlotFilter(DAY0, DAY0 + dt.timedelta(days=5))
    assert snapshot.select(q).total == 0 and _rows(snapshot, q, 0, 10) == []
    assert not snapshot.has_program("HUCK")


def test_page_token_round_trips_and_rejects_tampering() -> None:
    q = SlotFilter(DAY0, DAY0, "SP1", None)
    run = RunId(dt.date(2026, 11, 30), 1_764_000_000_123_456)
    token = encode_token(run, 2000, q)
    assert decode_token(token) == (run, 2000, filter_digest(q))
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert decode_token(flipped) is None
    assert decode_token("not a token") is None
    assert decode_token("") is None
