"""The canary controller: follows running rollouts and writes their next step to the worker.

It judges each step on the traffic the gateway recorded since the step began: a snapshot of
the version's counters taken when the routing change came back from the worker (`observe`),
or at the first tick that sees the step (a restarted gateway restarts the current step's
window). Snapshotting at the change, not at the next tick, keeps requests answered in between
inside the window: a burst of canary errors shorter than a tick still rolls back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from inferencehub.errors import HubError
from inferencehub.gateway.pool import WorkerPool
from inferencehub.gateway.traffic import Series, TrafficStats
from inferencehub.protocol import canary
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)

TICK_S = 0.25


@dataclass
class _Step:
    """Where the current step's window began."""

    key: tuple[str, int, int]  # canary version, step, rollout start
    began: float
    canary: Series | None
    baseline: Series | None


class CanaryController:
    def __init__(
        self,
        worker: WorkerPool,
        traffic: TrafficStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._worker = worker
        self._traffic = traffic
        self._clock = clock
        self._steps: dict[str, _Step] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.tick()
            except HubError as exc:  # the worker is away: try again on the next tick
                logger.debug("canary controller: %s", exc.message)

    async def tick(self) -> None:
        """Judge every running rollout once; apply the verdicts that are not 'hold'."""
        for model in self._worker.known_models().values():
            rollout = model.routing.canary
            if rollout.state != canary.RUNNING:
                self._steps.pop(model.name, None)
                continue
            verdict = self._judge(model, rollout)
            if verdict.action == "hold":
                continue
            routing = canary.apply(model.routing, verdict, int(time.time() * 1000))
            request = pb.SetRoutingRequest(
                name=model.name, routing=routing, if_canary_updated_ms=rollout.updated_ms
            )
            await self._worker.set_routing(request)  # its listener starts the next window
            log = logger.warning if verdict.action == "rollback" else logger.info
            log(
                "canary %s version %s: %s%s",
                model.name,
                rollout.version,
                {"advance": "now at", "promote": "promoted", "rollback": "rolled back"}[
                    verdict.action
                ],
                f" {canary.percent(routing.canary):g} %"
                if verdict.action == "advance"
                else f": {verdict.reason}",
            )

    def observe(self, model: pb.ModelInfo) -> None:
        """Start the window of a step the routing change just began (call with its reply)."""
        rollout = model.routing.canary
        if rollout.state != canary.RUNNING:
            self._steps.pop(model.name, None)
            return
        self._step(model.name, rollout)

    def _step(self, name: str, rollout: pb.Canary) -> _Step:
        key = (rollout.version, rollout.step, rollout.started_ms)
        step = self._steps.get(name)
        if step is None or step.key != key:
            step = self._steps[name] = _Step(
                key,
                self._clock(),
                _snapshot(self._traffic.series(name, rollout.version)),
                _snapshot(self._traffic.series(name, rollout.baseline)),
            )
        return step

    def _judge(self, model: pb.ModelInfo, rollout: pb.Canary) -> canary.Verdict:
        ready = {v.version for v in model.versions if v.state == pb.ModelVersion.READY}
        if rollout.version not in ready:
            return canary.Verdict("rollback", f"version {rollout.version} is no longer ready")
        step = self._step(model.name, rollout)
        return canary.judge(
            rollout,
            _window(self._traffic.series(model.name, rollout.version), step.canary),
            _window(self._traffic.series(model.name, rollout.baseline), step.baseline),
            self._clock() - step.began,
        )


def _snapshot(series: Series | None) -> Series | None:
    return series.copy() if series is not None else None


def _window(series: Series | None, since: Series | None) -> canary.Window:
    if series is None:
        return canary.Window(0, 0, 0.0)
    recent = series.minus(since)
    return canary.Window(recent.requests, recent.errors, recent.percentile(99))
