"""The public gRPC API: inferencehub.v1 over the DataPlane, plus standard health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from inferencehub import __version__
from inferencehub.errors import HubError
from inferencehub.gateway.auth import Authenticator, AuthInterceptor
from inferencehub.gateway.dataplane import DataPlane
from inferencehub.gateway.grpc_common import routing_key
from inferencehub.gateway.kserve_grpc import KServeServicer
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from inferencehub.protocol.status import map_errors_to_grpc, status_number
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc


class GatewayServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Three lines per RPC: the DataPlane does the work."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    @map_errors_to_grpc
    async def Predict(
        self, request: pb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictResponse:
        timeout, key = context.time_remaining(), routing_key(context)
        target = await self._dataplane.admit(
            request.model_name, request.version, "grpc", timeout, key
        )
        request.version = target.version  # served by the version admitted, not a second pick
        return await self._dataplane.predict(request, timeout, key, "grpc")

    @map_errors_to_grpc
    async def PredictMany(
        self, request: pb.PredictManyRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictManyResponse:
        timeout = context.time_remaining()
        results = await asyncio.gather(
            *(
                self._dataplane.predict(r, timeout, routing_key(context), "grpc")
                for r in request.requests
            ),
            return_exceptions=True,
        )
        return pb.PredictManyResponse(results=[_result(r) for r in results])

    @map_errors_to_grpc
    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        versions = await self._dataplane.statistics(request.name, request.version)
        return pb.ModelStatisticsResponse(versions=versions)

    @map_errors_to_grpc
    async def LoadModel(
        self, request: pb.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._dataplane.load_model(request.name)

    @map_errors_to_grpc
    async def ImportModel(
        self, request_iterator: AsyncIterator[pb.ImportChunk], context: grpc.aio.ServicerContext
    ) -> pb.ImportReply:
        return await self._dataplane.import_model(request_iterator)

    @map_errors_to_grpc
    async def UnloadModel(
        self, request: pb.UnloadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._dataplane.unload_model(request.name)

    @map_errors_to_grpc
    async def SetRouting(
        self, request: pb.SetRoutingRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._dataplane.set_routing(request)

    @map_errors_to_grpc
    async def Traffic(
        self, request: pb.TrafficRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrafficResponse:
        return pb.TrafficResponse(versions=await self._dataplane.traffic(request.name))

    @map_errors_to_grpc
    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=await self._dataplane.list_models())

    @map_errors_to_grpc
    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._dataplane.model(request.name)

    @map_errors_to_grpc
    async def ServerInfo(
        self, request: pb.ServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerInfoResponse:
        return pb.ServerInfoResponse(
            name="inferencehub",
            version=__version__,
            live=True,
            ready=await self._dataplane.ready(),
        )


def _result(outcome: pb.PredictResponse | BaseException) -> pb.PredictResult:
    if isinstance(outcome, pb.PredictResponse):
        return pb.PredictResult(response=outcome)
    if isinstance(outcome, HubError):
        return pb.PredictResult(
            error=pb.PredictError(code=status_number(outcome.code), message=outcome.message)
        )
    raise outcome  # unexpected: map_errors_to_grpc logs it and answers INTERNAL


def build_grpc_server(
    dataplane: DataPlane,
    health_servicer: health.aio.HealthServicer,
    max_message_bytes: int,
    authenticator: Authenticator | None = None,
) -> grpc.aio.Server:
    """A grpc.aio server with our services; the caller binds ports."""
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(authenticator)] if authenticator is not None else [],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # NOTE: gRPC sets SO_REUSEPORT by default, so a busy port would bind silently.
            ("grpc.so_reuseport", 0),
        ],
    )
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(GatewayServicer(dataplane), server)
    grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        KServeServicer(dataplane), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # Reflection lets grpcurl list and call every service without the .proto files.
    reflection.enable_server_reflection(
        (
            pb.DESCRIPTOR.services_by_name["InferenceService"].full_name,
            v2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return server
