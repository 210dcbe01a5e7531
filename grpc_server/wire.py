"""Slots in their protobuf wire encoding, encoded once per run, vectorised.

Every answer of the service is mostly a `repeated Slot slots = 1` field. Building one proto
object per row per request cost ~1 us a row and capped the service far below what gRPC
can carry, so the snapshot encodes each row once, when a run is loaded, into one buffer:
row i is `data[offsets[i]:offsets[i + 1]]`, already framed as an element of field 1
(`0x0A`, length, Slot bytes). An answer is then the concatenation of the rows' ranges plus
its few other fields, serialized by protobuf (a message is the concatenation of its fields,
in any order: https://protobuf.dev/programming-guides/encoding/#last-one-wins).

The bytes are exactly what protobuf's own serializer writes for the same Slot (fields in
number order, proto3 zero values left out, `predicted_audience` present iff not null):
tests/unit/test_grpc_wire.py compares them byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airtime.schema import FORECAST
from airtime.v1 import forecast_service_pb2 as pb

# the field number of `repeated Slot slots` in every response that carries slots
_SLOTS_FIELD = 1
for _message in (pb.ListSlotsResponse, pb.StreamSlotsResponse, pb.GetProgramSlotsResponse):
    assert _message.DESCRIPTOR.fields_by_name["slots"].number == _SLOTS_FIELD, _message
_SLOT = {f.name: f.number for f in pb.Slot.DESCRIPTOR.fields}
_DATE = {"year": 1, "month": 2, "day": 3}  # google.type.Date

_VARINT, _FIXED64, _LEN = 0, 1, 2
_CHUNK_ROWS = 16_384  # rows encoded at a time: bounds the temporary matrices (~10 MB)

Piece = tuple[np.ndarray, np.ndarray]  # (rows x width uint8 matrix, bytes used per row)


def _tag(field: int, wire_type: int) -> int:
    return field << 3 | wire_type  # every tag here is < 128: one byte


def _varints(values: np.ndarray) -> Piece:
    """Base-128 varints of int64 values (negatives as 10 bytes, as protobuf writes int32)."""
    v = values.astype(np.int64).view(np.uint64)
    n = np.ones(len(v), dtype=np.int64)
    for k in range(1, 10):
        n += v >= np.uint64(1 << (7 * k))
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = ((v[:, None] >> shifts[None, :]) & np.uint64(0x7F)).astype(np.uint8)
    groups |= np.where(np.arange(10)[None, :] < (n[:, None] - 1), 0x80, 0).astype(np.uint8)
    return groups, n


def _with_tag(tag: int, piece: Piece, present: np.ndarray | None = None) -> Piece:
    matrix, used = piece
    out = np.empty((len(used), matrix.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = tag
    out[:, 1:] = matrix
    used = used + 1
    if present is not None:
        used = np.where(present, used, 0)
    return out, used


def _varint_field(field: int, values: np.ndarray) -> Piece:
    """A proto3 scalar: left out when zero."""
    return _with_tag(_tag(field, _VARINT), _varints(values), values != 0)


def _width(pieces: list[Piece]) -> np.ndarray:
    return sum(used for _matrix, used in pieces)  # type: ignore[return-value]


def _strings(field: int, names: list[str]) -> Piece:
    """tag, length, UTF-8 of each name (a proto3 string: left out when empty)."""
    encoded = [name.encode() for name in names]
    heads = [bytes([_tag(field, _LEN)]) + _varint_bytes(len(e)) + e if e else b"" for e in encoded]
    width = max((len(h) for h in heads), default=0)
    matrix = np.zeros((len(heads), max(width, 1)), dtype=np.uint8)
    for i, head in enumerate(heads):
        matrix[i, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    return matrix, np.array([len(h) for h in heads], dtype=np.int64)


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _pack(pieces: list[Piece]) -> tuple[bytes, np.ndarray]:
    """Each row's pieces, in order, without their unused bytes: (bytes, bytes per row)."""
    cells = np.hstack([matrix for matrix, _used in pieces])
    keep = np.hstack([np.arange(matrix.shape[1])[None, :] < used[:, None] for matrix, used in pieces])
    return cells[keep].tobytes(), _width(pieces)


@dataclass(frozen=True)
class SlotBlob:
    """Every row of a table, each one framed as an element of the `slots` field."""

    data: bytes
    offsets: np.ndarray  # int64, rows + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def ranges(self, starts: np.ndarray, ends: np.ndarray) -> EncodedSlots:
        """The rows starts[k] .. ends[k]-1 of every k, in order (no copy yet)."""
        view = memoryview(self.data)
        first, last = self.offsets[starts].tolist(), self.offsets[ends].tolist()
        parts = [view[a:b] for a, b in zip(first, last, strict=True)]
        return EncodedSlots(parts, int((ends - starts).sum()))


@dataclass(frozen=True)
class EncodedSlots:
    """Some slots, as wire-encoded pieces of a `slots` field: join them with the rest of
    the response (`message(head)`)."""

    parts: list
    count: int

    def __len__(self) -> int:
        return self.count

    def message(self, head: bytes) -> bytes:
        return b"".join([head, *self.parts])


def encode_slots(table: pa.Table) -> SlotBlob:
    """Each row of a table of FORECAST's columns as one framed Slot, in the table's order."""
    rows = table.num_rows
    signal = pc.dictionary_encode(table.column("signal")).combine_chunks()
    program = pc.dictionary_encode(table.column("program_code")).combine_chunks()
    signals = _strings(_SLOT["signal"], signal.dictionary.to_pylist())
    programs = _strings(_SLOT["program_code"], program.dictionary.to_pylist())
    sig_idx = signal.indices.to_numpy()
    prog_idx = program.indices.to_numpy()
    days = table.column("date").cast(pa.int32()).to_numpy()
    weekday = table.column("weekday").to_numpy().astype(np.int64) + 1  # DayOfWeek: MONDAY = 1
    available = table.column("available_time").to_numpy().astype(np.int64)
    predicted = pc.fill_null(table.column("predicted_audience"), np.nan).to_numpy()
    predicted_set = table.column("predicted_audience").is_valid().to_numpy(zero_copy_only=False)
    history = table.column("history_size").to_numpy().astype(np.int64)

    chunks, sizes = [], []
    for lo in range(0, rows, _CHUNK_ROWS):
        part = slice(lo, min(lo + _CHUNK_ROWS, rows))
        si, pi = sig_idx[part], prog_idx[part]
        day = days[part].astype("datetime64[D]")
        month_start = day.astype("datetime64[M]")
        year = day.astype("datetime64[Y]").astype(np.int64) + 1970
        month = month_start.astype(np.int64) % 12 + 1
        dom = (day - month_start).astype(np.int64) + 1
        date_fields = [_varint_field(_DATE["year"], year), _varint_field(_DATE["month"], month),
                       _varint_field(_DATE["day"], dom)]
        date_len = _width(date_fields)
        value = np.ascontiguousarray(predicted[part], dtype="<f8").view(np.uint8).reshape(-1, 8)
        body = [
            (signals[0][si], signals[1][si]),
            (programs[0][pi], programs[1][pi]),
            # a Date message is always present, even 1970-01-01's would be (it is set)
            _with_tag(_tag(_SLOT["date"], _LEN), _varints(date_len)),
            *date_fields,
            _varint_field(_SLOT["weekday"], weekday[part]),
            _varint_field(_SLOT["available_seconds"], available[part]),
            _with_tag(_tag(_SLOT["predicted_audience"], _FIXED64), (value, np.full(len(value), 8)),
                      predicted_set[part]),
            _varint_field(_SLOT["history_size"], history[part]),
        ]
        frame = _with_tag(_tag(_SLOTS_FIELD, _LEN), _varints(_width(body)))
        data, size = _pack([frame, *body])
        chunks.append(data)
        sizes.append(size)
    offsets = np.zeros(rows + 1, dtype=np.int64)
    if rows:
        np.cumsum(np.concatenate(sizes), out=offsets[1:])
    return SlotBlob(b"".join(chunks), offsets)


def encode_columns(table: pa.Table) -> EncodedSlots:
    """All rows of a (small) table, for answers read from the warehouse per request."""
    blob = encode_slots(table.select(FORECAST.names))
    return EncodedSlots([blob.data], len(blob))
