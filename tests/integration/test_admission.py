"""Admission at the door, end to end in this process (a real worker on a Unix socket and the
real gateway on free ports): a flood is refused at once with a retry hint on both protocols,
and a request that expires before it reaches the worker is never computed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from inferencehub.config import load_settings
from inferencehub.gateway.admission import MIN_BACKLOG
from inferencehub.gateway.main import run_gateway
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from inferencehub.protocol.tensors import tensor_from_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from tests.hub import free_tcp_port
from tests.integration.test_worker import running_worker
from tests.model_builders import slow_batch_model

QUEUE = 3  # max_queue_size of the slow model
FLOOD = 24
DEADLINE_S = 30.0  # the flood's own deadline: a refusal must come far sooner than this
X = np.ones((1, 4), np.float32)


@pytest.fixture(scope="module")
def slow_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("admission")
    # ~0.25 s a run on an idle core (more on a busy one), one at a time: a flood queues
    # behind it at once, and requests with a 10 ms deadline expire while it runs.
    slow_batch_model(root / "slow" / "1" / "model.onnx", 200_000)
    (root / "slow" / "model.toml").write_text(
        f"instances = 1\nmax_queue_size = {QUEUE}\n\n[batching]\nenabled = false\n"
    )
    # ~0.05 s a run, a deep queue: only the short-queue rule can refuse here.
    slow_batch_model(root / "deep" / "1" / "model.onnx", 40_000)
    (root / "deep" / "model.toml").write_text(
        "instances = 1\nmax_queue_size = 128\n\n[batching]\nenabled = false\n"
    )
    return root


@asynccontextmanager
async def hub(repo: Path, uds_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """A worker and a gateway; yields the gateway's HTTP base URL and gRPC address."""
    address = f"unix://{uds_dir}/w.sock"
    http_port, grpc_port = free_tcp_port(), free_tcp_port()
    settings = load_settings(
        None,
        {"gateway.http_port": http_port, "gateway.grpc_port": grpc_port, "worker.models_dir": repo},
    )
    async with running_worker(repo, address):
        stop = asyncio.Event()
        task = asyncio.create_task(run_gateway(settings, stop, worker_addresses=[address]))
        base = f"http://127.0.0.1:{http_port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                async with asyncio.timeout(30):
                    while True:
                        try:
                            if (await client.get("/v2/health/ready")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.05)
            yield base, f"127.0.0.1:{grpc_port}"
        finally:
            stop.set()
            await task


def infer_request() -> v2.ModelInferRequest:
    request = v2.ModelInferRequest(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    request.raw_input_contents.append(X.tobytes())
    return request


async def timed(call: object) -> tuple[float, object]:
    started = time.monotonic()
    try:
        outcome: object = await call  # type: ignore[misc]
    except Exception as exc:
        outcome = exc
    return time.monotonic() - started, outcome


async def test_a_grpc_flood_is_refused_at_once_with_a_retry_pushback(
    slow_repo: Path, uds_dir: Path
) -> None:
    async with hub(slow_repo, uds_dir) as (_, target), grpc.aio.insecure_channel(target) as ch:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(ch)
        results = await asyncio.gather(
            *(timed(stub.ModelInfer(infer_request(), timeout=DEADLINE_S)) for _ in range(FLOOD))
        )
    answered = [s for s, r in results if isinstance(r, v2.ModelInferResponse)]
    refused = [(s, r) for s, r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(answered) + len(refused) == FLOOD
    assert {r.code() for _, r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert len(refused) >= FLOOD - QUEUE
    for _, error in refused:
        assert ("grpc-retry-pushback-ms", "1000") in tuple(error.trailing_metadata() or ())
        assert "max_queue_size" in (error.details() or "")
    # Refused at the door, not after queueing: sooner than the admitted ones, which run one
    # after another, and far within the request's own deadline (generous: a noisy 2-core box).
    assert max(s for s, _ in refused) < min(DEADLINE_S / 10, max(answered))


async def test_an_http_flood_is_refused_at_once_with_retry_after(
    slow_repo: Path, uds_dir: Path
) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]}
    async with hub(slow_repo, uds_dir) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=DEADLINE_S) as client:
            results = await asyncio.gather(
                *(timed(client.post("/v2/models/slow/infer", json=body)) for _ in range(FLOOD))
            )
    statuses = [r.status_code for _, r in results if isinstance(r, httpx.Response)]
    assert len(statuses) == FLOOD
    refused = [(s, r) for s, r in results if isinstance(r, httpx.Response) and r.status_code == 429]
    answered = [s for s, r in results if isinstance(r, httpx.Response) and r.status_code == 200]
    assert len(refused) + len(answered) == FLOOD
    assert len(refused) >= FLOOD - QUEUE
    for _, reply in refused:
        assert reply.headers["retry-after"] == "1"
        assert "retry later" in reply.json()["error"]
    assert max(s for s, _ in refused) < min(DEADLINE_S / 10, max(answered))


async def test_a_request_that_expires_before_it_is_sent_is_never_computed_nor_counted(
    slow_repo: Path, uds_dir: Path
) -> None:
    """The one instance is busy; a request with a short deadline waits in the gateway and
    expires there. It must leave the version's backlog at once (a full backlog of dead
    requests would refuse live ones) and never reach ONNX Runtime."""
    request = pb.PredictRequest(model_name="slow", inputs=[tensor_from_numpy("x", X)])
    async with hub(slow_repo, uds_dir) as (base, target), grpc.aio.insecure_channel(target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        busy = asyncio.ensure_future(stub.Predict(request, timeout=DEADLINE_S))
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            async with asyncio.timeout(10):  # until the worker has it: the instance is busy
                while not (await client.get("/v1/status")).json()["workers"][0]["hop"]["in_flight"]:
                    await asyncio.sleep(0.005)
        # With the busy one they fill max_queue_size, and expire while the instance is busy.
        expired = await asyncio.gather(
            *(stub.Predict(request, timeout=0.01) for _ in range(QUEUE - 1)),
            return_exceptions=True,
        )
        codes = [e.code() for e in expired]  # type: ignore[union-attr]
        assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * (QUEUE - 1)
        assert not busy.done()
        # Had the dead requests kept their places, the backlog would still be full.
        second = await stub.Predict(request, timeout=DEADLINE_S)
        assert second.outputs
        await busy
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            stats = (await client.get("/v2/models/slow/stats")).json()["model_stats"][0]
    assert stats["execution_count"] == 2  # the two live requests, none of the expired ones
    assert stats["inference_stats"]["success"]["count"] == 2


async def test_the_short_queue_refuses_callers_with_a_deadline_and_lets_others_wait(
    slow_repo: Path, uds_dir: Path
) -> None:
    """Once the version's pace is known, a backlog over 0.2 s of work (16 requests at least)
    refuses a caller that set a deadline: it can go elsewhere sooner. A caller that set none
    waits its turn (up to max_queue_size): refusing it would only make it resend."""
    request = pb.PredictRequest(model_name="deep", inputs=[tensor_from_numpy("x", X)])
    flood = MIN_BACKLOG + 8
    async with hub(slow_repo, uds_dir) as (_, target), grpc.aio.insecure_channel(target) as ch:
        stub = inference_pb2_grpc.InferenceServiceStub(ch)
        await asyncio.gather(*(stub.Predict(request) for _ in range(4)))  # the pace is known
        patient = await asyncio.gather(
            *(stub.Predict(request) for _ in range(flood)), return_exceptions=True
        )
        hasty = await asyncio.gather(
            *(stub.Predict(request, timeout=DEADLINE_S) for _ in range(flood)),
            return_exceptions=True,
        )
    assert all(isinstance(r, pb.PredictResponse) for r in patient), patient
    refused = [r for r in hasty if isinstance(r, grpc.aio.AioRpcError)]
    assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert len(refused) >= flood - MIN_BACKLOG
    assert "ms of work" in (refused[0].details() or "")
