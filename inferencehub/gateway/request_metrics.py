"""Per-request metrics, observed by the DataPlane as requests pass (exported by observe.py).

Kept apart from observe.py so that the DataPlane and the Observer do not import each other:
whoever builds both (gateway/main.py) makes one registry and hands it to each.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from inferencehub.v1 import inference_pb2 as pb

LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class RequestMetrics:
    """Observed per request by the DataPlane; one registry per gateway (not the global one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "inferencehub_requests",
            "Predict requests by model, version, protocol and gRPC status code name.",
            ["model", "version", "protocol", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "inferencehub_request_duration_seconds",
            "Time from the gateway receiving a predict request to its answer.",
            ["model", "version", "protocol"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.gateway = Histogram(
            "inferencehub_gateway_duration_seconds",
            "Time in the gateway and on the hop: the total minus the worker's queue and compute.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.queue = Histogram(
            "inferencehub_queue_duration_seconds",
            "Time a request waited in the worker's queue for an instance.",
            ["model", "version"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.compute = Histogram(
            "inferencehub_compute_duration_seconds",
            "Worker compute per request by stage (preprocess, inference, postprocess).",
            ["model", "version", "stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.batch = Histogram(
            "inferencehub_batch_size",
            "Requests in the batch each request was computed in (1 = alone).",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self._bound: dict[tuple[str, str, str], _BoundSeries] = {}

    def observe(
        self,
        model: str,
        version: str,
        protocol: str,
        code: str,
        seconds: float,
        response: pb.PredictResponse | None,
    ) -> None:
        series = self._bound.get((model, version, protocol))
        if series is None:
            series = self._bound[(model, version, protocol)] = _BoundSeries(
                self, model, version, protocol
            )
        series.observe(code, seconds, response)


class _BoundSeries:
    """One (model, version, protocol)'s children, looked up once: `labels()` per request
    costs a lock and a dict lookup per metric. Label values come from known models only."""

    def __init__(self, metrics: RequestMetrics, model: str, version: str, protocol: str) -> None:
        self._requests = metrics.requests
        self._labels = (model, version, protocol)
        self._codes: dict[str, Any] = {}
        self.duration = metrics.duration.labels(model, version, protocol)
        self.gateway = metrics.gateway.labels(model, version)
        self.queue = metrics.queue.labels(model, version)
        self.stages = [
            metrics.compute.labels(model, version, stage)
            for stage in ("preprocess", "inference", "postprocess")
        ]
        self.batch = metrics.batch.labels(model, version)

    def observe(self, code: str, seconds: float, response: pb.PredictResponse | None) -> None:
        counter = self._codes.get(code)
        if counter is None:
            counter = self._codes[code] = self._requests.labels(*self._labels, code)
        counter.inc()
        if response is None:
            return
        self.duration.observe(seconds)
        timing = response.timing
        stages = (timing.preprocess_ms, timing.inference_ms, timing.postprocess_ms)
        queue_ms = timing.queue_ms
        self.gateway.observe(max(0.0, seconds - (queue_ms + sum(stages)) / 1e3))
        self.queue.observe(queue_ms / 1e3)
        for child, ms in zip(self.stages, stages, strict=True):
            child.observe(ms / 1e3)
        if timing.batch_size:
            self.batch.observe(timing.batch_size)


def metrics_registry() -> CollectorRegistry:
    """A gateway's own registry (never prometheus_client's global one). `*_created` series
    double the output and no dashboard reads them: turned off here, once, at start-up (it is
    a process-wide switch of prometheus_client), not as a side effect of an import."""
    disable_created_metrics()
    return CollectorRegistry()
