"""Several workers behind one gateway: local processes on Unix sockets, remote ones over mTLS.

The pool offers the one-worker client's calls. A predict goes to a serving worker that hosts
the model, the one with the fewest requests outstanding; if that worker turns out to be
unavailable, the request moves to the next (inference is idempotent) within its deadline.
Listings merge what the workers report (a serving worker's view first); control calls go to
every worker hosting the model, and a routing change is made on one worker and then copied
verbatim to the others, so replicas never disagree on a canary's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from inferencehub.errors import HubError, ModelNotFoundError, WorkerUnavailableError
from inferencehub.gateway.hop_session import NO_HINTS, HopHints
from inferencehub.gateway.worker_client import MISS_REFRESH_INTERVAL_S, GrpcWorkerClient
from inferencehub.protocol.hub_status import WorkerStatus
from inferencehub.protocol.validation import missing_model_error
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, workers: Sequence[GrpcWorkerClient]) -> None:
        if not workers:
            raise ValueError("a gateway needs at least one worker")
        self.workers = list(workers)
        self._refreshed_at = 0.0
        self._turn = 0
        # Told of every routing change this gateway made, with the worker's reply.
        self.routing_listeners: list[Callable[[pb.ModelInfo], None]] = []

    @property
    def serving(self) -> bool:
        return any(w.serving for w in self.workers)

    async def check_health(self) -> bool:
        await asyncio.gather(*(w.check_health() for w in self.workers))
        return self.serving

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))

    async def close(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers))

    def known_models(self) -> dict[str, pb.ModelInfo]:
        """Every model some worker reported; a serving worker's view wins."""
        merged: dict[str, pb.ModelInfo] = {}
        for worker in sorted(self.workers, key=lambda w: not w.serving):
            for name, info in worker.known_models().items():
                merged.setdefault(name, info)
        return merged

    def hosting(self, name: str) -> list[GrpcWorkerClient]:
        return [w for w in self.workers if name in w.known_models()]

    async def refresh(self) -> list[pb.ModelInfo]:
        """Ask every worker; fails only when none answers.

        Raises:
            HubError: no worker answered (the first one's error).
        """
        results = await asyncio.gather(*(w.refresh() for w in self.workers), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if len(failures) == len(results):
            raise failures[0]
        self._refreshed_at = time.monotonic()
        return [self.known_models()[name] for name in sorted(self.known_models())]

    async def model(self, name: str) -> pb.ModelInfo:
        """Raises ModelNotFoundError naming the models that exist."""
        info = self.known_models().get(name)
        if info is None and time.monotonic() - self._refreshed_at > MISS_REFRESH_INTERVAL_S:
            await self.refresh()
            info = self.known_models().get(name)
        if info is None:
            raise missing_model_error(name, list(self.known_models()))
        return info

    async def predict(
        self,
        request: pb.PredictRequest,
        timeout_s: float,
        hints: HopHints = NO_HINTS,
        payloads: Sequence[bytes | memoryview] | None = None,
    ) -> pb.PredictResponse:
        """Least outstanding among the serving workers hosting the model; the next one when a
        worker is unavailable, while the deadline allows.

        Raises:
            HubError: the worker's answer, or WorkerUnavailableError when none could take it.
        """
        deadline = time.monotonic() + timeout_s
        hosts = self.hosting(request.model_name) or self.workers
        tried: set[str] = set()
        last: HubError | None = None
        while True:
            left = [w for w in hosts if w.name not in tried]
            serving = [w for w in left if w.serving] or left
            remaining = deadline - time.monotonic()
            if not serving or remaining <= 0:
                raise last or WorkerUnavailableError("no worker can take the request")
            # Ties (an idle pool) take turns, so sequential traffic spreads too.
            self._turn += 1
            start = self._turn % len(serving)
            rotated = serving[start:] + serving[:start]
            worker = min(rotated, key=lambda w: w.outstanding)
            tried.add(worker.name)
            worker.outstanding += 1
            try:
                return await worker.predict(request, remaining, hints, payloads)
            except WorkerUnavailableError as exc:
                last = exc
                logger.debug("worker %s unavailable, trying another: %s", worker.name, exc)
            finally:
                worker.outstanding -= 1

    def admit(
        self, model: str, version: pb.ModelVersion, timeout_s: float, *, short_queue: bool = True
    ) -> None:
        """Refuse a request at once when no worker hosting the version would take it now
        (see admission.py): before its payload is decoded.

        Raises:
            OverloadedError: every serving host's backlog of that version is full.
        """
        hosts = self.hosting(model) or self.workers
        serving = [w for w in hosts if w.serving] or hosts
        error = None
        for worker in serving:
            error = worker.hop.refusal(
                model,
                version.version,
                version.max_queue_size,
                version.instances,
                timeout_s,
                short_queue=short_queue,
            )
            if error is None:
                return
        if error is not None:
            raise error

    async def statistics(self, name: str, version: str) -> list[pb.VersionStatistics]:
        targets = self.hosting(name) if name else self.workers
        results = await asyncio.gather(
            *(w.statistics(name, version) for w in targets or self.workers),
            return_exceptions=True,
        )
        answered = [r for r in results if not isinstance(r, BaseException)]
        if not answered:
            raise next(r for r in results if isinstance(r, BaseException))
        return merge_statistics([s for reply in answered for s in reply])

    async def load_model(self, name: str, timeout_s: float) -> pb.ModelInfo:
        return await self._on_hosts(name, lambda w: w.load_model(name, timeout_s))

    async def import_model(
        self, chunks: AsyncIterator[pb.ImportChunk], timeout_s: float
    ) -> pb.ImportReply:
        """Import through the first local worker (the repository is shared by local workers),
        then load the model on the other workers hosting it."""
        first = next((w for w in self.workers if w.address.startswith("unix://")), None)
        first = first or self.workers[0]
        reply = await first.import_model(chunks, timeout_s)
        others = [w for w in self.workers if w is not first]
        results = await asyncio.gather(
            *(w.load_model(reply.model.name, timeout_s) for w in others), return_exceptions=True
        )
        for worker, result in zip(others, results, strict=True):
            # NOTE: a worker whose placement leaves the model out answers NOT_FOUND: expected.
            if isinstance(result, BaseException) and not isinstance(result, ModelNotFoundError):
                logger.warning("worker %s did not load the import: %s", worker.name, result)
        return reply

    async def unload_model(self, name: str) -> pb.ModelInfo:
        return await self._on_hosts(name, lambda w: w.unload_model(name))

    async def set_routing(self, request: pb.SetRoutingRequest) -> pb.ModelInfo:
        """Change it on the first host, then copy the resulting policy to the others."""
        hosts = self.hosting(request.name) or self.workers
        info = await hosts[0].set_routing(request)
        if len(hosts) > 1:
            copy = (
                pb.SetRoutingRequest(name=request.name, reset=True)
                if request.reset
                else pb.SetRoutingRequest(name=request.name, routing=info.routing)
            )
            await asyncio.gather(*(w.set_routing(copy) for w in hosts[1:]))
        for listener in self.routing_listeners:
            listener(info)
        return info

    async def _on_hosts(self, name: str, call: Any) -> pb.ModelInfo:
        """Every worker hosting `name` (all, if none reported it yet); the first success."""
        targets = self.hosting(name) or self.workers
        results = await asyncio.gather(*(call(w) for w in targets), return_exceptions=True)
        for result in results:
            if isinstance(result, pb.ModelInfo):
                return result
        raise next(r for r in results if isinstance(r, BaseException))

    def describe(self) -> list[WorkerStatus]:
        """Per worker, for /v1/status and /metrics: where, whether it serves, its load."""
        return [
            WorkerStatus(
                name=w.name,
                address=w.address,
                serving=w.serving,
                outstanding=w.outstanding,
                models=sorted(w.known_models()),
                hop=w.hop_status(),
            )
            for w in self.workers
        ]


def merge_statistics(replies: list[pb.VersionStatistics]) -> list[pb.VersionStatistics]:
    """One entry per model version: replicas' counts and durations add up."""
    merged: dict[tuple[str, str], pb.VersionStatistics] = {}
    for stats in replies:
        key = (stats.name, stats.version)
        total = merged.get(key)
        if total is None:
            merged[key] = total = pb.VersionStatistics()
            total.CopyFrom(stats)
            continue
        total.last_inference_ms = max(total.last_inference_ms, stats.last_inference_ms)
        total.inference_count += stats.inference_count
        total.execution_count += stats.execution_count
        total.queue_depth += stats.queue_depth
        for field in (
            "success",
            "fail",
            "queue",
            "compute_input",
            "compute_infer",
            "compute_output",
        ):
            _add(getattr(total, field), getattr(stats, field))
        batches = {b.batch_size: b for b in total.batches}
        for batch in stats.batches:
            mine = batches.get(batch.batch_size)
            if mine is None:
                total.batches.append(batch)
                continue
            for field in ("compute_input", "compute_infer", "compute_output"):
                _add(getattr(mine, field), getattr(batch, field))
        ordered = [pb.BatchStatistics() for _ in total.batches]
        for copy, batch in zip(
            ordered, sorted(total.batches, key=lambda b: b.batch_size), strict=True
        ):
            copy.CopyFrom(batch)
        del total.batches[:]
        total.batches.extend(ordered)
    return [merged[k] for k in sorted(merged, key=lambda k: (k[0], int(k[1])))]


def _add(total: pb.Duration, more: pb.Duration) -> None:
    total.count += more.count
    total.ns += more.ns
