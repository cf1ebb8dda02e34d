"""The worker's side of inferencehub.v1, thin over the ModelRegistry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import grpc

from inferencehub import __version__
from inferencehub.errors import ErrorCode, HubError, WorkerUnavailableError
from inferencehub.logging import current_request_id
from inferencehub.protocol.status import map_errors_to_grpc, status_number
from inferencehub.protocol.tensors import tensor_from_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from inferencehub.worker.client_memory import region_or_contents, shaped_outputs
from inferencehub.worker.hop import QUIET_ERRORS
from inferencehub.worker.importer import ModelImporter
from inferencehub.worker.registry import ModelRegistry

logger = logging.getLogger(__name__)


class WorkerServicer(inference_pb2_grpc.InferenceServiceServicer):
    """Runs predictions; the gateway has validated already, but the worker trusts no caller."""

    def __init__(
        self,
        registry: ModelRegistry,
        hop_counts: Callable[[], pb.HopStatistics] | None = None,
        importer: ModelImporter | None = None,
    ) -> None:
        self._registry = registry
        self._importer = importer
        self._hop_counts = hop_counts
        self.ready = False

    @map_errors_to_grpc
    async def Predict(
        self, request: pb.PredictRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictResponse:
        limits = [t for t in (context.time_remaining(), request.timeout_s) if t]
        self._check_ready()
        return await self._predict(request, min(limits) if limits else None)

    @map_errors_to_grpc
    async def PredictMany(
        self, request: pb.PredictManyRequest, context: grpc.aio.ServicerContext
    ) -> pb.PredictManyResponse:
        self._check_ready()
        results = await asyncio.gather(*(self._result(r) for r in request.requests))
        return pb.PredictManyResponse(results=results)

    def _check_ready(self) -> None:
        """While models load, a listing would be partial: the gateway must keep what it knows
        (and answer 503) rather than learn that a model is missing."""
        if not self.ready:
            raise WorkerUnavailableError("the worker is still loading models; retry shortly")

    async def _result(self, request: pb.PredictRequest) -> pb.PredictResult:
        """One prediction of a PredictMany: its own deadline, its own error."""
        try:
            return pb.PredictResult(
                response=await self._predict(request, request.timeout_s or None)
            )
        except HubError as exc:
            error = pb.PredictError(code=status_number(exc.code), message=exc.message)
        except Exception:
            logger.exception("unhandled error in PredictMany (request %s)", request.request_id)
            error = pb.PredictError(
                code=status_number(ErrorCode.INTERNAL), message="internal error; see the log"
            )
        return pb.PredictResult(error=error)

    async def _predict(
        self, request: pb.PredictRequest, timeout_s: float | None
    ) -> pb.PredictResponse:
        arrived_ns = time.perf_counter_ns()
        current_request_id.set(request.request_id)
        try:
            scheduler = self._registry.get(request.model_name, request.version)
            payloads = [region_or_contents(tensor) for tensor in request.inputs]
            scheduler.model.signature.check(request, [len(p) for p in payloads])
            result = await scheduler.submit(request, timeout_s, arrived_ns, payloads)
            outputs = [
                shaped if isinstance(shaped, pb.Tensor) else tensor_from_numpy(name, shaped)
                for name, shaped in shaped_outputs(scheduler.model, request, result.outputs)
            ]
        except HubError as exc:
            log = logger.debug if exc.code in QUIET_ERRORS else logger.warning
            log(
                "predict %s version %s failed: %s", request.model_name, request.version, exc.message
            )
            raise
        logger.debug(
            "predict %s version %s: %.1f ms (batch of %d)",
            request.model_name,
            request.version,
            (time.perf_counter_ns() - arrived_ns) / 1e6,
            result.timing.batch_size,
        )
        return pb.PredictResponse(
            model_name=request.model_name,
            version=scheduler.model.info.version,
            outputs=outputs,
            classifications=result.classifications,
            request_id=request.request_id,
            timing=result.timing,
        )

    @map_errors_to_grpc
    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        self._check_ready()
        return pb.ListModelsResponse(models=self._registry.list_models())

    @map_errors_to_grpc
    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        self._check_ready()
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
        reply = pb.ModelStatisticsResponse(
            versions=self._registry.statistics(request.name, request.version)
        )
        if self._hop_counts is not None:
            reply.hop.CopyFrom(self._hop_counts())
        return reply

    @map_errors_to_grpc
    async def LoadModel(
        self, request: pb.LoadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._registry.load_model(request.name)

    @map_errors_to_grpc
    async def ImportModel(
        self, request_iterator: AsyncIterator[pb.ImportChunk], context: grpc.aio.ServicerContext
    ) -> pb.ImportReply:
        if self._importer is None:
            raise WorkerUnavailableError("this worker does not import models")
        return await self._importer.receive(request_iterator)

    @map_errors_to_grpc
    async def UnloadModel(
        self, request: pb.UnloadModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._registry.unload_model(request.name)

    @map_errors_to_grpc
    async def SetRouting(
        self, request: pb.SetRoutingRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return await self._registry.set_routing(request)
