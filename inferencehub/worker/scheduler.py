"""Per-version request scheduling: a bounded queue, deadlines, dynamic batching, instances.

Each loaded version gets one ModelScheduler. Requests wait in its queue (bounded: a full queue
answers RESOURCE_EXHAUSTED at once); one runner coroutine per instance takes the next request,
merges queued requests with the same non-batch shapes into it (up to max_batch_size, waiting
at most max_queue_delay_us for more), runs the batch on the thread pool and splits the outputs
back. Greedy by default: a lone request never waits, and batches form only from requests that
queued while the instances were busy. Requests whose deadline passes in the queue are answered
DEADLINE_EXCEEDED without being computed. Separate queues per version keep a heavy model from
delaying a light one, beyond sharing the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from inferencehub.errors import (
    DeadlineExceededError,
    OverloadedError,
    WorkerUnavailableError,
)
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.onnx_model import ItemResult, OnnxModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prediction:
    outputs: list[pb.Tensor]
    classifications: list[pb.Classification]
    timing: pb.Timing


@dataclass(eq=False, slots=True)
class _Pending:
    feeds: dict[str, np.ndarray]
    outputs: list[str]
    items: int
    key: tuple[object, ...]
    arrived_ns: int
    decoded_ns: int
    deadline: float | None  # loop time
    future: asyncio.Future[Prediction] = field(repr=False)


def _merge_key(feeds: dict[str, np.ndarray], outputs: list[str]) -> tuple[object, ...]:
    """Requests merge only with the same inputs, dtypes, non-batch shapes and outputs."""
    return (tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(feeds.items())), *outputs)


class ModelScheduler:
    """Queues requests for one model version and runs them on its instances."""

    def __init__(self, model: OnnxModel, executor: Executor) -> None:
        self.model = model
        self._executor = executor
        info = model.info
        self._max_batch = info.max_batch_size if model.batching else 0
        self._delay_s = info.dynamic_batching.max_queue_delay_us / 1e6
        self._preferred = set(info.dynamic_batching.preferred_batch_sizes)
        self._max_queue = info.max_queue_size
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._closing = False
        self._runners = [
            asyncio.create_task(self._run_instance(i), name=f"{model.name}/{info.version}#{i}")
            for i in range(info.instances)
        ]

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    async def submit(
        self, request: pb.PredictRequest, timeout_s: float | None, arrived_ns: int
    ) -> Prediction:
        """Decode, queue and wait for the request's share of a batch.

        Raises:
            OverloadedError: the queue is full.
            DeadlineExceededError: the deadline passed before compute started.
            InvalidRequestError: inputs cannot be decoded or the model rejects them.
        """
        if self._closing:
            raise WorkerUnavailableError(f"model '{self.model.name}' is being unloaded; retry")
        if len(self._queue) >= self._max_queue:
            raise OverloadedError(
                f"model '{self.model.name}' version {self.model.info.version} has "
                f"{len(self._queue)} requests queued (max_queue_size); retry later"
            )
        loop = asyncio.get_running_loop()
        if self.model.decoding_is_heavy:
            feeds = await loop.run_in_executor(self._executor, self.model.decode_inputs, request)
        else:
            feeds = self.model.decode_inputs(request)
        outputs = list(request.outputs)
        first = next(iter(feeds.values()), None)
        items = int(first.shape[0]) if first is not None and first.ndim and self._max_batch else 1
        pending = _Pending(
            feeds=feeds,
            outputs=outputs,
            items=items,
            key=_merge_key(feeds, outputs),
            arrived_ns=arrived_ns,
            decoded_ns=time.perf_counter_ns(),
            deadline=None if timeout_s is None else loop.time() + timeout_s,
            future=loop.create_future(),
        )
        self._queue.append(pending)
        self._arrived.set()
        try:
            return await pending.future
        except BaseException:
            # Also a caller that gave up (deadline, disconnect): the runner skips the request
            # if it has not started, and it counts as failed.
            pending.future.cancel()
            self.model.stats.record_failure(time.perf_counter_ns() - arrived_ns)
            raise

    async def close(self) -> None:
        """Finish what is queued, then stop the runners (new requests are refused)."""
        self._closing = True
        self._arrived.set()
        await asyncio.gather(*self._runners, return_exceptions=True)

    def _next(self, loop: asyncio.AbstractEventLoop) -> _Pending | None:
        """The oldest live request; expired ones are answered DEADLINE_EXCEEDED on the way."""
        while self._queue:
            pending = self._queue.popleft()
            if pending.future.done():
                continue  # cancelled by the caller
            if pending.deadline is not None and loop.time() >= pending.deadline:
                pending.future.set_exception(
                    DeadlineExceededError(
                        "the request's deadline passed while it waited in the queue; "
                        "it was not computed"
                    )
                )
                continue
            return pending
        return None

    async def _take_batch(self, loop: asyncio.AbstractEventLoop) -> list[_Pending] | None:
        while True:
            first = self._next(loop)
            if first is not None:
                break
            if self._closing:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        batch, size = [first], first.items
        if not self._max_batch:
            return batch
        wait_until = loop.time() + self._delay_s
        while size < self._max_batch and size not in self._preferred:
            size += self._take_compatible(batch, size, loop)
            if size >= self._max_batch or size in self._preferred:
                break
            remaining = wait_until - loop.time()
            if remaining <= 0 or self._closing:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
        return batch

    def _take_compatible(
        self, batch: list[_Pending], size: int, loop: asyncio.AbstractEventLoop
    ) -> int:
        """Move queued requests that fit the batch into it; returns the items added."""
        added = 0
        keep: deque[_Pending] = deque()
        while self._queue:
            pending = self._queue.popleft()
            fits = pending.key == batch[0].key and size + added + pending.items <= self._max_batch
            expired = pending.deadline is not None and loop.time() >= pending.deadline
            if pending.future.done() or expired or not fits:
                keep.append(pending)  # _next() answers expired ones in order
                continue
            batch.append(pending)
            added += pending.items
        self._queue = keep
        return added

    async def _run_instance(self, instance: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._take_batch(loop)
            if batch is None:
                return
            started_ns = time.perf_counter_ns()
            try:
                run = await loop.run_in_executor(
                    self._executor,
                    self.model.run,
                    instance,
                    [p.feeds for p in batch],
                    batch[0].outputs,
                )
            except Exception as exc:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            self._deliver(batch, run.items, started_ns, run.merged_ns, run.computed_ns, run.done_ns)

    def _deliver(
        self,
        batch: list[_Pending],
        results: list[ItemResult],
        started_ns: int,
        merged_ns: int,
        computed_ns: int,
        done_ns: int,
    ) -> None:
        stats = self.model.stats
        infer_ns, output_ns = computed_ns - merged_ns, done_ns - computed_ns
        stats.record_execution(
            sum(p.items for p in batch), merged_ns - started_ns, infer_ns, output_ns
        )
        for pending, result in zip(batch, results, strict=True):
            input_ns = (pending.decoded_ns - pending.arrived_ns) + (merged_ns - started_ns)
            queue_ns = started_ns - pending.decoded_ns
            stats.record_success(pending.items, queue_ns, input_ns, infer_ns, output_ns)
            if pending.future.done():
                continue
            timing = pb.Timing(
                preprocess_ms=input_ns / 1e6,
                inference_ms=infer_ns / 1e6,
                postprocess_ms=output_ns / 1e6,
                queue_ms=queue_ns / 1e6,
                batch_size=len(batch),
            )
            pending.future.set_result(Prediction(result.outputs, result.classifications, timing))
