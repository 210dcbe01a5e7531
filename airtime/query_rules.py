"""The rules of a forecast query, declared once.

The local query (`airtime query`), the command line's `--server` and the service (gRPC and
HTTP/JSON, grpc_server/queries.py and backend.py) check a query with these functions, so a
rule answers the same on every path:
- a date range ends on or after its start and spans at most `max_range_days` days;
- a period names both ends; a program query names a date, or a start and an end, or
  neither (every slot of the program);
- a code is 1-32 of A-Z a-z 0-9 _ - (the pattern deliveries are validated with);
- a well-formed code the run does not have is an unknown program or signal.
The first three are usage errors (InvalidQueryError: exit 2, INVALID_ARGUMENT, HTTP 400), each
naming the request field, as the proto names it, at fault. The last is UnknownProgramError
(exit 7, NOT_FOUND, HTTP 404), naming the run and the closest codes the run does have.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re

from airtime.errors import ConfigError, UnknownProgramError
from airtime.run_codes import CODE_FIELDS, KnownCodes
from airtime.schema import CODE_PATTERN
from airtime.warehouse import SlotFilter

CODE = re.compile(CODE_PATTERN)
# what a code's field is called in a message
_NOUNS = {"signal": "signal", "program_code": "program"}
# a code not close to any of the run's: the run's codes are named when they are this few
_FEW_CODES = 12


class InvalidQueryError(ConfigError):
    """A query breaks one or more rules; each (field, description) is a violation."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {why}" for field, why in violations))
        self.violations = violations


class Violations:
    """The rules one query breaks, gathered so that all are reported at once. A field keeps
    its first violation: a date that does not parse is not also "required"."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, field: str, why: str) -> None:
        if all(field != seen for seen, _ in self.found):
            self.found.append((field, why))

    def raise_any(self) -> None:
        if self.found:
            raise InvalidQueryError(self.found)


def check_code(value: str | None, field: str, errors: Violations) -> str | None:
    """The code of a field, None when not given (or malformed, with a violation)."""
    if not value:
        return None
    if not CODE.fullmatch(value):
        errors.add(field, f"malformed code {value[:40]!r}: expected 1-32 of A-Z a-z 0-9 _ -")
        return None
    return value


def check_range(start: dt.date | None, end: dt.date | None, max_days: int | None, errors: Violations) -> None:
    """end on or after start, and at most max_days days in all (None: not checked here,
    as on the command line's --server, where the server applies its own maximum)."""
    if start is None or end is None:
        return
    days = (end - start).days + 1
    if end < start:
        errors.add("end_date", f"{end} is before start_date {start}")
    elif max_days is not None and days > max_days:
        errors.add("end_date", f"range of {days} days is longer than the maximum of {max_days}")


def period_query(start: dt.date | None, end: dt.date | None, signal: str | None = None,
                 program_code: str | None = None, *, max_days: int | None,
                 errors: Violations | None = None) -> SlotFilter:
    """The filter of a period query (slots dated start..end, inclusive). With `errors` the
    violations are added to it for the caller to raise; without, they raise here."""
    found = errors if errors is not None else Violations()
    for field, value in (("start_date", start), ("end_date", end)):
        if value is None:
            found.add(field, "required (YYYY-MM-DD)")
    check_range(start, end, max_days, found)
    where = SlotFilter(start, end, check_code(signal, "signal", found), check_code(program_code, "program_code", found))
    if errors is None:
        found.raise_any()
    return where


def program_query(program_code: str | None, *, signal: str | None = None, date: dt.date | None = None,
                  start: dt.date | None = None, end: dt.date | None = None, max_days: int | None,
                  errors: Violations | None = None) -> SlotFilter:
    """The filter of a program query: on one date, from start to end, or (neither) every
    slot of the program, an open range. `errors` as period_query's."""
    found = errors if errors is not None else Violations()
    if not program_code:
        found.add("program_code", "required")
    program = check_code(program_code, "program_code", found)
    if date is not None:
        for field, value in (("start_date", start), ("end_date", end)):
            if value is not None:
                found.add(field, "give date, or start_date and end_date, not both")
        start = end = date
    elif start is not None or end is not None:
        for field, value, other in (("start_date", start, "end_date"), ("end_date", end, "start_date")):
            if value is None:
                found.add(field, f"required with {other} (YYYY-MM-DD)")
        check_range(start, end, max_days, found)
    where = SlotFilter(start, end, check_code(signal, "signal", found), program)
    if errors is None:
        found.raise_any()
    return where


def check_known(where: SlotFilter, known: KnownCodes, *, answered: int) -> None:
    """UnknownProgramError when the query names a signal or program its run does not have.
    A pair of known codes with no slot in the dates (or none together) is an empty answer,
    not an error. `answered`: the rows the query found; one row proves every code of the
    filter known, so a query with an answer costs no look-up."""
    if answered:
        return
    missing = tuple((field, code) for field in CODE_FIELDS
                    if (code := getattr(where, field)) and not known.has(field, code))
    if missing:
        raise unknown_codes(missing, known)


def unknown_codes(missing: tuple[tuple[str, str], ...], known: KnownCodes) -> UnknownProgramError:
    """The error naming each (field, code) the run lacks, with the run's closest codes."""
    codes = known.codes()
    parts = []
    for field, code in missing:
        noun, have = _NOUNS[field], codes.codes(field)
        close = closest(code, have)
        if close:
            hint = f"did you mean {' or '.join(close)}?"
        elif len(have) <= _FEW_CODES:
            hint = f"its {noun}s are {', '.join(have) or 'none'}"
        else:
            hint = f"`airtime query codes --run {known.run_date}` lists its {len(have)} {noun}s"
        parts.append(f"{noun} {code!r} is not in the published run {known.run_date}; {hint}")
    return UnknownProgramError("; ".join(parts), missing)


def closest(code: str, have: list[str], n: int = 3) -> list[str]:
    """The run's codes most like `code`, best first; case does not count (codes do keep it:
    'huck' is told about HUCK, not given its slots)."""
    by_upper: dict[str, list[str]] = {}
    for name in have:
        by_upper.setdefault(name.upper(), []).append(name)
    found = difflib.get_close_matches(code.upper(), list(by_upper), n=n, cutoff=0.6)
    return [name for upper in found for name in by_upper[upper]][:n]
