"""The public KServe v2 gRPC API (inference.GRPCInferenceService), thin over the DataPlane."""

from __future__ import annotations

import grpc

from inferencehub.errors import HubError
from inferencehub.gateway.dataplane import DataPlane
from inferencehub.gateway.grpc_common import routing_key
from inferencehub.gateway.kserve_shm import SharedMemoryRpcs
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from inferencehub.protocol import kserve_codec as codec
from inferencehub.protocol.status import map_errors_to_grpc


class KServeServicer(SharedMemoryRpcs, grpc_predict_v2_pb2_grpc.GRPCInferenceServiceServicer):
    """Each RPC converts at the edge and calls the DataPlane, as the v1 servicer does."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    @map_errors_to_grpc
    async def ServerLive(
        self, request: v2.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> v2.ServerLiveResponse:
        return v2.ServerLiveResponse(live=True)

    @map_errors_to_grpc
    async def ServerReady(
        self, request: v2.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> v2.ServerReadyResponse:
        return v2.ServerReadyResponse(ready=await self._dataplane.ready())

    @map_errors_to_grpc
    async def ModelReady(
        self, request: v2.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> v2.ModelReadyResponse:
        try:
            await self._dataplane.resolve(request.name, request.version)
        except HubError:
            return v2.ModelReadyResponse(ready=False)
        return v2.ModelReadyResponse(ready=True)

    @map_errors_to_grpc
    async def ServerMetadata(
        self, request: v2.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> v2.ServerMetadataResponse:
        return v2.ServerMetadataResponse(**codec.server_metadata())

    @map_errors_to_grpc
    async def ModelMetadata(
        self, request: v2.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> v2.ModelMetadataResponse:
        model, version = await self._dataplane.model_version(request.name, request.version)
        return codec.model_metadata_to_grpc(codec.model_metadata(model, version))

    @map_errors_to_grpc
    async def ModelInfer(
        self, request: v2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> v2.ModelInferResponse:
        timeout, key = context.time_remaining(), routing_key(context)
        # The door: refused here, the payload is never turned into tensors.
        target = await self._dataplane.admit(
            request.model_name, request.model_version, "grpc", timeout, key
        )
        try:
            predict, payloads = codec.predict_request_from_grpc(request)
        except HubError as exc:
            self._dataplane.refused(request.model_name, "grpc", exc)
            raise
        predict.version = target.version  # served by the version admitted, not a second pick
        response = await self._dataplane.predict(predict, timeout, key, "grpc", payloads)
        return codec.infer_response_to_grpc(response, request.id)

    @map_errors_to_grpc
    async def ModelConfig(
        self, request: v2.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> v2.ModelConfigResponse:
        model, version = await self._dataplane.model_version(request.name, request.version)
        return codec.model_config_to_grpc(codec.model_config(model, version))

    @map_errors_to_grpc
    async def ModelStatistics(
        self, request: v2.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> v2.ModelStatisticsResponse:
        versions = await self._dataplane.statistics(request.name, request.version)
        return codec.statistics_to_grpc(codec.statistics(versions))

    @map_errors_to_grpc
    async def RepositoryIndex(
        self, request: v2.RepositoryIndexRequest, context: grpc.aio.ServicerContext
    ) -> v2.RepositoryIndexResponse:
        index = codec.repository_index(await self._dataplane.list_models(), request.ready)
        return v2.RepositoryIndexResponse(
            models=[v2.RepositoryIndexResponse.ModelIndex(**entry) for entry in index]
        )

    @map_errors_to_grpc
    async def RepositoryModelLoad(
        self, request: v2.RepositoryModelLoadRequest, context: grpc.aio.ServicerContext
    ) -> v2.RepositoryModelLoadResponse:
        await self._dataplane.load_model(request.model_name)
        return v2.RepositoryModelLoadResponse()

    @map_errors_to_grpc
    async def RepositoryModelUnload(
        self, request: v2.RepositoryModelUnloadRequest, context: grpc.aio.ServicerContext
    ) -> v2.RepositoryModelUnloadResponse:
        await self._dataplane.unload_model(request.model_name)
        return v2.RepositoryModelUnloadResponse()
