"""The one place where errors become gRPC status codes.

Request errors are raised as airtime's own (the query rules' InvalidQueryError,
UnknownProgramError, RunNotPublishedError, ...) or the service's below, anywhere in the
service; the servicer hands them to `abort`, which turns them into a `google.rpc.Status`
with details where the client can act on them (BadRequest field violations, ResourceInfo of
what is missing). The HTTP/JSON gateway answers the same Status under Google's HTTP mapping.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from airtime.errors import AirtimeError, NotPublishedError, RunNotPublishedError, StorageError, UnknownProgramError
from airtime.query_rules import InvalidQueryError

log = logging.getLogger(__name__)

# google.rpc.ResourceInfo.resource_type of each thing a request can name that is not there:
# a client tells an unknown program or signal from a run that is not published by it
RUN_RESOURCE = "airtime.v1.Run"
CODE_RESOURCES = {"program_code": "airtime.v1.Program", "signal": "airtime.v1.Signal"}


class ServiceError(AirtimeError):
    """An error the service answers with a specific status code."""

    code = code_pb2.INTERNAL


class PageExpiredError(ServiceError):
    """A page token names a run this server no longer holds: restart from page one."""

    code = code_pb2.FAILED_PRECONDITION


def _status(code: int, text: str, *details: message.Message) -> status_pb2.Status:
    packed = []
    for detail in details:
        packed.append(any_pb2.Any())
        packed[-1].Pack(detail)
    return status_pb2.Status(code=code, message=text, details=packed)


def status_of(exc: BaseException) -> status_pb2.Status:
    text = str(exc)
    if isinstance(exc, InvalidQueryError):
        return _status(code_pb2.INVALID_ARGUMENT, text, error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=why)
            for field, why in exc.violations]))
    if isinstance(exc, PageExpiredError):
        return _status(exc.code, text, error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(type="RUN_NOT_SERVED", subject="page_token",
                                                            description=text)]))
    if isinstance(exc, UnknownProgramError):
        # NOT_FOUND: the request names codes that are not there (google/rpc/code.proto), one
        # ResourceInfo for each, the message naming the closest the run has
        return _status(code_pb2.NOT_FOUND, text, *(
            error_details_pb2.ResourceInfo(resource_type=CODE_RESOURCES[field], resource_name=code,
                                           description=text) for field, code in exc.missing))
    if isinstance(exc, RunNotPublishedError):
        # NOT_FOUND rather than FAILED_PRECONDITION: nothing the client can change makes that
        # run exist; it names a resource that is not there
        return _status(code_pb2.NOT_FOUND, text, error_details_pb2.ResourceInfo(
            resource_type=RUN_RESOURCE, resource_name=str(exc.run_date), description=text))
    if isinstance(exc, ServiceError):
        return _status(exc.code, text)
    if isinstance(exc, NotPublishedError):
        return _status(code_pb2.UNAVAILABLE, text)
    if isinstance(exc, StorageError):
        # the warehouse is unreachable or locked: transient, the client may retry
        return _status(code_pb2.UNAVAILABLE, text)
    return _status(code_pb2.INTERNAL, "internal error")


def abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    status = status_of(exc)
    if status.code == code_pb2.INTERNAL:
        # unexpected: the client only learns "internal", the log keeps the traceback
        log.error("unexpected error answering a request", exc_info=exc)
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


async def abort_async(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    """`abort` for the grpc.aio server."""
    status = status_of(exc)
    if status.code == code_pb2.INTERNAL:
        log.error("unexpected error answering a request", exc_info=exc)
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def missing_resources(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (resource_type, resource_name) of each ResourceInfo detail in a client-side error."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            info = error_details_pb2.ResourceInfo()
            detail.Unpack(info)
            found.append((info.resource_type, info.resource_name))
    return found


def bad_request_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of a BadRequest detail in a client-side error."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.extend((v.field, v.description) for v in bad.field_violations)
    return found
