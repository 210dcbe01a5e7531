"""decode_token takes anything a client sends: it answers a token of ours or None, never
raises (a raise is INTERNAL / HTTP 500 with a traceback). Page tokens are checksummed, not
signed, so the fuzz covers valid checksums around absurd fields as well as garbage."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
import struct

import pytest

from airtime.warehouse import SlotFilter
from grpc_server.queries import RunId, decode_token, encode_token

_TOKEN = struct.Struct(">BIqQ8s")  # the format queries.encode_token writes
WHERE = SlotFilter(dt.date(2026, 12, 1), dt.date(2026, 12, 28))


def _with_checksum(body: bytes) -> str:
    check = hashlib.blake2b(body, digest_size=8, person=b"airtime-page").digest()
    return base64.urlsafe_b64encode(body + check).decode().rstrip("=")


def _valid_or_none(token: str) -> None:
    decoded = decode_token(token)
    if decoded is None:
        return
    run, offset, digest = decoded
    assert isinstance(run.run_date, dt.date) and dt.date.min <= run.run_date <= dt.date.max
    assert isinstance(run.version, int) and isinstance(offset, int) and offset >= 0
    assert isinstance(digest, bytes) and len(digest) == 8


def test_a_token_round_trips_and_the_format_is_the_one_tested_here() -> None:
    run = RunId(dt.date(2026, 11, 30), 1_764_000_000_123_456)
    token = encode_token(run, 1000, WHERE)
    assert decode_token(token)[:2] == (run, 1000)
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == _TOKEN.size + 8


@pytest.mark.parametrize("ordinal", [0, 1, dt.date.max.toordinal(), dt.date.max.toordinal() + 1,
                                     2**31 - 1, 2**31, 2**32 - 1])
def test_ordinals_at_and_past_the_edges_decode_or_are_refused(ordinal: int) -> None:
    decoded = decode_token(_with_checksum(_TOKEN.pack(1, ordinal, 0, 0, b"\0" * 8)))
    assert (decoded is not None) == (1 <= ordinal <= dt.date.max.toordinal())


def test_valid_checksums_around_random_fields_never_raise() -> None:
    rng = random.Random(20)
    edges = {"B": [0, 1, 2, 255], "I": [0, 1, 2**31 - 1, 2**31, 2**32 - 1],
             "q": [-(2**63), -1, 0, 2**63 - 1], "Q": [0, 2**63, 2**64 - 1]}
    for _ in range(3000):
        def pick(kind: str, bits: int, signed: bool = False) -> int:
            if rng.random() < 0.3:
                return rng.choice(edges[kind])
            low = -(2 ** (bits - 1)) if signed else 0
            return rng.randint(low, low + 2**bits - 1)

        body = _TOKEN.pack(pick("B", 8), pick("I", 32), pick("q", 64, signed=True), pick("Q", 64),
                           rng.randbytes(8))
        _valid_or_none(_with_checksum(body))


def test_random_bytes_and_text_never_raise() -> None:
    rng = random.Random(2031)
    alphabet = "ABCxyz019-_+/=%.\x00\x1b\u00e9\u2028\U0001f600 "
    for _ in range(3000):
        raw = rng.randbytes(rng.randint(0, 80))
        _valid_or_none(base64.urlsafe_b64encode(raw).decode())
        _valid_or_none(base64.urlsafe_b64encode(raw).decode().rstrip("="))
        _valid_or_none("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
    _valid_or_none("A" * 1_000_000)  # a large page_token: refused by its length, quickly
