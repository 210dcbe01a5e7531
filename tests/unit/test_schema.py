"""The schema (airtime/schema.py) is the one declaration of every table: the DuckDB DDL,
the Arrow and BigQuery schemas, the checksum and the proto's Slot all agree with it."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from google.protobuf.descriptor import FieldDescriptor

from airtime import checksum
from airtime.bigquery_schema import TABLE_DEFINITIONS, staging_schema
from airtime.duckdb_warehouse import SCHEMA
from airtime.schema import DATA_TABLES, FORECAST, TABLES, ForecastRow
from airtime.v1 import forecast_service_pb2 as pb
from grpc_server.convert import RENAMED, SLOT_FIELDS, add_slots, slot_row
from grpc_server.snapshot import SlotColumns

# the proto type each column kind may travel as
PROTO_TYPES = {
    "string": {FieldDescriptor.TYPE_STRING},
    "date": {FieldDescriptor.TYPE_MESSAGE},  # google.type.Date
    "float64": {FieldDescriptor.TYPE_DOUBLE},
    "int8": {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_ENUM},  # weekday: google.type.DayOfWeek
    "int32": {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64},
}


def test_every_slot_field_is_a_forecast_column_and_every_column_a_slot_field() -> None:
    proto = [f.name for f in pb.Slot.DESCRIPTOR.fields]
    assert sorted(proto) == sorted(SLOT_FIELDS)
    assert set(RENAMED) <= set(FORECAST.names)


@pytest.mark.parametrize("column", FORECAST.columns, ids=lambda c: c.name)
def test_each_slot_field_has_the_columns_type_and_nullability(column) -> None:  # noqa: ANN001
    field = pb.Slot.DESCRIPTOR.fields_by_name[RENAMED.get(column.name, column.name)]
    assert field.type in PROTO_TYPES[column.kind]
    # a nullable column needs presence on the wire (proto3 `optional`); others must not
    assert field.has_presence == (column.nullable or field.type == FieldDescriptor.TYPE_MESSAGE)


def test_a_row_survives_the_trip_through_the_proto() -> None:
    rows = [ForecastRow("SP1", "HUCK", dt.date(2026, 12, 7), 0, 30, 1234.5, 4),
            ForecastRow("RJ", "X_1", dt.date(2026, 12, 13), 6, 0, None, 0)]
    response = pb.ListSlotsResponse()
    add_slots(response.slots, SlotColumns(tuple(list(c) for c in zip(*[
        [getattr(r, n) for n in FORECAST.names] for r in rows], strict=True))))
    assert response.slots[0].weekday == 1  # google.type.DayOfWeek.MONDAY
    assert not response.slots[1].HasField("predicted_audience")
    assert [slot_row(s) for s in response.slots] == rows


def test_duckdb_tables_have_the_declared_columns_types_and_nullability() -> None:
    con = duckdb.connect()
    con.execute(SCHEMA)
    for table in TABLES:
        found = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name = $t ORDER BY ordinal_position", {"t": table.name}).fetchall()
        assert found == [(c.name, c.duckdb_type.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"),
                          # a primary key's columns are NOT NULL whatever their declaration
                          "YES" if c.nullable and c.name not in table.primary_key else "NO")
                         for c in table.warehouse_columns]


def test_bigquery_tables_have_the_declared_columns_and_modes() -> None:
    by_name = {d.name: d for d in TABLE_DEFINITIONS}
    assert set(by_name) == {t.name for t in TABLES}
    for table in TABLES:
        fields = by_name[table.name].schema
        assert [(f.name, f.mode) for f in fields] == [
            (c.name, "NULLABLE" if c.nullable else "REQUIRED") for c in table.warehouse_columns]
    assert [f.name for f in staging_schema("forecast")] == FORECAST.names


@pytest.mark.parametrize("key", DATA_TABLES)
def test_the_checksum_row_string_covers_every_column_in_order(key: str) -> None:
    assert [name for name, _ in checksum.row_fields(key)] == DATA_TABLES[key].names  # type: ignore[arg-type]


def test_forecast_rows_are_typed_by_the_schema() -> None:
    assert [f for f in ForecastRow.__dataclass_fields__] == FORECAST.names
    assert FORECAST.arrow_schema.names == FORECAST.names
    assert [f.type for f in FORECAST.arrow_schema] == [c.arrow_type for c in FORECAST.columns]
