"""ForecastService: validate, ask the backend, convert. Nothing else lives here."""

from __future__ import annotations

import grpc

from airtime.v1 import forecast_service_pb2 as pb
from airtime.v1 import forecast_service_pb2_grpc as pb_grpc
from grpc_server import convert, errors, queries
from grpc_server.backend import ForecastBackend, ServedRun

STREAM_CHUNK_SLOTS = 1_000


class ForecastServicer(pb_grpc.ForecastServiceServicer):
    def __init__(self, backend: ForecastBackend, limits: queries.Limits,
                 stream_chunk: int = STREAM_CHUNK_SLOTS) -> None:
        self._backend = backend
        self._limits = limits
        self._stream_chunk = stream_chunk

    def ListSlots(self, request: pb.ListSlotsRequest, context: grpc.ServicerContext) -> pb.ListSlotsResponse:
        try:
            query, page = queries.list_request(request, self._limits)
            result = self._backend.list_slots(query, page)
        except Exception as exc:  # noqa: BLE001 - errors.abort decides the status
            errors.abort(context, exc)
        token = ""
        if result.next_offset is not None:
            token = queries.encode_token(result.run.id, result.next_offset, query)
        response = pb.ListSlotsResponse(
            next_page_token=token,
            run_date=convert.to_date(result.run.id.run_date),
            total_size=result.total,
        )
        convert.add_slots(response.slots, result.slots)
        return response

    def StreamSlots(self, request: pb.StreamSlotsRequest, context: grpc.ServicerContext):  # noqa: ANN201
        try:
            query = queries.period_query(request, self._limits)
            run, chunks = self._backend.stream_slots(query, self._stream_chunk)
        except Exception as exc:  # noqa: BLE001
            errors.abort(context, exc)
        run_date = convert.to_date(run.id.run_date)
        sent = False
        for chunk in chunks:
            if not context.is_active():  # cancelled or past its deadline: stop producing
                return
            response = pb.StreamSlotsResponse(run_date=run_date)
            convert.add_slots(response.slots, chunk)
            sent = True
            yield response
        if not sent:  # an empty answer still says which run it comes from
            yield pb.StreamSlotsResponse(run_date=run_date)

    def GetProgramSlots(self, request: pb.GetProgramSlotsRequest,
                        context: grpc.ServicerContext) -> pb.GetProgramSlotsResponse:
        try:
            query = queries.program_query(request, self._limits)
            run, slots = self._backend.program_slots(query)
        except Exception as exc:  # noqa: BLE001
            errors.abort(context, exc)
        response = pb.GetProgramSlotsResponse(run_date=convert.to_date(run.id.run_date))
        convert.add_slots(response.slots, slots)
        return response

    def GetFreshness(self, request: pb.GetFreshnessRequest,
                     context: grpc.ServicerContext) -> pb.GetFreshnessResponse:
        try:
            run = self._backend.served()
        except Exception as exc:  # noqa: BLE001
            errors.abort(context, exc)
        return pb.GetFreshnessResponse(run=run_message(run), load_time=convert.to_timestamp(run.loaded_at))


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
