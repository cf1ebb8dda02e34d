"""The one error hierarchy of InferenceHub; mapped to HTTP and gRPC only at the edges."""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorCode(enum.Enum):
    """Canonical gRPC codes we use; protocol/status.py maps each to HTTP and gRPC."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    INTERNAL = "internal"


class HubError(Exception):
    """Base class for every error InferenceHub raises on purpose; `message` is client-safe."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(HubError):
    """The request does not match the model's signature or the protocol."""

    code = ErrorCode.INVALID_ARGUMENT


class ModelNotFoundError(HubError):
    """No loaded model matches the requested name and version."""

    code = ErrorCode.NOT_FOUND


class ModelNotReadyError(HubError):
    """The model version exists but failed to load."""

    code = ErrorCode.FAILED_PRECONDITION


class WorkerUnavailableError(HubError):
    """The worker is restarting, overloaded or unreachable."""

    code = ErrorCode.UNAVAILABLE


class DeadlineExceededError(HubError):
    """The request ran out of time."""

    code = ErrorCode.DEADLINE_EXCEEDED


class InternalError(HubError):
    """Something failed that the client cannot fix; details stay in the server log."""

    code = ErrorCode.INTERNAL


class PolicyChangedError(HubError):
    """A compare-and-set of a routing policy lost the race (the canary controller retries)."""

    code = ErrorCode.FAILED_PRECONDITION


class ConflictError(HubError):
    """The request collides with the repository's state (a version that exists, a model being
    reloaded); nothing was changed."""

    code = ErrorCode.FAILED_PRECONDITION


class ConfigError(HubError):
    """Settings, a config file or a model.toml are invalid."""

    code = ErrorCode.INVALID_ARGUMENT


class OverloadedError(HubError):
    """A queue or limit is full; retry later."""

    code = ErrorCode.RESOURCE_EXHAUSTED


class UnauthenticatedError(HubError):
    """The request carries no valid credentials."""

    code = ErrorCode.UNAUTHENTICATED


class PermissionDeniedError(HubError):
    """The credentials do not allow this request."""

    code = ErrorCode.PERMISSION_DENIED


def first_line(exc: BaseException) -> str:
    """An exception's first line, short enough for a status field or a log line (ONNX
    Runtime's messages run to pages)."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


ERRORS_BY_CODE: dict[ErrorCode, type[HubError]] = {
    ErrorCode.INVALID_ARGUMENT: InvalidRequestError,
    ErrorCode.NOT_FOUND: ModelNotFoundError,
    ErrorCode.FAILED_PRECONDITION: ModelNotReadyError,
    ErrorCode.UNAVAILABLE: WorkerUnavailableError,
    ErrorCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    ErrorCode.RESOURCE_EXHAUSTED: OverloadedError,
    ErrorCode.UNAUTHENTICATED: UnauthenticatedError,
    ErrorCode.PERMISSION_DENIED: PermissionDeniedError,
    ErrorCode.INTERNAL: InternalError,
}


def error_for(code: ErrorCode, message: str) -> HubError:
    """Rebuild a HubError from a code that crossed a process boundary."""
    return ERRORS_BY_CODE[code](message)
