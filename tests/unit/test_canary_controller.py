"""The canary controller over the real worker pool, with a fake worker and a fake clock.

A step's window must begin when the routing change comes back, not at the controller's next
tick: requests answered in between belong to the step.
"""

from __future__ import annotations

import time
from typing import Any, cast

from inferencehub.gateway.canary_controller import CanaryController
from inferencehub.gateway.pool import WorkerPool
from inferencehub.gateway.traffic import TrafficStats
from inferencehub.protocol import canary
from inferencehub.v1 import inference_pb2 as pb


class FakeWorker:
    """Keeps one model's routing as the worker's registry would."""

    serving = True

    def __init__(self) -> None:
        versions = [pb.ModelVersion(version=v, state=pb.ModelVersion.READY) for v in ("1", "2")]
        self.info = pb.ModelInfo(name="m", default_version="1", versions=versions)

    def known_models(self) -> dict[str, pb.ModelInfo]:
        return {"m": self.info}

    async def set_routing(self, request: pb.SetRoutingRequest) -> pb.ModelInfo:
        routing = request.routing
        if routing.canary.state == pb.Canary.STATE_UNSPECIFIED:
            routing.canary.baseline = "1"
            routing = canary.start(routing, int(time.time() * 1000))
        info = pb.ModelInfo()
        info.CopyFrom(self.info)
        info.routing.CopyFrom(routing)
        self.info = info
        return info


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[FakeWorker, WorkerPool, TrafficStats, CanaryController, Clock]:
    worker = FakeWorker()
    pool = WorkerPool([cast(Any, worker)])
    traffic = TrafficStats()
    clock = Clock()
    controller = CanaryController(pool, traffic, clock=clock)
    pool.routing_listeners.append(controller.observe)
    return worker, pool, traffic, controller, clock


async def start_canary(pool: WorkerPool) -> None:
    rollout = pb.Canary(
        version="2", ramp=[50, 100], every_s=60, max_error_rate=0.01, min_requests=5
    )
    await pool.set_routing(pb.SetRoutingRequest(name="m", routing=pb.RoutingPolicy(canary=rollout)))


def record(traffic: TrafficStats, version: str, n: int, ok: bool) -> None:
    for _ in range(n):
        traffic.counters("m", version).primary.record(0.01, ok)


async def test_errors_answered_before_the_first_tick_roll_back() -> None:
    worker, pool, traffic, controller, _ = setup()
    await start_canary(pool)
    record(traffic, "2", 3, ok=False)  # all between the change and the controller's tick
    await controller.tick()
    assert worker.info.routing.canary.state == pb.Canary.ROLLED_BACK
    assert "error rate 3/3" in worker.info.routing.canary.reason
    assert dict(worker.info.routing.weights) == {"1": 100.0}


async def test_errors_from_before_the_rollout_are_not_held_against_it() -> None:
    worker, pool, traffic, controller, _ = setup()
    record(traffic, "2", 3, ok=False)  # asked for by version number before the canary
    await start_canary(pool)
    await controller.tick()
    assert worker.info.routing.canary.state == pb.Canary.RUNNING


async def test_each_step_is_judged_on_its_own_traffic() -> None:
    worker, pool, traffic, controller, clock = setup()
    await start_canary(pool)
    record(traffic, "2", 5, ok=True)
    clock.now += 61
    await controller.tick()
    assert worker.info.routing.canary.step == 1  # advanced to 100 %
    await controller.tick()  # the next step's window is empty: nothing to promote on yet
    assert worker.info.routing.canary.state == pb.Canary.RUNNING
    record(traffic, "2", 1, ok=False)
    await controller.tick()
    assert worker.info.routing.canary.state == pb.Canary.ROLLED_BACK
    assert "error rate 1/1" in worker.info.routing.canary.reason
