"""The worker in this process on a real Unix socket: health transitions, predict, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inferencehub.config import load_settings
from inferencehub.protocol.tensors import tensor_from_numpy, tensor_to_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from inferencehub.worker.main import run_worker

SERVING = health_pb2.HealthCheckResponse.SERVING


@asynccontextmanager
async def running_worker(models: Path, address: str) -> AsyncIterator[grpc.aio.Channel]:
    settings = load_settings(None, {"worker.models_dir": models})
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(settings, stop, address=address))
    channel = grpc.aio.insecure_channel(address)
    health = health_pb2_grpc.HealthStub(channel)
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.05)
        yield channel
    finally:
        await channel.close()
        stop.set()  # the same path SIGTERM takes in production
        await task


async def test_worker_predicts_and_reports_models(repository: Path, uds_dir: Path) -> None:
    address = f"unix://{uds_dir}/w.sock"
    async with running_worker(repository, address) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        models = {m.name: m for m in (await stub.ListModels(pb.ListModelsRequest())).models}
        assert models["scale"].default_version == "2"
        assert models["broken"].versions[0].state == pb.ModelVersion.FAILED
        x = np.ones((1, 4), np.float32)
        reply = await stub.Predict(
            pb.PredictRequest(model_name="scale", version="1", inputs=[tensor_from_numpy("x", x)])
        )
        np.testing.assert_array_equal(tensor_to_numpy(reply.outputs[0]), [[1, 2, 3, 4]])
        assert reply.timing.inference_ms > 0


async def test_worker_validates_even_without_a_gateway(repository: Path, uds_dir: Path) -> None:
    async with running_worker(repository, f"unix://{uds_dir}/w.sock") as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Predict(
                pb.PredictRequest(
                    model_name="scale", inputs=[tensor_from_numpy("x", np.ones((1, 5), np.float32))]
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetModel(pb.GetModelRequest(name="nope"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
