"""The worker's scheduler: merges concurrent requests, splits results back, bounds its queue,
drops expired requests before compute, and runs several instances (worker in-process, real ORT).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from inferencehub.errors import OverloadedError
from inferencehub.gateway.hop_session import HopHints
from inferencehub.protocol.tensors import tensor_from_numpy, tensor_to_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from inferencehub.worker.onnx_model import OnnxModel
from tests.integration.test_hop import hop_client
from tests.integration.test_worker import running_worker
from tests.model_builders import UNTUNED, slow_batch_model

ITERATIONS = 100_000  # ~0.1-0.3 s per run on this class of machine, whatever the batch size


@pytest.fixture(scope="module")
def batching_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batching")
    slow_batch_model(root / "slow" / "1" / "model.onnx", ITERATIONS)
    slow_batch_model(root / "tight" / "1" / "model.onnx", ITERATIONS)
    (root / "tight" / "model.toml").write_text(UNTUNED + "max_queue_size = 2\n")
    slow_batch_model(root / "unbatched" / "1" / "model.onnx", ITERATIONS)
    (root / "unbatched" / "model.toml").write_text(UNTUNED + "[batching]\nenabled = false\n")
    slow_batch_model(root / "pair" / "1" / "model.onnx", ITERATIONS)
    (root / "pair" / "model.toml").write_text(
        UNTUNED + "instances = 2\n[batching]\nenabled = false\n"
    )
    slow_batch_model(root / "pairbatch" / "1" / "model.onnx", ITERATIONS)
    (root / "pairbatch" / "model.toml").write_text(UNTUNED + "instances = 2\n")
    return root


@asynccontextmanager
async def worker_stub(
    repo: Path, uds_dir: Path
) -> AsyncIterator[inference_pb2_grpc.InferenceServiceStub]:
    async with running_worker(repo, f"unix://{uds_dir}/w.sock") as channel:
        yield inference_pb2_grpc.InferenceServiceStub(channel)


def request(model: str, x: np.ndarray) -> pb.PredictRequest:
    return pb.PredictRequest(model_name=model, inputs=[tensor_from_numpy("x", x)])


class FirstRun:
    """Holds the first ONNX Runtime run of one model (in the worker's executor thread) until
    the test lets it go: what queues behind the busy instance is then up to the test, not to
    how long a run takes on this machine."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, model: str) -> None:
        self.started = threading.Event()
        self._go = threading.Event()
        run = OnnxModel.run

        def held(onnx: OnnxModel, *args: Any) -> Any:
            if onnx.name == model and not self.started.is_set():
                self.started.set()
                self._go.wait(timeout=60)
            return run(onnx, *args)

        monkeypatch.setattr(OnnxModel, "run", held)

    def release(self) -> None:
        self._go.set()

    async def __aenter__(self) -> FirstRun:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()  # a failing test must not leave the worker's stop waiting on it


@pytest.fixture
def hold_first_run(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], FirstRun]:
    return lambda model: FirstRun(monkeypatch, model)


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = 30.0
) -> None:
    """Poll `condition` (plain or async) until it holds; fail naming `what` if it never does."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def queue_depth(stub: inference_pb2_grpc.InferenceServiceStub, model: str) -> int:
    """Requests waiting for an instance, as the worker's statistics report them."""
    stats = await stub.ModelStatistics(pb.ModelStatisticsRequest(name=model))
    return stats.versions[0].queue_depth


async def has_queued(stub: inference_pb2_grpc.InferenceServiceStub, model: str, n: int) -> bool:
    return await queue_depth(stub, model) == n


async def test_concurrent_requests_merge_and_split_without_cross_talk(
    batching_repo: Path, uds_dir: Path, hold_first_run: Callable[[str], FirstRun]
) -> None:
    async with worker_stub(batching_repo, uds_dir) as stub, hold_first_run("slow") as first_run:
        first = asyncio.ensure_future(stub.Predict(request("slow", np.zeros((1, 3), np.float32))))
        await until(first_run.started.is_set, "the first request to run")  # alone
        inputs = [np.full((k, 3), float(i), np.float32) for i, k in enumerate((1, 2, 1, 3), 1)]
        rest = asyncio.gather(*(stub.Predict(request("slow", x)) for x in inputs))
        await until(lambda: has_queued(stub, "slow", 4), "the rest to queue behind it")
        first_run.release()
        replies = await rest
        await first
        for x, reply in zip(inputs, replies, strict=True):
            np.testing.assert_array_equal(tensor_to_numpy(reply.outputs[0]), x + ITERATIONS)
        assert {r.timing.batch_size for r in replies} == {4}
        stats = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="slow"))
        (versions,) = stats.versions
        assert versions.inference_count == 1 + 7
        assert versions.execution_count == 2
        assert {(b.batch_size, b.compute_infer.count) for b in versions.batches} == {(1, 1), (7, 1)}


async def test_different_non_batch_shapes_never_merge(
    batching_repo: Path, uds_dir: Path, hold_first_run: Callable[[str], FirstRun]
) -> None:
    async with worker_stub(batching_repo, uds_dir) as stub, hold_first_run("slow") as first_run:
        first = asyncio.ensure_future(stub.Predict(request("slow", np.zeros((1, 2), np.float32))))
        await until(first_run.started.is_set, "the first request to run")
        wide = [np.full((1, 3), 5.0, np.float32), np.full((1, 3), 6.0, np.float32)]
        narrow = [np.full((1, 2), 7.0, np.float32)]
        rest = asyncio.gather(*(stub.Predict(request("slow", x)) for x in wide + narrow))
        await until(lambda: has_queued(stub, "slow", 3), "the rest to queue behind it")
        first_run.release()
        replies = await rest
        await first
        for x, reply in zip(wide + narrow, replies, strict=True):
            np.testing.assert_array_equal(tensor_to_numpy(reply.outputs[0]), x + ITERATIONS)
        assert [r.timing.batch_size for r in replies] == [2, 2, 1]


async def test_full_queue_refuses_at_once(
    batching_repo: Path, uds_dir: Path, hold_first_run: Callable[[str], FirstRun]
) -> None:
    async with worker_stub(batching_repo, uds_dir) as stub, hold_first_run("tight") as busy_run:
        x = np.zeros((1, 1), np.float32)
        busy = asyncio.ensure_future(stub.Predict(request("tight", x)))
        await until(busy_run.started.is_set, "the busy request to run")
        calls = [asyncio.ensure_future(stub.Predict(request("tight", x))) for _ in range(5)]

        async def each_refused_or_queued() -> bool:
            return sum(c.done() for c in calls) + await queue_depth(stub, "tight") == len(calls)

        await until(each_refused_or_queued, "each request to be refused or queued")
        busy_run.release()
        results = await asyncio.gather(*calls, return_exceptions=True)
        await busy
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(refused) == 3
        assert {r.code() for r in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert "max_queue_size" in refused[0].details()


async def test_request_expiring_in_the_queue_is_never_computed(
    batching_repo: Path, uds_dir: Path, hold_first_run: Callable[[str], FirstRun]
) -> None:
    model = "unbatched"
    async with worker_stub(batching_repo, uds_dir) as stub, hold_first_run(model) as busy_run:
        x = np.zeros((1, 1), np.float32)
        busy = asyncio.ensure_future(stub.Predict(request(model, x)))
        await until(busy_run.started.is_set, "the busy request to run")
        late = asyncio.ensure_future(stub.Predict(request(model, x), timeout=1.0))
        await until(lambda: has_queued(stub, model, 1), "the late request to queue")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await late  # its deadline passes while the instance is still busy
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        busy_run.release()
        await busy
        # One instance takes requests in order: once the next one is answered, the runner
        # has been past the expired one.
        await stub.Predict(request(model, x))
        stats = await stub.ModelStatistics(pb.ModelStatisticsRequest(name=model))
        assert stats.versions[0].fail.count == 1
        assert stats.versions[0].execution_count == 2  # the busy one and the next: not it


async def test_unbatched_model_runs_requests_one_by_one(batching_repo: Path, uds_dir: Path) -> None:
    async with worker_stub(batching_repo, uds_dir) as stub:
        x = np.ones((1, 1), np.float32)
        replies = await asyncio.gather(*(stub.Predict(request("unbatched", x)) for _ in range(3)))
        assert [r.timing.batch_size for r in replies] == [1, 1, 1]
        info = await stub.GetModel(pb.GetModelRequest(name="unbatched"))
        assert not info.versions[0].HasField("dynamic_batching")


async def test_two_instances_run_side_by_side(batching_repo: Path, uds_dir: Path) -> None:
    async with worker_stub(batching_repo, uds_dir) as stub:
        info = await stub.GetModel(pb.GetModelRequest(name="pair"))
        assert info.versions[0].instances == 2
        x = np.ones((1, 1), np.float32)
        replies = await asyncio.gather(*(stub.Predict(request("pair", x)) for _ in range(2)))
        # Neither waited for the other: each queued far less than one run takes.
        for reply in replies:
            assert reply.timing.queue_ms < reply.timing.inference_ms / 2


async def test_gateway_refuses_beyond_the_models_backlog_at_the_door(
    batching_repo: Path, uds_dir: Path
) -> None:
    async with hop_client(batching_repo, uds_dir) as (client, _):
        x = np.zeros((1, 1), np.float32)

        def tight() -> pb.PredictRequest:
            return pb.PredictRequest(
                model_name="tight", version="1", inputs=[tensor_from_numpy("x", x)]
            )

        results = await asyncio.gather(
            *(client.predict(tight(), 10, HopHints(max_backlog=2)) for _ in range(6)),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, OverloadedError)]
        answered = [r for r in results if isinstance(r, pb.PredictResponse)]
        assert len(refused) == 4 and len(answered) == 2
        assert "max_queue_size" in refused[0].message


async def test_idle_instances_split_the_queue_instead_of_one_taking_it_all(
    batching_repo: Path, uds_dir: Path
) -> None:
    async with hop_client(batching_repo, uds_dir) as (client, _):
        x = np.zeros((1, 3), np.float32)
        pair = HopHints(instances=2)
        await client.predict(request("pairbatch", x), 30, pair)  # the session is up
        # Four requests in one hop message reach two idle instances at once.
        replies = await asyncio.gather(
            *(client.predict(request("pairbatch", x), 30, pair) for _ in range(4))
        )
        assert client.hop.occupancy()["messages_sent"] == 2
        # Two batches of two side by side, not one batch of four and an idle instance.
        assert [r.timing.batch_size for r in replies] == [2, 2, 2, 2]
