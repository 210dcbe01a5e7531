"""Slots encoded once per run (grpc_server/wire.py) are the bytes protobuf itself writes."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from airtime.schema import FORECAST
from airtime.v1 import forecast_service_pb2 as pb
from airtime.warehouse import RunRecord, SlotFilter
from grpc_server.convert import add_slots
from grpc_server.snapshot import SlotColumns, Snapshot
from grpc_server.wire import encode_slots

CODES = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)
ROWS = st.lists(st.fixed_dictionaries({
    "signal": CODES,
    "program_code": CODES,
    "date": st.dates(),
    "weekday": st.integers(0, 6),
    "available_time": st.integers(-2**31, 2**31 - 1),
    "predicted_audience": st.none() | st.floats(allow_nan=False),
    "history_size": st.integers(0, 127),
}), max_size=40)


def _protobuf_bytes(table: pa.Table) -> bytes:
    response = pb.ListSlotsResponse()
    add_slots(response.slots, SlotColumns.from_arrow(table))
    return response.SerializeToString()


@given(ROWS)
def test_encoded_rows_are_protobufs_own_bytes(rows: list[dict]) -> None:
    table = pa.Table.from_pylist(rows, schema=FORECAST.arrow_schema)
    blob = encode_slots(table)
    assert blob.data == _protobuf_bytes(table)
    for i in range(len(rows)):
        row = blob.data[blob.offsets[i]:blob.offsets[i + 1]]
        assert row == _protobuf_bytes(table.slice(i, 1))


def test_encoded_answer_parses_back_to_the_rows() -> None:
    table = pa.Table.from_pylist([
        {"signal": "SP1", "program_code": "HUCK", "date": dt.date(2026, 12, 5), "weekday": 5,
         "available_time": 30, "predicted_audience": None, "history_size": 0},
        {"signal": "SP1", "program_code": "HUCK", "date": dt.date(2026, 12, 6), "weekday": 6,
         "available_time": 0, "predicted_audience": 0.0, "history_size": 4},
    ], schema=FORECAST.arrow_schema)
    blob = encode_slots(table)
    head = pb.GetProgramSlotsResponse(run_date={"year": 2026, "month": 11, "day": 30}).SerializeToString()
    answer = pb.GetProgramSlotsResponse.FromString(blob.ranges(*map(_array, ([0], [2]))).message(head))
    assert answer.run_date.day == 30 and len(answer.slots) == 2
    first, second = answer.slots
    assert not first.HasField("predicted_audience") and first.weekday == 6  # SATURDAY
    assert second.HasField("predicted_audience") and second.predicted_audience == 0.0
    assert second.available_seconds == 0 and second.history_size == 4


def _array(values: list[int]):  # noqa: ANN202
    import numpy as np

    return np.array(values, dtype=np.int64)


@given(program=st.sampled_from(["A", "B", "C", "Z"]), signal=st.sampled_from([None, "S0", "S1", "S9"]),
       start=st.dates(dt.date(2026, 11, 25), dt.date(2027, 1, 10)), days=st.integers(0, 40))
def test_few_slots_is_the_vectorised_selection(program: str, signal: str | None, start: dt.date,
                                               days: int) -> None:
    query = SlotFilter(start, start + dt.timedelta(days=days), signal, program)
    for snapshot in SNAPSHOTS:
        assert (snapshot.few_slots(query).message(b"")
                == snapshot.encoded(snapshot.select(query)).message(b""))


def _snapshot(max_cells: int) -> Snapshot:
    rows = [
        {"signal": f"S{s}", "program_code": p, "date": dt.date(2026, 12, 1) + dt.timedelta(days=d),
         "weekday": (dt.date(2026, 12, 1) + dt.timedelta(days=d)).weekday(), "available_time": 10 + d,
         "predicted_audience": None if d % 5 == 0 else float(d), "history_size": d % 5}
        for s in range(3) for p in "ABC" for d in range(0, 31, 1 + s) if (s, p) != (2, "B")
    ]
    table = pa.Table.from_pylist(rows, schema=FORECAST.arrow_schema)
    record = RunRecord(dt.date(2026, 11, 30), "published", "d", 0, 0, len(rows), 0,
                       published_at=dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))
    return Snapshot(record, table, dt.datetime.now(dt.UTC), max_day_index_cells=max_cells)


SNAPSHOTS: list[Snapshot] = []


def setup_module() -> None:
    SNAPSHOTS[:] = [_snapshot(Snapshot.MAX_DAY_INDEX_CELLS), _snapshot(0)]  # day index, binary search
