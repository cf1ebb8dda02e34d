"""The gateway's WorkerPool in-process: which worker a request goes to, what happens when one
is away, and how listings, routing changes and statistics combine (fake worker clients)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from inferencehub.errors import InvalidRequestError, WorkerUnavailableError
from inferencehub.gateway.pool import WorkerPool, merge_statistics
from inferencehub.v1 import inference_pb2 as pb


class FakeClient:
    """What the pool uses of a GrpcWorkerClient; predict records who served what."""

    def __init__(self, name: str, models: list[str], serving: bool = True) -> None:
        self.name = name
        self.serving = serving
        self.outstanding = 0
        self.models = {m: pb.ModelInfo(name=m, default_version=name) for m in models}
        self.failure: Exception | None = None
        self.release: asyncio.Event | None = None  # predict waits for it when set
        self.served: list[str] = []
        self.routing: list[pb.SetRoutingRequest] = []

    def known_models(self) -> dict[str, pb.ModelInfo]:
        return self.models

    async def predict(self, request: pb.PredictRequest, *_: Any) -> pb.PredictResponse:
        if self.failure is not None:
            raise self.failure
        if self.release is not None:
            await self.release.wait()
        self.served.append(request.request_id)
        return pb.PredictResponse(model_name=request.model_name, version=self.name)

    async def set_routing(self, request: pb.SetRoutingRequest) -> pb.ModelInfo:
        self.routing.append(request)
        info = pb.ModelInfo(name=request.name)
        info.routing.CopyFrom(request.routing)
        info.routing.labels["applied_by"] = self.name
        return info


def pool(*clients: FakeClient) -> WorkerPool:
    return WorkerPool([cast(Any, c) for c in clients])


def request(n: int, model: str = "m") -> pb.PredictRequest:
    return pb.PredictRequest(model_name=model, request_id=str(n))


async def test_ties_take_turns_and_the_least_outstanding_worker_wins() -> None:
    a, b = FakeClient("a", ["m"]), FakeClient("b", ["m"])
    workers = pool(a, b)
    served = [(await workers.predict(request(n), 5.0)).version for n in range(4)]
    assert sorted(served) == ["a", "a", "b", "b"]  # an idle pool spreads sequential traffic
    gate = asyncio.Event()
    a.release = b.release = gate
    busy = asyncio.create_task(workers.predict(request(9), 5.0))
    await asyncio.sleep(0)  # one of them now holds request 9
    held = a if a.outstanding else b
    free = b if held is a else a
    assert held.outstanding == 1 and free.outstanding == 0
    free.release = None
    async with asyncio.timeout(2):  # sent to the held worker, they would wait for the gate
        answers = [(await workers.predict(request(n), 5.0)).version for n in range(10, 13)]
    assert answers == [free.name] * 3  # never the busy one, whoever's turn it is
    gate.set()
    await busy
    assert held.served[-1] == "9"


async def test_an_unavailable_worker_passes_the_request_to_the_next() -> None:
    a, b = FakeClient("a", ["m"]), FakeClient("b", ["m"])
    a.failure = WorkerUnavailableError("a is restarting")
    workers = pool(a, b)
    assert {(await workers.predict(request(n), 5.0)).version for n in range(4)} == {"b"}
    b.failure = WorkerUnavailableError("b is restarting")
    with pytest.raises(WorkerUnavailableError, match="restarting"):
        await workers.predict(request(5), 5.0)


async def test_other_errors_are_the_answer_and_are_not_retried_elsewhere() -> None:
    a, b = FakeClient("a", ["m"]), FakeClient("b", ["m"])
    a.failure = b.failure = InvalidRequestError("bad input")
    with pytest.raises(InvalidRequestError):
        await pool(a, b).predict(request(1), 5.0)
    assert a.served == b.served == []


async def test_requests_go_to_serving_hosts_of_the_model() -> None:
    other = FakeClient("other", ["x"])
    host = FakeClient("host", ["m"])
    down = FakeClient("down", ["m"], serving=False)
    workers = pool(other, down, host)
    assert {(await workers.predict(request(n), 5.0)).version for n in range(4)} == {"host"}
    host.serving = False  # no serving host left: a non-serving one is still tried
    assert (await workers.predict(request(9), 5.0)).version in {"host", "down"}


async def test_a_routing_change_is_made_once_and_copied_verbatim() -> None:
    a, b = FakeClient("a", ["m"]), FakeClient("b", ["m"])
    workers = pool(a, b)
    seen: list[pb.ModelInfo] = []
    workers.routing_listeners.append(seen.append)
    change = pb.SetRoutingRequest(name="m", routing=pb.RoutingPolicy(weights={"1": 100}))
    info = await workers.set_routing(change)
    assert info.routing.labels["applied_by"] == "a" and seen == [info]
    (copied,) = b.routing
    assert copied.routing == info.routing  # the first host's result, not the request
    await workers.set_routing(pb.SetRoutingRequest(name="m", reset=True))
    assert b.routing[-1].reset


def test_listings_prefer_a_serving_workers_view() -> None:
    stale, fresh = FakeClient("stale", ["m"], serving=False), FakeClient("fresh", ["m", "n"])
    merged = pool(stale, fresh).known_models()
    assert merged["m"].default_version == "fresh" and set(merged) == {"m", "n"}


def test_statistics_of_replicas_add_up() -> None:
    def stats(count: int, ns: int, batch: int) -> pb.VersionStatistics:
        return pb.VersionStatistics(
            name="m",
            version="1",
            inference_count=count,
            success=pb.Duration(count=count, ns=ns),
            batches=[pb.BatchStatistics(batch_size=batch, compute_infer=pb.Duration(count=1))],
        )

    (total,) = merge_statistics([stats(2, 10, 1), stats(3, 5, 4), stats(1, 1, 1)])
    assert total.inference_count == 6 and total.success.ns == 16
    assert [(b.batch_size, b.compute_infer.count) for b in total.batches] == [(1, 2), (4, 1)]
