"""Every error code maps to exactly one HTTP status and one gRPC status."""

from __future__ import annotations

import grpc
import pytest

from inferencehub.errors import ERRORS_BY_CODE, ErrorCode, error_for
from inferencehub.protocol.status import GRPC_STATUS, HTTP_STATUS


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_maps_to_http_grpc_and_a_class(code: ErrorCode) -> None:
    assert 400 <= HTTP_STATUS[code] < 600
    assert isinstance(GRPC_STATUS[code], grpc.StatusCode)
    error = error_for(code, "m")
    assert error.code is code
    assert error.message == "m"
    assert type(error) is ERRORS_BY_CODE[code]


def test_client_errors_are_4xx_and_server_errors_5xx() -> None:
    assert HTTP_STATUS[ErrorCode.NOT_FOUND] == 404
    assert HTTP_STATUS[ErrorCode.INVALID_ARGUMENT] == 400
    assert HTTP_STATUS[ErrorCode.UNAVAILABLE] == 503
