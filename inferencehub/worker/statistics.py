"""Per-version inference counters and cumulative durations (they feed the statistics APIs)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from inferencehub.v1 import inference_pb2 as pb


@dataclass
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.ns += ns

    def to_proto(self) -> pb.Duration:
        return pb.Duration(count=self.count, ns=self.ns)


class VersionStatistics:
    """Updated from inference threads, read from the event loop: one lock guards it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._success = _Duration()
        self._fail = _Duration()
        self._queue = _Duration()
        self._compute_input = _Duration()
        self._compute_infer = _Duration()
        self._compute_output = _Duration()
        self._inference_count = 0
        self._execution_count = 0
        self._last_inference_ms = 0
        self._batches: dict[int, tuple[_Duration, _Duration, _Duration]] = {}

    def record_success(
        self, items: int, queue_ns: int, input_ns: int, infer_ns: int, output_ns: int
    ) -> None:
        """One request answered; a merged batch's compute counts for each of its requests."""
        with self._lock:
            self._success.add(queue_ns + input_ns + infer_ns + output_ns)
            self._queue.add(queue_ns)
            self._compute_input.add(input_ns)
            self._compute_infer.add(infer_ns)
            self._compute_output.add(output_ns)
            self._inference_count += items
            self._last_inference_ms = time.time_ns() // 1_000_000

    def record_execution(
        self, batch_size: int, input_ns: int, infer_ns: int, output_ns: int
    ) -> None:
        """One ONNX Runtime run of `batch_size` items (the batch-size histogram)."""
        with self._lock:
            self._execution_count += 1
            durations = self._batches.setdefault(
                batch_size, (_Duration(), _Duration(), _Duration())
            )
            for duration, ns in zip(durations, (input_ns, infer_ns, output_ns), strict=True):
                duration.add(ns)

    def record_failure(self, elapsed_ns: int) -> None:
        with self._lock:
            self._fail.add(elapsed_ns)

    def to_proto(self, name: str, version: str) -> pb.VersionStatistics:
        with self._lock:
            return pb.VersionStatistics(
                name=name,
                version=version,
                last_inference_ms=self._last_inference_ms,
                inference_count=self._inference_count,
                execution_count=self._execution_count,
                success=self._success.to_proto(),
                fail=self._fail.to_proto(),
                queue=self._queue.to_proto(),
                compute_input=self._compute_input.to_proto(),
                compute_infer=self._compute_infer.to_proto(),
                compute_output=self._compute_output.to_proto(),
                batches=[
                    pb.BatchStatistics(
                        batch_size=size,
                        compute_input=durations[0].to_proto(),
                        compute_infer=durations[1].to_proto(),
                        compute_output=durations[2].to_proto(),
                    )
                    for size, durations in sorted(self._batches.items())
                ],
            )
