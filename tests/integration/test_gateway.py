"""The gateway in this process: with no worker behind it, it answers 503 / UNAVAILABLE at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import httpx

from inferencehub.config import load_settings
from inferencehub.gateway.main import run_gateway
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from tests.hub import free_tcp_port


async def test_gateway_without_worker_answers_503_and_not_ready(uds_dir: Path) -> None:
    http_port, grpc_port = free_tcp_port(), free_tcp_port()
    settings = load_settings(
        None,
        {
            "gateway.http_port": http_port,
            "gateway.grpc_port": grpc_port,
            "worker.models_dir": uds_dir,
        },
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_gateway(settings, stop, worker_addresses=[f"unix://{uds_dir}/absent.sock"])
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            async with asyncio.timeout(20):
                while True:
                    try:
                        live = await client.get("/v2/health/live")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            assert live.status_code == 200
            ready = await client.get("/v2/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {"ready": False}
            started = time.monotonic()
            reply = await client.post("/v1/models/m/predict", json={"inputs": []})
            assert reply.status_code == 503
            assert reply.headers["retry-after"] == "1"
            assert "the worker is unavailable" in reply.json()["error"]
            assert time.monotonic() - started < 5  # fails fast, does not hang
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            try:
                await stub.Predict(pb.PredictRequest(model_name="m"), timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAVAILABLE
            else:
                raise AssertionError("predict without a worker must fail")
    finally:
        stop.set()
        await task


async def test_gateway_grpc_health_follows_the_worker(uds_dir: Path) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    grpc_port = free_tcp_port()
    settings = load_settings(
        None,
        {
            "gateway.http_port": free_tcp_port(),
            "gateway.grpc_port": grpc_port,
            "worker.models_dir": uds_dir,
        },
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_gateway(settings, stop, worker_addresses=[f"unix://{uds_dir}/absent.sock"])
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(
                health_pb2.HealthCheckRequest(), timeout=20, wait_for_ready=True
            )
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        stop.set()
        await task
