"""Requests, validated: proto messages in, typed queries out, and the page tokens.

Everything a client can get wrong in a request is checked here and reported at once, as
BadRequest field violations, so the backends only ever see well-formed queries. The query
rules themselves (dates, ranges, codes) are airtime/query_rules.py's, the ones the command
line's local query keeps too; what is the service's own is reading the request's text (ISO
dates) and paging.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import struct
from dataclasses import dataclass, replace

from airtime import query_rules
from airtime.query_rules import Violations
from airtime.warehouse import SlotFilter

# request dates are ISO 8601 calendar dates, exactly YYYY-MM-DD (the proto says why they are
# strings). date.fromisoformat alone would also take 20200801 and 2020-W31-6.
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class RunId:
    """Identifies one published run; the version changes when a date is re-published."""

    run_date: dt.date
    version: int  # publish time in epoch microseconds


def filter_digest(where: SlotFilter) -> bytes:
    """Fingerprint of the filters: a page token only continues the query it came from."""
    text = f"{where.start}|{where.end}|{where.signal or ''}|{where.program_code or ''}"
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


@dataclass(frozen=True)
class PageRequest:
    offset: int
    size: int
    run: RunId | None  # None on the first page: answer from the current (or pinned) run
    run_date: dt.date | None = None  # the published run the request names; None: the latest


@dataclass(frozen=True)
class Limits:
    max_range_days: int
    default_page_size: int
    max_page_size: int


def _date(value: str, field: str, errors: Violations) -> dt.date | None:
    """The date of an ISO YYYY-MM-DD string field; None when empty (not given) or not a date
    (with a violation)."""
    if not value:
        return None
    if not ISO_DATE.fullmatch(value):
        errors.add(field, f"{value[:40]!r} is not a date written YYYY-MM-DD")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.add(field, f"{value!r} is not a calendar date")
        return None


def _run_date(request, errors: Violations) -> dt.date | None:
    """The published run a request pins (`run_date`), or None for the latest."""
    return _date(request.run_date, "run_date", errors)


def period_query(request, limits: Limits, errors: Violations) -> SlotFilter:
    """SlotFilter of a ListSlotsRequest or StreamSlotsRequest."""
    return query_rules.period_query(
        _date(request.start_date, "start_date", errors), _date(request.end_date, "end_date", errors),
        request.signal, request.program_code, max_days=limits.max_range_days, errors=errors)


def stream_request(request, limits: Limits) -> tuple[SlotFilter, dt.date | None]:
    """SlotFilter and pinned run date (None: the latest) of a StreamSlotsRequest."""
    errors = Violations()
    query = period_query(request, limits, errors)
    run_date = _run_date(request, errors)
    errors.raise_any()
    return query, run_date


def program_query(request, limits: Limits, errors: Violations) -> SlotFilter:
    """SlotFilter of a GetProgramSlotsRequest (program code required; a date, a range, or
    neither for all of the program's slots)."""
    where = query_rules.program_query(
        request.program_code, signal=request.signal, date=_date(request.date, "date", errors),
        start=_date(request.start_date, "start_date", errors), end=_date(request.end_date, "end_date", errors),
        max_days=limits.max_range_days, errors=errors)
    if where.start is None and where.end is None:
        # neither: every slot of the program in the run; the snapshot's index takes closed ranges
        where = replace(where, start=dt.date.min, end=dt.date.max)
    return where


def program_request(request, limits: Limits) -> tuple[SlotFilter, dt.date | None]:
    """SlotFilter and pinned run date (None: the latest) of a GetProgramSlotsRequest."""
    errors = Violations()
    query = program_query(request, limits, errors)
    run_date = _run_date(request, errors)
    errors.raise_any()
    return query, run_date


def freshness_request(request) -> dt.date | None:
    """The run date a GetFreshnessRequest asks about (None: the run being served)."""
    errors = Violations()
    run_date = _run_date(request, errors)
    errors.raise_any()
    return run_date


def list_request(request, limits: Limits) -> tuple[SlotFilter, PageRequest]:
    """SlotFilter and page of a ListSlotsRequest."""
    errors = Violations()
    query = period_query(request, limits, errors)
    run_date = _run_date(request, errors)
    size = request.page_size
    if size < 0:
        errors.add("page_size", f"{size} is negative")
    elif size > limits.max_page_size:
        errors.add("page_size", f"{size} is above the maximum of {limits.max_page_size}")
    size = size or limits.default_page_size
    offset, run = 0, None
    if request.page_token:
        decoded = decode_token(request.page_token)
        if decoded is None:
            errors.add("page_token", "not a page token of this service")
        else:
            run, offset, digest = decoded
            if not errors.found and digest != filter_digest(query):
                errors.add("page_token", "belongs to a request with other filters")
            elif run_date is not None and run.run_date != run_date:
                errors.add("page_token", f"belongs to run {run.run_date}, not to run_date {run_date}")
    errors.raise_any()
    return query, PageRequest(offset=offset, size=size, run=run, run_date=run_date)


# page tokens: version, run date ordinal, run version, offset, query digest, check.
# Not secret: the check only tells a token of ours from garbage, so any replica can
# continue any other replica's pagination.
_TOKEN = struct.Struct(">BIqQ8s")
_TOKEN_VERSION = 1


def encode_token(run: RunId, offset: int, query: SlotFilter) -> str:
    body = _TOKEN.pack(_TOKEN_VERSION, run.run_date.toordinal(), run.version, offset, filter_digest(query))
    check = hashlib.blake2b(body, digest_size=8, person=b"airtime-page").digest()
    return base64.urlsafe_b64encode(body + check).decode().rstrip("=")


_MAX_ORDINAL = dt.date.max.toordinal()


def decode_token(token: str) -> tuple[RunId, int, bytes] | None:
    """The run, offset and filter digest of a page token; None for anything that is not a
    token this service wrote, whatever its bytes: the checksum only tells ours from garbage,
    so a forged token with a valid one can hold any field (an ordinal past 9999-12-31, past
    2**31: date.fromordinal raises OverflowError there, not ValueError)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _TOKEN.size + 8:
        return None
    body, check = raw[: _TOKEN.size], raw[_TOKEN.size :]
    if hashlib.blake2b(body, digest_size=8, person=b"airtime-page").digest() != check:
        return None
    version, ordinal, run_version, offset, digest = _TOKEN.unpack(body)
    if version != _TOKEN_VERSION or not 1 <= ordinal <= _MAX_ORDINAL:
        return None
    return RunId(dt.date.fromordinal(ordinal), run_version), offset, digest
