"""POST /v1/repository/import: a signed bundle (or a bare .onnx) streamed to the worker.

The gateway never holds the upload: the body is cut into chunks and forwarded as it arrives;
the worker spools, verifies and installs it (worker/importer.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferencehub.gateway.dataplane import DataPlane
from inferencehub.gateway.http_common import JSONResponse
from inferencehub.protocol.json_codec import import_reply_to_json
from inferencehub.v1 import inference_pb2 as pb

CHUNK_BYTES = 1 << 20  # per gRPC message to the worker: few messages, far below the size cap
TRUE = ("1", "true", "yes")


async def rechunk(
    pieces: AsyncIterator[bytes], first: pb.ImportChunk
) -> AsyncIterator[pb.ImportChunk]:
    """The upload as ImportChunks of CHUNK_BYTES; `first` carries the options. The worker
    enforces the size limit on what arrives (a declared Content-Length is checked here)."""
    buffer = bytearray()
    async for piece in pieces:
        buffer += piece
        while len(buffer) >= CHUNK_BYTES:
            first.data = bytes(buffer[:CHUNK_BYTES])
            del buffer[:CHUNK_BYTES]
            yield first
            first = pb.ImportChunk()
    first.data = bytes(buffer)
    yield first


def import_routes(dataplane: DataPlane, max_bundle_bytes: int) -> list[Route]:
    async def import_model(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bundle_bytes:
            raise HTTPException(
                413, f"the upload is {declared} bytes; the limit is {max_bundle_bytes}"
            )
        options = pb.ImportChunk(
            replace=request.query_params.get("replace", "").lower() in TRUE,
            onnx_model=request.query_params.get("onnx_model", ""),
        )
        chunks = rechunk(request.stream(), options)
        reply = await dataplane.import_model(chunks)
        return JSONResponse(import_reply_to_json(reply))

    return [Route("/v1/repository/import", import_model, methods=["POST"])]
