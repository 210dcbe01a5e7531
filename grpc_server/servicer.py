"""ForecastService on grpc.aio: validate, ask the backend, send. Nothing else lives here.

Answers are bytes: the slots come wire-encoded from the backend (wire.py) and the other
few fields are serialized by protobuf, so the methods are registered with a
pass-through response serializer (`add_to_server`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import TypeVar

import grpc

from airtime.v1 import forecast_service_pb2 as pb
from grpc_server import convert, errors, queries
from grpc_server.backend import ForecastBackend, ServedRun

log = logging.getLogger(__name__)

STREAM_CHUNK_SLOTS = 1_000
SERVICE = pb.DESCRIPTOR.services_by_name["ForecastService"]

T = TypeVar("T")


class ForecastServicer:
    def __init__(self, backend: ForecastBackend, limits: queries.Limits,
                 stream_chunk: int = STREAM_CHUNK_SLOTS, *, stream_idle_seconds: float = 30.0,
                 executor: concurrent.futures.Executor | None = None) -> None:
        self._backend = backend
        self._limits = limits
        self._stream_chunk = stream_chunk
        self._stream_idle = stream_idle_seconds
        # a backend answer that waits on I/O (the warehouse backend; a pinned run the
        # snapshot backend must look up or load) comes from these threads, one from memory
        # is answered inline (a few microseconds of CPU); None: the loop's default pool
        self._executor = executor

    async def _ask(self, inline: bool, fn: Callable[..., T], *args: object) -> T:
        if inline:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def ListSlots(self, request: pb.ListSlotsRequest, context: grpc.aio.ServicerContext) -> bytes:
        try:
            query, page = queries.list_request(request, self._limits)
            result = await self._ask(self._backend.inline(page.run, page.run_date),
                                     self._backend.list_slots, query, page)
        except Exception as exc:  # noqa: BLE001 - errors.abort_async decides the status
            await errors.abort_async(context, exc)
        token = ""
        if result.next_offset is not None:
            token = queries.encode_token(result.run.id, result.next_offset, query)
        head = pb.ListSlotsResponse(
            next_page_token=token,
            run_date=convert.to_date(result.run.id.run_date),
            total_size=result.total,
        )
        return result.slots.message(head.SerializeToString())

    async def StreamSlots(self, request: pb.StreamSlotsRequest, context: grpc.aio.ServicerContext) -> None:
        try:
            query, run_date = queries.stream_request(request, self._limits)
            run, chunks = await self._ask(self._backend.inline(None, run_date), self._backend.stream_slots,
                                          query, self._stream_chunk, run_date)
        except Exception as exc:  # noqa: BLE001
            await errors.abort_async(context, exc)
        head = pb.StreamSlotsResponse(run_date=convert.to_date(run.id.run_date)).SerializeToString()
        sent = False
        for chunk in chunks:
            await self._write(context, chunk.message(head))
            sent = True
        if not sent:  # an empty answer still says which run it comes from
            await self._write(context, head)

    async def _write(self, context: grpc.aio.ServicerContext, message: bytes) -> None:
        """Send one message; a reader that takes none for stream_idle seconds is dropped.
        Waiting costs the event loop nothing, but the call would hold its buffers and a
        place among the server's concurrent calls for as long as the client likes."""
        write = asyncio.ensure_future(context.write(message))
        try:
            done, _pending = await asyncio.wait((write,), timeout=self._stream_idle)
        except asyncio.CancelledError:  # the client left, or the drain ended the call
            _forget(write)
            raise
        if not done:
            # The status cannot overtake the data the client does not read (HTTP/2 trailers
            # queue behind it): the client gets DEADLINE_EXCEEDED when it reads again, or
            # loses the call with its connection (keepalive, max connection age + grace).
            # Meanwhile this call produces nothing more and holds no thread.
            _forget(write)
            log.info("dropped a stream whose client read nothing for %gs", self._stream_idle,
                     extra={"peer": context.peer()})
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                                f"the client read nothing for {self._stream_idle:g}s")
        write.result()

    async def GetProgramSlots(self, request: pb.GetProgramSlotsRequest,
                              context: grpc.aio.ServicerContext) -> bytes:
        try:
            query, run_date = queries.program_request(request, self._limits)
            run, slots = await self._ask(self._backend.inline(None, run_date), self._backend.program_slots,
                                         query, run_date)
        except Exception as exc:  # noqa: BLE001
            await errors.abort_async(context, exc)
        head = pb.GetProgramSlotsResponse(run_date=convert.to_date(run.id.run_date))
        return slots.message(head.SerializeToString())

    async def GetFreshness(self, request: pb.GetFreshnessRequest,
                           context: grpc.aio.ServicerContext) -> pb.GetFreshnessResponse:
        try:
            run_date = queries.freshness_request(request)
            run = await self._ask(self._backend.inline(None, run_date), self._backend.served, run_date)
        except Exception as exc:  # noqa: BLE001
            await errors.abort_async(context, exc)
        return pb.GetFreshnessResponse(run=run_message(run), load_time=convert.to_timestamp(run.loaded_at))


def _forget(write: asyncio.Future) -> None:
    """Cancel a write nobody will wait for, and take its outcome when it comes: a write
    to a call that is over fails in grpc's core (ExecuteBatchError), and an exception
    never retrieved is an asyncio ERROR traceback at garbage collection."""
    write.cancel()
    write.add_done_callback(lambda done: done.cancelled() or done.exception())


def _passthrough(message: bytes | object) -> bytes:
    return message if isinstance(message, bytes) else message.SerializeToString()  # type: ignore[attr-defined]


def add_to_server(servicer: ForecastServicer, server) -> None:  # noqa: ANN001 - grpc.aio.Server or interceptors.Registrar
    """Register the service's methods, answers already bytes (or messages)."""
    handlers = {}
    for method in SERVICE.methods:
        request = getattr(pb, method.input_type.name)
        factory = (grpc.unary_stream_rpc_method_handler if method.server_streaming
                   else grpc.unary_unary_rpc_method_handler)
        handlers[method.name] = factory(getattr(servicer, method.name),
                                        request_deserializer=request.FromString,
                                        response_serializer=_passthrough)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
    server.add_registered_method_handlers(SERVICE.full_name, handlers)  # as generated code does


def run_message(run: ServedRun) -> pb.Run:
    record = run.record
    return pb.Run(
        run_date=convert.to_date(record.run_date),
        publish_time=convert.to_timestamp(record.published_at),
        forecast_rows=record.forecast_rows,
        availability_rows=record.availability_rows,
        audience_rows=record.audience_rows,
        quarantined_rows=record.quarantined_rows,
    )
