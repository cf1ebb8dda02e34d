"""The gateway's client coalesces concurrent predictions into shared calls, and every request
still gets exactly its own result or its own error (real worker in-process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from inferencehub.errors import InvalidRequestError, ModelNotFoundError
from inferencehub.gateway.worker_client import GrpcWorkerClient
from inferencehub.protocol.tensors import tensor_from_numpy, tensor_to_numpy
from inferencehub.v1 import inference_pb2 as pb
from tests.integration.test_worker import running_worker


def scale_request(x: np.ndarray, version: str = "1") -> pb.PredictRequest:
    return pb.PredictRequest(
        model_name="scale", version=version, inputs=[tensor_from_numpy("x", x)]
    )


async def test_concurrent_requests_share_calls_and_keep_their_own_results(
    repository: Path, uds_dir: Path
) -> None:
    address = f"unix://{uds_dir}/w.sock"
    async with running_worker(repository, address):
        client = GrpcWorkerClient(address, max_message_bytes=1 << 20, refresh_s=60)
        try:
            inputs = [np.full((1, 4), float(i), np.float32) for i in range(40)]
            bad = pb.PredictRequest(
                model_name="scale",
                version="1",
                inputs=[tensor_from_numpy("x", np.zeros((1, 3), np.float32))],
            )
            missing = pb.PredictRequest(model_name="nope", version="1")
            results = await asyncio.gather(
                *(client.predict(scale_request(x), 10) for x in inputs[:20]),
                client.predict(bad, 10),
                client.predict(missing, 10),
                *(client.predict(scale_request(x), 10) for x in inputs[20:]),
                return_exceptions=True,
            )
            good = results[:20] + results[22:]
            for x, reply in zip(inputs, good, strict=True):
                assert isinstance(reply, pb.PredictResponse), reply
                np.testing.assert_array_equal(
                    tensor_to_numpy(reply.outputs[0]), x * np.array([1, 2, 3, 4], np.float32)
                )
            assert isinstance(results[20], InvalidRequestError)
            assert "expected FP32 [-1, 4]" in results[20].message
            assert isinstance(results[21], ModelNotFoundError)
            # 42 requests left in far fewer calls (one lane per model version).
            assert client.coalescer.calls_sent < 20
        finally:
            await client.close()


async def test_requests_for_other_versions_travel_separately(
    repository: Path, uds_dir: Path
) -> None:
    address = f"unix://{uds_dir}/w.sock"
    async with running_worker(repository, address):
        client = GrpcWorkerClient(address, max_message_bytes=1 << 20, refresh_s=60)
        try:
            x = np.ones((1, 4), np.float32)
            v1, v2 = await asyncio.gather(
                client.predict(scale_request(x, "1"), 10), client.predict(scale_request(x, "2"), 10)
            )
            assert (v1.version, v2.version) == ("1", "2")
            assert tensor_to_numpy(v2.outputs[0]).tolist() == [[10, 20, 30, 40]]
        finally:
            await client.close()


async def test_closed_client_refuses_new_requests(repository: Path, uds_dir: Path) -> None:
    client = GrpcWorkerClient(
        f"unix://{uds_dir}/none.sock", max_message_bytes=1 << 20, refresh_s=60
    )
    await client.close()
    with pytest.raises(Exception, match="shutting down"):
        await client.predict(scale_request(np.ones((1, 4), np.float32)), 1)
