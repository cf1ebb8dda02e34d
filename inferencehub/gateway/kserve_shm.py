"""The shared-memory extensions of KServe v2 / Triton, over HTTP and gRPC.

System shared memory is served (regions live in the DataPlane's RegionRegistry, per API key).
CUDA shared memory is not: status lists nothing, unregister succeeds, register is refused with
a clear error, as Triton's CPU-only builds answer.
"""

from __future__ import annotations

from typing import Any

import grpc
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferencehub.errors import InvalidRequestError
from inferencehub.gateway.dataplane import DataPlane
from inferencehub.gateway.http_common import JSONResponse, read_body
from inferencehub.gateway.shared_memory import Region, RegionNotFoundError
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.protocol.status import map_errors_to_grpc

CUDA_REFUSED = (
    "CUDA shared memory is not supported by this server; use system shared memory "
    "(/v2/systemsharedmemory) for zero-network local clients"
)
# A register body is a few short fields; anything bigger is not one.
MAX_REGISTER_BODY = 4096


def _region_json(region: Region) -> dict[str, Any]:
    return {
        "name": region.name,
        "key": region.key,
        "offset": region.offset,
        "byte_size": region.byte_size,
    }


def _register_fields(body: bytes, name: str) -> tuple[str, int, int]:
    try:
        fields = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict):
        raise InvalidRequestError(
            f"register body for region '{name[:128]}' must be JSON: "
            '{"key": "/shm_key", "offset": 0, "byte_size": N}'
        )
    key, offset, size = fields.get("key"), fields.get("offset", 0), fields.get("byte_size")
    if not isinstance(key, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in (offset, size)
    ):
        raise InvalidRequestError(
            "register needs 'key' (a string), 'byte_size' and optionally 'offset' (integers)"
        )
    return key, offset, size


def _cuda_not_found(name: str) -> RegionNotFoundError:
    return RegionNotFoundError(f"CUDA shared-memory region '{name[:128]}' is not registered")


def shared_memory_routes(dataplane: DataPlane) -> list[Route]:
    async def system_status(request: Request) -> Response:
        regions = dataplane.region_status(request.path_params.get("name", ""))
        return JSONResponse([_region_json(r) for r in regions])

    async def system_register(request: Request) -> Response:
        name = request.path_params["name"]
        key, offset, size = _register_fields(await read_body(request, MAX_REGISTER_BODY), name)
        dataplane.register_region(name, key, offset, size)
        return JSONResponse({})

    async def system_unregister(request: Request) -> Response:
        dataplane.unregister_region(request.path_params.get("name", ""))
        return JSONResponse({})

    async def cuda_status(request: Request) -> Response:
        name = request.path_params.get("name", "")
        if name:
            raise _cuda_not_found(name)
        return JSONResponse([])

    async def cuda_register(request: Request) -> Response:
        raise InvalidRequestError(CUDA_REFUSED)

    async def cuda_unregister(request: Request) -> Response:
        return JSONResponse({})

    system, cuda = "/v2/systemsharedmemory", "/v2/cudasharedmemory"
    return [
        Route(f"{system}/status", system_status, methods=["GET"]),
        Route(f"{system}/region/{{name}}/status", system_status, methods=["GET"]),
        Route(f"{system}/region/{{name}}/register", system_register, methods=["POST"]),
        Route(f"{system}/unregister", system_unregister, methods=["POST"]),
        Route(f"{system}/region/{{name}}/unregister", system_unregister, methods=["POST"]),
        Route(f"{cuda}/status", cuda_status, methods=["GET"]),
        Route(f"{cuda}/region/{{name}}/status", cuda_status, methods=["GET"]),
        Route(f"{cuda}/region/{{name}}/register", cuda_register, methods=["POST"]),
        Route(f"{cuda}/unregister", cuda_unregister, methods=["POST"]),
        Route(f"{cuda}/region/{{name}}/unregister", cuda_unregister, methods=["POST"]),
    ]


class SharedMemoryRpcs:
    """The gRPC side, mixed into the KServe servicer."""

    _dataplane: DataPlane

    @map_errors_to_grpc
    async def SystemSharedMemoryStatus(
        self, request: v2.SystemSharedMemoryStatusRequest, context: grpc.aio.ServicerContext
    ) -> v2.SystemSharedMemoryStatusResponse:
        reply = v2.SystemSharedMemoryStatusResponse()
        for region in self._dataplane.region_status(request.name):
            reply.regions[region.name].CopyFrom(
                v2.SystemSharedMemoryStatusResponse.RegionStatus(**_region_json(region))
            )
        return reply

    @map_errors_to_grpc
    async def SystemSharedMemoryRegister(
        self, request: v2.SystemSharedMemoryRegisterRequest, context: grpc.aio.ServicerContext
    ) -> v2.SystemSharedMemoryRegisterResponse:
        self._dataplane.register_region(
            request.name, request.key, request.offset, request.byte_size
        )
        return v2.SystemSharedMemoryRegisterResponse()

    @map_errors_to_grpc
    async def SystemSharedMemoryUnregister(
        self, request: v2.SystemSharedMemoryUnregisterRequest, context: grpc.aio.ServicerContext
    ) -> v2.SystemSharedMemoryUnregisterResponse:
        self._dataplane.unregister_region(request.name)
        return v2.SystemSharedMemoryUnregisterResponse()

    @map_errors_to_grpc
    async def CudaSharedMemoryStatus(
        self, request: v2.CudaSharedMemoryStatusRequest, context: grpc.aio.ServicerContext
    ) -> v2.CudaSharedMemoryStatusResponse:
        if request.name:
            raise _cuda_not_found(request.name)
        return v2.CudaSharedMemoryStatusResponse()

    @map_errors_to_grpc
    async def CudaSharedMemoryRegister(
        self, request: v2.CudaSharedMemoryRegisterRequest, context: grpc.aio.ServicerContext
    ) -> v2.CudaSharedMemoryRegisterResponse:
        raise InvalidRequestError(CUDA_REFUSED)

    @map_errors_to_grpc
    async def CudaSharedMemoryUnregister(
        self, request: v2.CudaSharedMemoryUnregisterRequest, context: grpc.aio.ServicerContext
    ) -> v2.CudaSharedMemoryUnregisterResponse:
        return v2.CudaSharedMemoryUnregisterResponse()
