"""Shadow traffic: a fraction of a model's requests copied to its shadow version after the
real answer exists, so the shadow never delays it; the copy's result is only counted (its
latency, errors, and whether it agreed with the real answer) in the version's traffic.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import numpy as np

from inferencehub.errors import HubError
from inferencehub.gateway.traffic import TrafficStats
from inferencehub.protocol.datatypes import NUMPY_BY_DATATYPE
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)

# Mirrored requests in flight at once; more are dropped (and counted): a shadow must never
# queue up behind itself and take the cores from real traffic.
SHADOW_MAX_IN_FLIGHT = 4
# Outputs at most this large are compared numerically with the primary's; larger ones by bytes.
SHADOW_COMPARE_MAX_BYTES = 1 << 20

Run = Callable[
    [pb.ModelInfo, pb.PredictRequest, Sequence[bytes | memoryview]], Awaitable[pb.PredictResponse]
]


class Shadows:
    def __init__(self, traffic: TrafficStats, run: Run) -> None:
        """`run` sends a copy to the worker (checked against its version's signature)."""
        self._traffic = traffic
        self._run = run
        self._tasks: set[asyncio.Task[None]] = set()

    def maybe_mirror(
        self,
        model: pb.ModelInfo,
        request: pb.PredictRequest,
        served: str,
        payloads: Sequence[bytes | memoryview],
        primary: pb.PredictResponse | None,
    ) -> None:
        """Copy the request to the shadow version with the policy's probability (never to
        the version that served it)."""
        shadow = model.routing.shadow
        if (
            shadow.fraction <= 0 or shadow.version == served or random.random() >= shadow.fraction  # noqa: S311 - sampling, not security
        ):
            return
        counters = self._traffic.counters(model.name, shadow.version)
        if len(self._tasks) >= SHADOW_MAX_IN_FLIGHT:
            counters.shadow_dropped += 1
            return
        copy = pb.PredictRequest()
        copy.CopyFrom(request)
        copy.version = shadow.version
        copy.request_id = f"{request.request_id}-shadow"
        copy.ClearField("timeout_s")
        task = asyncio.create_task(self._mirror(model, copy, payloads, primary))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel mirrored requests still running: nobody waits for their answers."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _mirror(
        self,
        model: pb.ModelInfo,
        request: pb.PredictRequest,
        payloads: Sequence[bytes | memoryview],
        primary: pb.PredictResponse | None,
    ) -> None:
        counters = self._traffic.counters(model.name, request.version)
        started = time.perf_counter()
        answer: pb.PredictResponse | None = None
        try:
            answer = await self._run(model, request, payloads)
        except HubError as exc:
            logger.debug("shadow request %s failed: %s", request.request_id, exc.message)
        except Exception:
            logger.exception("shadow request %s failed", request.request_id)
        counters.shadow.record(time.perf_counter() - started, answer is not None)
        if answer is not None and primary is not None and not same_answer(primary, answer):
            counters.shadow_mismatches += 1


def same_answer(primary: pb.PredictResponse, shadow: pb.PredictResponse) -> bool:
    """Top-1 classes when the model classifies, else every output within float tolerance."""
    if primary.classifications or shadow.classifications:
        return [c.classes[0].index if c.classes else -1 for c in primary.classifications] == [
            c.classes[0].index if c.classes else -1 for c in shadow.classifications
        ]
    theirs = {t.name: t for t in shadow.outputs}
    for mine in primary.outputs:
        other = theirs.get(mine.name)
        if other is None or other.datatype != mine.datatype or other.shape != mine.shape:
            return False
        dtype = NUMPY_BY_DATATYPE.get(mine.datatype)
        if dtype is None or dtype.kind not in "fc" or len(mine.contents) > SHADOW_COMPARE_MAX_BYTES:
            if mine.contents != other.contents:
                return False
        elif not np.allclose(
            np.frombuffer(mine.contents, dtype),
            np.frombuffer(other.contents, dtype),
            rtol=1e-3,
            atol=1e-5,
            equal_nan=True,
        ):
            return False
    return True
