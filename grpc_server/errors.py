"""The one place where errors become gRPC status codes.

Request errors are raised as the exceptions below (or airtime's own), anywhere in the
service; the servicer hands them to `abort`, which turns them into a `google.rpc.Status`
with details where the client can act on them (BadRequest field violations).
"""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from airtime.errors import AirtimeError, NotPublishedError, StorageError

log = logging.getLogger(__name__)


class ServiceError(AirtimeError):
    """An error the service answers with a specific status code."""

    code = code_pb2.INTERNAL


class BadRequestError(ServiceError):
    """The request breaks one or more rules; each (field, description) is a violation."""

    code = code_pb2.INVALID_ARGUMENT

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{field}: {why}" for field, why in violations))
        self.violations = violations


class NotFoundError(ServiceError):
    code = code_pb2.NOT_FOUND
    # google.rpc.ResourceInfo.resource_type of the detail: which kind of thing is missing
    resource_type = "airtime.v1.Program"

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.resource_name = name


class RunNotFoundError(NotFoundError):
    """The request names a run date with no published run (never run, failed, demoted)."""

    resource_type = "airtime.v1.Run"


class PageExpiredError(ServiceError):
    """A page token names a run this server no longer holds: restart from page one."""

    code = code_pb2.FAILED_PRECONDITION


def status_of(exc: BaseException) -> status_pb2.Status:
    if isinstance(exc, BadRequestError):
        detail = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=why)
                for field, why in exc.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(detail)
        return status_pb2.Status(code=exc.code, message=str(exc), details=[packed])
    if isinstance(exc, PageExpiredError):
        detail = error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="RUN_NOT_SERVED", subject="page_token", description=str(exc))])
        packed = any_pb2.Any()
        packed.Pack(detail)
        return status_pb2.Status(code=exc.code, message=str(exc), details=[packed])
    if isinstance(exc, NotFoundError):
        # which kind of resource is missing: a client tells an unknown program from a run
        # that is not published (grpc_server/client.py)
        detail = error_details_pb2.ResourceInfo(resource_type=exc.resource_type,
                                                resource_name=exc.resource_name, description=str(exc))
        packed = any_pb2.Any()
        packed.Pack(detail)
        return status_pb2.Status(code=exc.code, message=str(exc), details=[packed])
    if isinstance(exc, ServiceError):
        return status_pb2.Status(code=exc.code, message=str(exc))
    if isinstance(exc, NotPublishedError):
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(exc))
    if isinstance(exc, StorageError):
        # the warehouse is unreachable or locked: transient, the client may retry
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(exc))
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


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


def missing_resource_type(error: grpc.RpcError) -> str | None:
    """The resource_type of a ResourceInfo detail in a client-side error, if any."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            info = error_details_pb2.ResourceInfo()
            detail.Unpack(info)
            return info.resource_type
    return None


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
