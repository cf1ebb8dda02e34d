"""Per-version request scheduling: a bounded queue, deadlines, dynamic batching, instances.

Each loaded version gets one ModelScheduler. Requests wait in its queue (bounded: a full queue
answers RESOURCE_EXHAUSTED at once); one runner coroutine per instance takes the next request,
merges queued requests with the same non-batch shapes into it (up to max_batch_size, or the
batch cap tuning measured, waiting at most max_queue_delay_us for more), runs the batch on the
thread pool and splits the outputs back. Greedy by default: a lone request never waits, and
batches form only from requests that queued while the instances were busy. Requests whose
deadline passes in the queue are answered DEADLINE_EXCEEDED without being computed. Separate
queues per version keep a heavy model from delaying a light one, beyond sharing the cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from inferencehub.errors import (
    DeadlineExceededError,
    OverloadedError,
    WorkerUnavailableError,
)
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.onnx_model import BatchRun, ItemResult, OnnxModel
from inferencehub.worker.pipeline import PipelineModel

logger = logging.getLogger(__name__)


# A batch whose ONNX Runtime run takes less than this (on average, lately) runs on the event
# loop: handing it to a thread and back costs more than the run (a tiny MLP: ~20 us a run).
INLINE_RUN_MAX_S = 200e-6
# Weight of the newest run in that average.
RUN_AVERAGE_WEIGHT = 0.2


@dataclass(frozen=True, slots=True)
class Prediction:
    outputs: list[tuple[str, np.ndarray]]
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

    def __init__(self, model: OnnxModel | PipelineModel, executor: Executor) -> None:
        self.model = model
        self._executor = executor
        info = model.info
        self._max_batch = info.max_batch_size if model.batching else 0
        if self._max_batch and info.tuning.batch_cap:  # tuning found larger batches no faster
            self._max_batch = min(self._max_batch, info.tuning.batch_cap)
        self._delay_s = info.dynamic_batching.max_queue_delay_us / 1e6
        self._preferred = set(info.dynamic_batching.preferred_batch_sizes)
        self._max_queue = info.max_queue_size
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._closing = False
        self._run_s = 1e-3  # recent ORT run time (moving average); starts on the pool
        self._idle = 0  # runners waiting for work
        self._runners = [
            asyncio.create_task(self._run_instance(i), name=f"{model.name}/{info.version}#{i}")
            for i in range(info.instances)
        ]

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def _runs_quickly(self) -> bool:
        """Recent runs were short: a thread hop would cost more than the run."""
        return self._run_s < INLINE_RUN_MAX_S

    @property
    def quick(self) -> bool:
        """Runs are short lately and nothing waits for company: a caller may run what it
        queued right away (run_queued) instead of waking a runner for it."""
        return self._runs_quickly and not self._delay_s and not self._closing

    def run_queued(self) -> None:
        """Run everything queued now, on this thread, in as few batches as fit (quick
        versions only: the event loop waits while ONNX Runtime runs)."""
        loop = asyncio.get_running_loop()
        while (batch := self._take_ready(loop)) is not None:
            self._run(0, batch)

    async def submit(
        self,
        request: pb.PredictRequest,
        timeout_s: float | None,
        arrived_ns: int,
        payloads: Sequence[bytes | memoryview] | None = None,
    ) -> Prediction:
        """Decode, queue and wait for the request's share of a batch.

        Raises:
            OverloadedError: the queue is full.
            DeadlineExceededError: the deadline passed before compute started.
            InvalidRequestError: inputs cannot be decoded or the model rejects them.
        """
        self._admit()
        if self.model.decoding_is_heavy:
            loop = asyncio.get_running_loop()
            feeds = await loop.run_in_executor(
                self._executor, self.model.decode_inputs, request, payloads
            )
        else:
            feeds = self.model.decode_inputs(request, payloads)
        # A caller that gives up cancels this await, and so the future: the runner skips it.
        return await self.enqueue(feeds, list(request.outputs), timeout_s, arrived_ns)

    def _admit(self) -> None:
        if self._closing:
            raise WorkerUnavailableError(f"model '{self.model.name}' is being unloaded; retry")
        if len(self._queue) >= self._max_queue:
            raise OverloadedError(
                f"model '{self.model.name}' version {self.model.info.version} has "
                f"{len(self._queue)} requests queued (max_queue_size); retry later"
            )

    def enqueue(
        self,
        feeds: dict[str, np.ndarray],
        outputs: list[str],
        timeout_s: float | None,
        arrived_ns: int,
        *,
        wake: bool = True,
    ) -> asyncio.Future[Prediction]:
        """Queue decoded feeds; the future gets the request's share of a batch. No coroutine
        per request: the hop answers from the future's callback. `wake=False`: the caller
        runs the queue itself (run_queued), so no runner is woken for it.

        Raises:
            OverloadedError: the queue is full.
            WorkerUnavailableError: the version is being unloaded.
        """
        self._admit()
        loop = asyncio.get_running_loop()
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
        pending.future.add_done_callback(functools.partial(self._count_failure, arrived_ns))
        self._queue.append(pending)
        if wake:
            self._arrived.set()
        return pending.future

    def _count_failure(self, arrived_ns: int, future: asyncio.Future[Prediction]) -> None:
        """Errors, deadlines and callers that gave up count as failed requests."""
        if future.cancelled() or future.exception() is not None:
            self.model.stats.record_failure(time.perf_counter_ns() - arrived_ns)

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

    def _take_ready(self, loop: asyncio.AbstractEventLoop) -> list[_Pending] | None:
        """The oldest live request and whatever queued fits its batch; nothing waits."""
        first = self._next(loop)
        if first is None:
            return None
        batch = [first]
        if self._max_batch and first.items < self._max_batch:
            self._take_compatible(batch, first.items, loop)
        return batch

    async def _take_batch(self, loop: asyncio.AbstractEventLoop) -> list[_Pending] | None:
        while True:
            first = self._next(loop)
            if first is not None:
                break
            if self._closing:
                return None
            self._arrived.clear()
            self._idle += 1
            try:
                await self._arrived.wait()
            finally:
                self._idle -= 1
        batch, size = [first], first.items
        if not self._max_batch:
            return batch
        limit = self._share(first)
        wait_until = loop.time() + self._delay_s
        while size < limit and size not in self._preferred:
            size += self._take_compatible(batch, size, loop, limit)
            if size >= limit or size in self._preferred:
                break
            remaining = wait_until - loop.time()
            if remaining <= 0 or self._closing:
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
        return batch

    def _share(self, first: _Pending) -> int:
        """The most items this batch may take: all that fit, unless other instances wait for
        work; then a fair share of what is queued, so they run side by side instead of one
        instance running everything as one batch while the others idle."""
        if not self._idle:
            return self._max_batch
        queued = first.items + sum(p.items for p in self._queue)
        return min(self._max_batch, max(first.items, -(-queued // (self._idle + 1))))

    def _take_compatible(
        self,
        batch: list[_Pending],
        size: int,
        loop: asyncio.AbstractEventLoop,
        limit: int | None = None,
    ) -> int:
        """Move queued requests that fit the batch (up to `limit` items, default
        max_batch_size) into it; returns the items added."""
        limit = self._max_batch if limit is None else limit
        added = 0
        keep: deque[_Pending] = deque()
        while self._queue:
            pending = self._queue.popleft()
            fits = pending.key == batch[0].key and size + added + pending.items <= limit
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
            if self._runs_quickly:
                self._run(instance, batch)
                continue
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
                self._fail(batch, exc)
                continue
            self._ran(batch, run, started_ns)

    def _run(self, instance: int, batch: list[_Pending]) -> None:
        """One batch on this thread: a thread hop costs more than a quick run."""
        started_ns = time.perf_counter_ns()
        try:
            run = self.model.run(instance, [p.feeds for p in batch], batch[0].outputs)
        except Exception as exc:
            self._fail(batch, exc)
            return
        self._ran(batch, run, started_ns)

    @staticmethod
    def _fail(batch: list[_Pending], error: Exception) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    def _ran(self, batch: list[_Pending], run: BatchRun, started_ns: int) -> None:
        run_s = (run.computed_ns - run.merged_ns) / 1e9
        self._run_s += RUN_AVERAGE_WEIGHT * (run_s - self._run_s)
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
                steps=result.steps,
            )
            pending.future.set_result(Prediction(result.outputs, result.classifications, timing))
