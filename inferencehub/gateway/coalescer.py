"""Coalesce concurrent predictions on the hop to the worker: one PredictMany call per batch.

A unary gRPC call costs the gateway and the worker far more CPU in Python than a tiny model's
compute, so concurrent requests for the same model version share calls. A lone request is sent
at once (nothing waits for company); while a model's calls are in flight, new requests queue
and leave together in the next call. Queues are per model version, so a slow model's calls
never hold back a fast model's answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from inferencehub.errors import DeadlineExceededError, OverloadedError, WorkerUnavailableError
from inferencehub.protocol.status import error_from_rpc, error_from_status
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc

logger = logging.getLogger(__name__)

# A reply needs a moment beyond the latest request deadline in its call.
REPLY_GRACE_S = 1.0


@dataclass(eq=False, slots=True)
class _Waiting:
    request: pb.PredictRequest
    future: asyncio.Future[pb.PredictResponse]
    deadline: float  # loop time
    retried: bool = False


class _ModelLane:
    """One model version's queue and its calls in flight."""

    def __init__(self) -> None:
        self.queue: deque[_Waiting] = deque()
        self.in_flight = 0
        self.in_flight_requests = 0


class Coalescer:
    """Sends predictions for each model version in as few PredictMany calls as keeps it busy."""

    def __init__(
        self,
        stub: inference_pb2_grpc.InferenceServiceStub,
        *,
        max_calls: int,
        max_batch: int,
        wait_ready: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        """`wait_ready(timeout)` waits for the worker to be back; with it, requests that were in
        flight when the worker's connection broke are sent once more (inference is idempotent).
        """
        self._stub = stub
        self._wait_ready = wait_ready
        self._max_calls = max_calls
        self._max_batch = max_batch
        self._lanes: dict[tuple[str, str], _ModelLane] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._closed = False
        self._calls_sent = 0

    @property
    def calls_sent(self) -> int:
        """PredictMany calls made so far (fewer than requests when coalescing works)."""
        return self._calls_sent

    async def predict(self, request: pb.PredictRequest, max_backlog: int = 0) -> pb.PredictResponse:
        """Queue a request (its timeout_s set) and wait for its own result.

        `max_backlog` (the model's max_queue_size; 0 = unbounded) bounds what may wait here and
        in the worker for this version: beyond it the request is refused at once, at the door.

        Raises:
            OverloadedError: the backlog is full.
            HubError: what the worker answered for this request, or WorkerUnavailableError.
        """
        if self._closed:
            raise WorkerUnavailableError("the gateway is shutting down")
        key = (request.model_name, request.version)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _ModelLane()
        if max_backlog and len(lane.queue) + lane.in_flight_requests >= max_backlog:
            raise OverloadedError(
                f"model '{request.model_name}' version {request.version} has {max_backlog} "
                "requests waiting (max_queue_size); retry later"
            )
        loop = asyncio.get_running_loop()
        waiting = _Waiting(
            request, loop.create_future(), loop.time() + (request.timeout_s or 3600.0)
        )
        lane.queue.append(waiting)
        self._send_more(lane)
        try:
            async with asyncio.timeout(request.timeout_s or None):
                return await waiting.future
        except TimeoutError:
            raise DeadlineExceededError(
                f"no answer within the request's {request.timeout_s:g}s deadline"
            ) from None

    def _send_more(self, lane: _ModelLane) -> None:
        now = asyncio.get_running_loop().time()
        while lane.queue and lane.in_flight < self._max_calls:
            batch = []
            while lane.queue and len(batch) < self._max_batch:
                waiting = lane.queue.popleft()
                if waiting.future.done():  # the caller gave up (deadline, disconnect)
                    continue
                # NOTE: the worker gets what is left of the deadline, not the original budget:
                # time spent waiting in this lane counts.
                waiting.request.timeout_s = max(waiting.deadline - now, 0.001)
                batch.append(waiting)
            if not batch:
                return
            lane.in_flight += 1
            lane.in_flight_requests += len(batch)
            self._calls_sent += 1
            task = asyncio.create_task(self._call(lane, batch))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call(self, lane: _ModelLane, batch: list[_Waiting]) -> None:
        timeout = max(w.request.timeout_s for w in batch) + REPLY_GRACE_S
        message = pb.PredictManyRequest(requests=[w.request for w in batch])
        try:
            reply = await self._stub.PredictMany(message, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc, "the worker")
            logger.warning("PredictMany of %d failed: %s", len(batch), exc.code().name)
            retry = [w for w in batch if not w.retried and not w.future.done()]
            if exc.code() == grpc.StatusCode.UNAVAILABLE and self._wait_ready and retry:
                task = asyncio.create_task(self._retry(lane, retry, error))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
                return
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            return
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.future.cancel()
            raise
        finally:
            lane.in_flight -= 1
            lane.in_flight_requests -= len(batch)
            self._send_more(lane)
        for waiting, result in zip(batch, reply.results, strict=True):
            if waiting.future.done():
                continue
            if result.HasField("error"):
                error = error_from_status(result.error.code, result.error.message)
                waiting.future.set_exception(error)
            else:
                waiting.future.set_result(result.response)

    async def _retry(self, lane: _ModelLane, batch: list[_Waiting], error: Exception) -> None:
        """The worker went away mid-call (crash, restart): send these once more when it is
        back, within each request's deadline; otherwise they get the original error."""
        assert self._wait_ready is not None
        loop = asyncio.get_running_loop()
        back = await self._wait_ready(max(w.deadline for w in batch) - loop.time())
        for waiting in reversed(batch):
            if waiting.future.done():
                continue
            if not back or loop.time() >= waiting.deadline:
                waiting.future.set_exception(error)
                continue
            waiting.retried = True
            lane.queue.appendleft(waiting)
        logger.info("retrying %d request(s) after the worker came back", len(batch))
        self._send_more(lane)

    async def close(self) -> None:
        """Refuse new requests; let calls in flight finish (the caller bounds the wait)."""
        self._closed = True
        for lane in self._lanes.values():
            while lane.queue:
                lane.queue.popleft().future.set_exception(
                    WorkerUnavailableError("the gateway is shutting down")
                )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._calls, return_exceptions=True)
