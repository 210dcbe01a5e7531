"""A small typed client of ForecastService, answering with plain dataclasses.

    with ForecastClient("localhost:50051", token=...) as client:
        for slot in client.iter_slots(date(2026, 12, 1), date(2026, 12, 7)): ...

`query_rows` gives the CLI the same rows as the local query (airtime.query.run_query).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from airtime.errors import (
    AirtimeError,
    ConfigError,
    NotPublishedError,
    RunNotPublishedError,
    StorageError,
    UnknownProgramError,
)
from airtime.query_rules import InvalidQueryError
from airtime.schema import ForecastRow
from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from airtime.warehouse import SlotFilter
from grpc_server.convert import from_date, slot_row
from grpc_server.errors import CODE_RESOURCES, RUN_RESOURCE, bad_request_violations, missing_resources


@dataclass(frozen=True)
class SlotPage:
    slots: list[ForecastRow]
    next_page_token: str
    run_date: dt.date
    total_size: int


@dataclass(frozen=True)
class Freshness:
    run_date: dt.date
    published_at: dt.datetime | None
    loaded_at: dt.datetime | None
    forecast_rows: int
    availability_rows: int
    audience_rows: int
    quarantined_rows: int


def _iso(value: dt.date | None) -> str:
    """A request date as the proto takes it: YYYY-MM-DD, or empty for none."""
    return value.isoformat() if value is not None else ""


_CODE_FIELDS = {kind: field for field, kind in CODE_RESOURCES.items()}


def _error(exc: grpc.RpcError) -> AirtimeError:
    """The airtime error (and so the CLI exit code) of a failed call: the very error, and
    message, the local query raises for the same request."""
    code, details = exc.code(), exc.details() or ""  # type: ignore[attr-defined]
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidQueryError(bad_request_violations(exc) or [("request", details)])
    if code == grpc.StatusCode.NOT_FOUND:
        missing = missing_resources(exc)
        runs = [name for kind, name in missing if kind == RUN_RESOURCE]
        if runs:
            return RunNotPublishedError(details, runs[0])
        return UnknownProgramError(details, tuple((_CODE_FIELDS[kind], name) for kind, name in missing
                                                  if kind in _CODE_FIELDS))
    if code == grpc.StatusCode.UNAVAILABLE and "published" in details:
        return NotPublishedError(details)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.FAILED_PRECONDITION):
        return ConfigError(f"{code.name}: {details}")
    return StorageError(f"query service: {code.name}: {details}")


class ForecastClient:
    def __init__(self, target: str, token: str | None = None, tls: bool | bytes | Path = False,
                 timeout: float | None = 30.0) -> None:
        """tls: False for plaintext, True for the system roots, or the PEM (bytes or a
        file) of the CA that signed the server's certificate."""
        if tls is False:
            self._channel = grpc.insecure_channel(target)
        else:
            roots = None if tls is True else (tls.read_bytes() if isinstance(tls, Path) else tls)
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots))
        self._stub = pb_grpc.ForecastServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    def __enter__(self) -> ForecastClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request):  # noqa: ANN001, ANN202
        try:
            return method(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from exc

    def list_slots(self, start: dt.date, end: dt.date, *, signal: str | None = None,
                   program_code: str | None = None, page_size: int = 0,
                   page_token: str = "", run_date: dt.date | None = None) -> SlotPage:
        request = pb.ListSlotsRequest(
            start_date=_iso(start), end_date=_iso(end), signal=signal or "",
            program_code=program_code or "", page_size=page_size, page_token=page_token,
            run_date=_iso(run_date),
        )
        response = self._call(self._stub.ListSlots, request)
        return SlotPage([slot_row(s) for s in response.slots], response.next_page_token,
                        from_date(response.run_date), response.total_size)

    def iter_slots(self, start: dt.date, end: dt.date, **filters) -> Iterator[ForecastRow]:  # noqa: ANN003
        """Every slot of the period, page after page (all from the run of the first page)."""
        token = ""
        while True:
            page = self.list_slots(start, end, page_token=token, **filters)
            yield from page.slots
            token = page.next_page_token
            if not token:
                return

    def stream_slots(self, start: dt.date, end: dt.date, *, signal: str | None = None,
                     program_code: str | None = None, run_date: dt.date | None = None
                     ) -> Iterator[ForecastRow]:
        request = pb.StreamSlotsRequest(start_date=_iso(start), end_date=_iso(end), signal=signal or "",
                                        program_code=program_code or "", run_date=_iso(run_date))
        try:
            for response in self._stub.StreamSlots(request, timeout=self._timeout,
                                                   metadata=self._metadata):
                yield from (slot_row(s) for s in response.slots)
        except grpc.RpcError as exc:
            raise _error(exc) from exc

    def read_period(self, start: dt.date, end: dt.date, *, signal: str | None = None,
                    program_code: str | None = None, run_date: dt.date | None = None
                    ) -> tuple[dt.date, list[ForecastRow]]:
        """(run date, every slot of the period), read with one stream."""
        request = pb.StreamSlotsRequest(start_date=_iso(start), end_date=_iso(end), signal=signal or "",
                                        program_code=program_code or "", run_date=_iso(run_date))
        run_date, rows = None, []
        try:
            for response in self._stub.StreamSlots(request, timeout=self._timeout,
                                                   metadata=self._metadata):
                run_date = from_date(response.run_date)
                rows.extend(slot_row(s) for s in response.slots)
        except grpc.RpcError as exc:
            raise _error(exc) from exc
        if run_date is None:
            raise StorageError("query service: the stream ended without naming its run")
        return run_date, rows

    def program_slots(self, program_code: str, date: dt.date | None = None, *,
                      start: dt.date | None = None, end: dt.date | None = None,
                      signal: str | None = None, run_date: dt.date | None = None
                      ) -> tuple[dt.date, list[ForecastRow]]:
        """(run date, slots) of a program on one date, or from start to end inclusive."""
        request = pb.GetProgramSlotsRequest(program_code=program_code, signal=signal or "",
                                            run_date=_iso(run_date))
        if date is not None:
            request.date = _iso(date)
        elif start is not None or end is not None:
            request.start_date, request.end_date = _iso(start or end), _iso(end or start)
        response = self._call(self._stub.GetProgramSlots, request)
        return from_date(response.run_date), [slot_row(s) for s in response.slots]

    def freshness(self, run_date: dt.date | None = None) -> Freshness:
        response = self._call(self._stub.GetFreshness, pb.GetFreshnessRequest(run_date=_iso(run_date)))
        run = response.run
        return Freshness(
            run_date=from_date(run.run_date),
            published_at=run.publish_time.ToDatetime(dt.UTC) if run.HasField("publish_time") else None,
            loaded_at=response.load_time.ToDatetime(dt.UTC) if response.HasField("load_time") else None,
            forecast_rows=run.forecast_rows,
            availability_rows=run.availability_rows,
            audience_rows=run.audience_rows,
            quarantined_rows=run.quarantined_rows,
        )


def query_rows(target: str, where: SlotFilter, *, program: bool = False, token: str | None = None,
               tls: bool | bytes | Path = False, timeout: float | None = 60.0,
               run_date: dt.date | None = None) -> tuple[dt.date, list[ForecastRow]]:
    """(run date, rows) of a period or program query (`program=True`) on the latest
    published run, or on the one of run_date: the rows the local query
    (airtime.query.run_query) gives, in the same order."""
    with ForecastClient(target, token=token, tls=tls, timeout=timeout) as client:
        if program:
            return client.program_slots(where.program_code or "", start=where.start, end=where.end,
                                        signal=where.signal, run_date=run_date)
        if where.start is None or where.end is None:
            raise ConfigError("a period query needs a start and an end date")
        return client.read_period(where.start, where.end, signal=where.signal,
                                  program_code=where.program_code, run_date=run_date)
