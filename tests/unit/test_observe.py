"""/metrics and /v1/status in-process: a real DataPlane over a real pool with a fake worker
client, the request metrics it records, and what the Observer renders from them (parsed with
prometheus_client's own parser)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferencehub.errors import ModelNotFoundError
from inferencehub.gateway.dataplane import DataPlane
from inferencehub.gateway.hop_session import HopCounts
from inferencehub.gateway.observe import Observer
from inferencehub.gateway.pool import WorkerPool
from inferencehub.gateway.request_metrics import RequestMetrics, metrics_registry
from inferencehub.protocol.tensors import tensor_from_numpy
from inferencehub.v1 import inference_pb2 as pb

READY = pb.ModelVersion.READY


class FakeWorker:
    name = "worker"
    address = "unix:///fake.sock"
    serving = True
    outstanding = 0

    def __init__(self) -> None:
        spec = pb.TensorSpec(name="x", datatype="FP32", shape=[-1, 4])
        version = pb.ModelVersion(version="1", state=READY, inputs=[spec], max_batch_size=8)
        self.info = pb.ModelInfo(name="m", default_version="1", versions=[version])

    def known_models(self) -> dict[str, pb.ModelInfo]:
        return {"m": self.info}

    async def refresh(self) -> None:
        """A name the cache lacks makes the pool ask again: the fake knows what it knows."""

    async def predict(self, request: pb.PredictRequest, *_: Any) -> pb.PredictResponse:
        timing = pb.Timing(queue_ms=2.0, inference_ms=3.0, batch_size=2)
        return pb.PredictResponse(model_name="m", version=request.version, timing=timing)

    async def statistics(self, name: str, version: str) -> list[pb.VersionStatistics]:
        return [pb.VersionStatistics(name="m", version="1", inference_count=7, queue_depth=1)]

    def hop_status(self) -> dict[str, int]:
        held = dict.fromkeys(
            (
                "worker_sessions",
                "worker_arenas_mapped",
                "worker_requests_held",
                "worker_slots_held",
            ),
            1,
        )
        counts = HopCounts(arena_requests=3, inline_requests=4)
        return {**counts.with_session(None), **held}


@pytest.fixture
def observed() -> tuple[DataPlane, Observer]:
    registry = metrics_registry()
    pool = WorkerPool([cast(Any, FakeWorker())])
    dataplane = DataPlane(pool, 5.0, metrics=RequestMetrics(registry))
    return dataplane, Observer(dataplane, registry)


def request(model: str = "m") -> pb.PredictRequest:
    x = tensor_from_numpy("x", np.ones((1, 4), np.float32))
    return pb.PredictRequest(model_name=model, inputs=[x])


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_requests_are_counted_and_timed_by_model_version_and_code(
    observed: tuple[DataPlane, Observer],
) -> None:
    dataplane, observer = observed
    for _ in range(3):
        await dataplane.predict(request(), protocol="grpc")
    for name in ("typo-1", "typo-2"):
        with pytest.raises(ModelNotFoundError):
            await dataplane.predict(request(name), protocol="http")
    shown = samples(await observer.metrics())
    ok = (("code", "OK"), ("model", "m"), ("protocol", "grpc"), ("version", "1"))
    assert shown[("inferencehub_requests_total", ok)] == 3
    unknown = (("code", "NOT_FOUND"), ("model", "(unknown)"), ("protocol", "http"), ("version", ""))
    assert shown[("inferencehub_requests_total", unknown)] == 2  # one series for every typo
    queue = (("model", "m"), ("version", "1"))
    assert shown[("inferencehub_queue_duration_seconds_count", queue)] == 3
    assert shown[("inferencehub_batch_size_sum", queue)] == 6  # batch of 2, three times
    assert not any("typo" in str(labels) for _, labels in shown)


async def test_status_joins_the_door_the_workers_and_traffic(
    observed: tuple[DataPlane, Observer],
) -> None:
    dataplane, observer = observed
    await dataplane.predict(request(), protocol="http")
    status = await observer.status()
    assert status["door"]["in_flight"] == 0 and status["door"]["max_in_flight"] == 1024
    (worker,) = status["workers"]
    assert worker["models"] == ["m"] and worker["hop"]["inline_requests"] == 4
    (traffic,) = [t for t in status["traffic"] if t["name"] == "m"]
    assert traffic["version"] == "1" and traffic["requests"] == 1 and traffic["queue_depth"] == 1
    assert [m["name"] for m in status["models"]] == ["m"]
