"""The worker's side of inferencehub.v1, thin over the ModelRegistry."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from inferencehub import __version__
from inferencehub.protocol.status import map_errors_to_grpc
from inferencehub.protocol.validation import validate_predict
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from inferencehub.worker.registry import ModelRegistry

logger = logging.getLogger(__name__)


class WorkerServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Runs predictions; the gateway has validated already, but the worker trusts no caller."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self.ready = False

    @map_errors_to_grpc
    async def Predict(
        self, request: pb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictResponse:
        arrived_ns = time.perf_counter_ns()
        model = self._registry.get(request.model_name, request.version)
        validate_predict(request, model.info)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(
            self._registry.executor, model.predict, request, arrived_ns
        )
        return pb.PredictResponse(
            model_name=request.model_name,
            version=model.info.version,
            outputs=result.outputs,
            classifications=result.classifications,
            request_id=request.request_id,
            timing=result.timing,
        )

    @map_errors_to_grpc
    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(models=self._registry.list_models())

    @map_errors_to_grpc
    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return self._registry.model_info(request.name)

    @map_errors_to_grpc
    async def ServerInfo(
        self, request: pb.ServerInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerInfoResponse:
        return pb.ServerInfoResponse(
            name="inferencehub-worker", version=__version__, live=True, ready=self.ready
        )

    @map_errors_to_grpc
    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelStatisticsResponse:
        return pb.ModelStatisticsResponse(
            versions=self._registry.statistics(request.name, request.version)
        )

    @map_errors_to_grpc
    async def LoadModel(
        self, request: pb.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._registry.load_model(request.name)

    @map_errors_to_grpc
    async def UnloadModel(
        self, request: pb.UnloadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._registry.unload_model(request.name)
