"""Requests, validated: proto messages in, typed queries out, and the page tokens.

Everything a client can get wrong is checked here and reported at once, as BadRequest
field violations, so the backends only ever see well-formed queries.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import struct
from dataclasses import dataclass

from airtime import validation
from airtime.warehouse import SlotFilter
from grpc_server.errors import BadRequestError

# signal and program codes as the broadcaster writes them (SP1, HUCK, _999, DC60)
CODE_PATTERN = re.compile(validation.CODE_PATTERN)
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


class _Violations:
    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, why: str) -> None:
        self.found.append((field, why))

    def raise_any(self) -> None:
        if self.found:
            raise BadRequestError(self.found)


def _date(value: str, field: str, errors: _Violations, *, required: bool = True) -> dt.date | None:
    """The date of an ISO YYYY-MM-DD string field; None (and a violation if required) when empty."""
    if not value:
        if required:
            errors.add(field, "required (YYYY-MM-DD)")
        return None
    if not ISO_DATE.fullmatch(value):
        errors.add(field, f"{value[:40]!r} is not a date written YYYY-MM-DD")
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        errors.add(field, f"{value!r} is not a calendar date")
        return None


def _run_date(request, errors: _Violations) -> dt.date | None:
    """The published run a request pins (`run_date`), or None for the latest."""
    return _date(request.run_date, "run_date", errors, required=False)


def _code(value: str, field: str, errors: _Violations) -> str | None:
    if not value:
        return None
    if not CODE_PATTERN.fullmatch(value):
        errors.add(field, f"malformed code {value[:40]!r}: expected 1-32 of A-Z a-z 0-9 _ -")
        return None
    return value


def _range(start: dt.date | None, end: dt.date | None, prefix: str, limits: Limits,
           errors: _Violations) -> None:
    if start is None or end is None:
        return
    if end < start:
        errors.add(f"{prefix}end_date", f"{end} is before start_date {start}")
    elif (end - start).days + 1 > limits.max_range_days:
        errors.add(
            f"{prefix}end_date",
            f"range of {(end - start).days + 1} days is longer than the maximum of"
            f" {limits.max_range_days}",
        )


def period_query(request, limits: Limits, errors: _Violations | None = None) -> SlotFilter:
    """SlotFilter of a ListSlotsRequest or StreamSlotsRequest."""
    own = errors is None
    errors = errors or _Violations()
    start = _date(request.start_date, "start_date", errors)
    end = _date(request.end_date, "end_date", errors)
    _range(start, end, "", limits, errors)
    signal = _code(request.signal, "signal", errors)
    program = _code(request.program_code, "program_code", errors)
    if own:
        errors.raise_any()
    return SlotFilter(start, end, signal, program)  # type: ignore[arg-type]


def stream_request(request, limits: Limits) -> tuple[SlotFilter, dt.date | None]:
    """SlotFilter and pinned run date (None: the latest) of a StreamSlotsRequest."""
    errors = _Violations()
    query = period_query(request, limits, errors)
    run_date = _run_date(request, errors)
    errors.raise_any()
    return query, run_date


def program_query(request, limits: Limits, errors: _Violations | None = None) -> SlotFilter:
    """SlotFilter of a GetProgramSlotsRequest (program code required; a date, a range, or
    neither for all of the program's slots)."""
    own = errors is None
    errors = errors or _Violations()
    program = _code(request.program_code, "program_code", errors)
    if not request.program_code:
        errors.add("program_code", "required")
    signal = _code(request.signal, "signal", errors)
    start = end = None
    if request.date:
        start = end = _date(request.date, "date", errors)
        for other in ("start_date", "end_date"):
            if getattr(request, other):
                errors.add(other, "give date, or start_date and end_date, not both")
    elif request.start_date or request.end_date:
        start = _date(request.start_date, "start_date", errors)
        end = _date(request.end_date, "end_date", errors)
        _range(start, end, "", limits, errors)
    else:
        # neither: every slot of the program in the run (what `airtime query program` does locally)
        start, end = dt.date.min, dt.date.max
    if own:
        errors.raise_any()
    return SlotFilter(start, end, signal, program)  # type: ignore[arg-type]


def program_request(request, limits: Limits) -> tuple[SlotFilter, dt.date | None]:
    """SlotFilter and pinned run date (None: the latest) of a GetProgramSlotsRequest."""
    errors = _Violations()
    query = program_query(request, limits, errors)
    run_date = _run_date(request, errors)
    errors.raise_any()
    return query, run_date


def freshness_request(request) -> dt.date | None:
    """The run date a GetFreshnessRequest asks about (None: the run being served)."""
    errors = _Violations()
    run_date = _run_date(request, errors)
    errors.raise_any()
    return run_date


def list_request(request, limits: Limits) -> tuple[SlotFilter, PageRequest]:
    """SlotFilter and page of a ListSlotsRequest."""
    errors = _Violations()
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


def decode_token(token: str) -> tuple[RunId, int, bytes] | None:
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
    if version != _TOKEN_VERSION or ordinal < 1:
        return None
    try:
        run_date = dt.date.fromordinal(ordinal)
    except ValueError:
        return None
    return RunId(run_date, run_version), offset, digest
