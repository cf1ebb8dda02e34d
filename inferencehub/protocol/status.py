"""The single mapping table: ErrorCode -> HTTP status and gRPC status, used at every edge."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import grpc

from inferencehub.errors import (
    DeadlineExceededError,
    ErrorCode,
    HubError,
    WorkerUnavailableError,
    error_for,
)

logger = logging.getLogger(__name__)

HTTP_STATUS: Final[Mapping[ErrorCode, int]] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}

# Refusals for load (429 / RESOURCE_EXHAUSTED) and for a worker that is away (503 /
# UNAVAILABLE) tell the client when to retry: HTTP `Retry-After` (seconds), gRPC trailing
# metadata `grpc-retry-pushback-ms` (what gRPC's own retry policy honours).
RETRY_AFTER_S: Final = 1
RETRY_CODES: Final = frozenset({ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.UNAVAILABLE})
PUSHBACK_KEY: Final = "grpc-retry-pushback-ms"


def retry_metadata(code: ErrorCode) -> tuple[tuple[str, str], ...]:
    """The trailing metadata of a gRPC error: a retry pushback for refusals, else none."""
    return ((PUSHBACK_KEY, str(RETRY_AFTER_S * 1000)),) if code in RETRY_CODES else ()


GRPC_STATUS: Final[Mapping[ErrorCode, grpc.StatusCode]] = {
    code: getattr(grpc.StatusCode, code.name) for code in ErrorCode
}
_CODE_BY_GRPC: Final[Mapping[grpc.StatusCode, ErrorCode]] = {
    status: code for code, status in GRPC_STATUS.items()
}

_STATUS_BY_NUMBER: Final[Mapping[int, grpc.StatusCode]] = {
    status.value[0]: status for status in grpc.StatusCode
}


def status_number(code: ErrorCode) -> int:
    """The numeric gRPC status of an error code, for errors carried inside a message."""
    return int(GRPC_STATUS[code].value[0])


def error_from_status(number: int, message: str) -> HubError:
    """The HubError for a numeric gRPC status carried inside a message."""
    status = _STATUS_BY_NUMBER.get(number, grpc.StatusCode.INTERNAL)
    return error_for(_CODE_BY_GRPC.get(status, ErrorCode.INTERNAL), message)


RpcMethod = TypeVar("RpcMethod", bound=Callable[..., Awaitable[Any]])


def error_from_rpc(error: grpc.aio.AioRpcError, peer: str) -> HubError:
    """Turn a failed call to another process back into the HubError it carried."""
    status = error.code()
    if status == grpc.StatusCode.UNAVAILABLE:
        return WorkerUnavailableError(f"{peer} is unavailable; retry shortly")
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceededError(f"{peer} did not answer before the deadline")
    if status == grpc.StatusCode.CANCELLED:
        return WorkerUnavailableError(f"the call to {peer} was cancelled")
    code = _CODE_BY_GRPC.get(status, ErrorCode.INTERNAL)
    return error_for(code, error.details() or f"{peer} failed ({status.name})")


def map_errors_to_grpc(rpc: RpcMethod) -> RpcMethod:
    """Turn HubErrors into gRPC statuses; hide everything else behind INTERNAL."""

    @functools.wraps(rpc)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await rpc(self, request, context)
        except HubError as exc:
            remaining = context.time_remaining()
            if exc.code is ErrorCode.DEADLINE_EXCEEDED and remaining is not None and remaining <= 0:
                # The call is over: gRPC answers DEADLINE_EXCEEDED itself, and a status sent
                # now only makes its core log an error.
                raise asyncio.CancelledError from None
            await context.abort(GRPC_STATUS[exc.code], exc.message, retry_metadata(exc.code))
        except Exception:
            logger.exception("unhandled error in %s", rpc.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

    return wrapper  # type: ignore[return-value]
