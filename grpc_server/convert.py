"""Plain values to proto messages (and back, for the client)."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from grpc_server.snapshot import SlotColumns


def to_date(value: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def from_date(msg: date_pb2.Date) -> dt.date:
    return dt.date(msg.year, msg.month, msg.day)


def to_timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(dt.UTC))
    return stamp


def add_slots(repeated, slots: SlotColumns) -> None:  # noqa: ANN001 - RepeatedCompositeFieldContainer[Slot]
    """Append slots to a repeated Slot field; the hot loop of every answer."""
    add = repeated.add
    for signal, program, date, weekday, available, predicted, history in zip(
        slots.signal, slots.program_code, slots.date, slots.weekday, slots.available_time,
        slots.predicted_audience, slots.history_size,
    ):
        # google.type.DayOfWeek counts MONDAY = 1; ours counts Monday = 0
        slot = add(signal=signal, program_code=program, weekday=weekday + 1,
                   available_seconds=available, predicted_audience=predicted,
                   history_size=history)
        msg = slot.date
        msg.year, msg.month, msg.day = date.year, date.month, date.day
