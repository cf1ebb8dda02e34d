"""Raw ONNX Runtime in this process: the physical limit any server is measured against.

No serving at all: numpy arrays straight into `session.run`. Throughput is tried over batch
sizes and two thread layouts (one call at a time with 2 intra-op threads; two concurrent calls
with 1 thread each), because on 2 cores the best layout depends on the model; the best of all
is the ceiling. Batch-1 latency is a lone caller's view of the same sessions.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from bench.loadgen import percentile
from bench.measure import machine_busy_seconds
from bench.models import BenchModel

LAYOUTS = {"1 call x 2 threads": (1, 2), "2 calls x 1 thread": (2, 1)}


@dataclass
class RawResult:
    model: str
    throughput: dict[str, dict[int, float]] = field(default_factory=dict)  # layout -> batch -> /s
    cpu_per_1k: dict[str, dict[int, float]] = field(default_factory=dict)  # CPU s per 1k rows
    latency: dict[str, dict[str, float | None]] = field(default_factory=dict)  # layout -> p50/p99
    other_load: list[float] = field(default_factory=list)  # cores other processes used, per window

    def best(self) -> tuple[float, str, int]:
        """(rows/s, layout, batch) of the fastest configuration."""
        return max(
            (rate, layout, batch)
            for layout, rates in self.throughput.items()
            for batch, rate in rates.items()
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_for(sess: ort.InferenceSession, feed: dict[str, np.ndarray], callers: int, s: float) -> int:
    """Calls completed by `callers` threads looping on `sess.run` for `s` seconds."""
    counts = [0] * callers
    deadline = time.perf_counter() + s

    def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            sess.run(None, feed)
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts)


def measure(
    model: BenchModel, path: Path, batches: list[int], window_s: float, warmup_s: float
) -> RawResult:
    result = RawResult(model.name)
    rng = np.random.default_rng(0)
    for layout, (callers, threads) in LAYOUTS.items():
        sess = session(path, threads)
        one = {model.input_name: rng.random(model.batch1_shape, dtype=np.float32)}
        run_for(sess, one, callers, warmup_s)  # fresh sessions run slow for a while
        for batch in batches:
            feed = {model.input_name: rng.random((batch, *model.shape), dtype=np.float32)}
            sess.run(None, feed)
            cpu, busy, started = time.process_time(), machine_busy_seconds(), time.perf_counter()
            calls = run_for(sess, feed, callers, window_s)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            result.other_load.append(max(0.0, machine_busy_seconds() - busy - cpu) / elapsed)
            result.throughput.setdefault(layout, {})[batch] = calls * batch / elapsed
            result.cpu_per_1k.setdefault(layout, {})[batch] = cpu / (calls * batch) * 1000
        samples = []
        stop = time.perf_counter() + window_s
        while time.perf_counter() < stop or len(samples) < 20:
            started = time.perf_counter()
            sess.run(None, one)
            samples.append((time.perf_counter() - started) * 1e3)
        result.latency[layout] = {
            "p50_ms": percentile(samples, 50),
            "p99_ms": percentile(samples, 99),
        }
    return result
