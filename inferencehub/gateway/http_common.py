"""What both HTTP APIs share: orjson responses, bounded bodies, one error mapping."""

from __future__ import annotations

import logging
import zlib
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from inferencehub.errors import HubError
from inferencehub.protocol.status import HTTP_STATUS, RETRY_AFTER_S, RETRY_CODES

logger = logging.getLogger(__name__)

_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class JSONResponse(Response):
    """orjson: numpy output arrays are serialised without a Python list per element."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.code in RETRY_CODES else None
    return error_response(HTTP_STATUS[exc.code], exc.message, headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; see the server log")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, at most `limit` bytes (after gzip/deflate decoding, if any).

    Raises:
        HTTPException: 413 when too large, 415 for an unknown Content-Encoding, 400 when the
            compressed body is corrupt.
    """
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", *_DECODERS):
        raise HTTPException(
            415, f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body is {declared} bytes; the limit is {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding == "identity":
        return body
    # NOTE: bounded decompression: a small bomb must not expand past the limit in memory.
    decoder = zlib.decompressobj(_DECODERS[encoding])
    try:
        plain = decoder.decompress(body, limit + 1)
    except zlib.error:
        raise HTTPException(400, f"request body is not valid {encoding} data") from None
    if len(plain) > limit or decoder.unconsumed_tail:
        raise HTTPException(413, f"decoded request body exceeds the limit of {limit} bytes")
    return plain
