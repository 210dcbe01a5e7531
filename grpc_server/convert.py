"""Plain values to proto messages and back: the forecast's columns as the proto's Slot.

Slot keeps each forecast column's name and value except where the proto says it its own
way: AIP names (`available_seconds`), google.type values (`Date`, `DayOfWeek` counting
MONDAY = 1 where ours count Monday = 0). tests/unit/test_schema.py fails when Slot and
the schema (airtime/schema.py) disagree.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from airtime.schema import FORECAST, ForecastRow
from airtime.v1 import forecast_service_pb2 as pb
from grpc_server.snapshot import SlotColumns

# forecast column -> Slot field, where the names differ
RENAMED = {"available_time": "available_seconds"}
SLOT_FIELDS = tuple(RENAMED.get(name, name) for name in FORECAST.names)
_DATE = FORECAST.names.index("date")
_WEEKDAY = FORECAST.names.index("weekday")


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
    columns = list(slots.columns)
    columns[_WEEKDAY] = [day + 1 for day in columns[_WEEKDAY]]  # DayOfWeek: MONDAY = 1
    dates = columns[_DATE]
    columns[_DATE] = [None] * len(dates)  # set field by field below: no Date message per row
    add = repeated.add
    for values, date in zip(zip(*columns, strict=True), dates, strict=True):
        msg = add(**dict(zip(SLOT_FIELDS, values, strict=True))).date
        msg.year, msg.month, msg.day = date.year, date.month, date.day


def slot_row(msg: pb.Slot) -> ForecastRow:
    values = [getattr(msg, field) for field in SLOT_FIELDS]
    values[_DATE] = from_date(msg.date)
    values[_WEEKDAY] = msg.weekday - 1
    values[FORECAST.names.index("predicted_audience")] = (
        msg.predicted_audience if msg.HasField("predicted_audience") else None)
    return ForecastRow(*values)
