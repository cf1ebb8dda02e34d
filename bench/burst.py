"""Memory after a burst: does the worker give back what a few batch-64 ResNet-50 requests took?

ONNX Runtime's CPU arena keeps the peak of every run unless told otherwise; the worker shrinks
it after large runs (inferencehub/worker/memory.py). This sends batch-64 requests for a few
seconds, waits 10 s, and compares the worker's RSS with its RSS just before (the target: at most
1.3x). Called by run.py's `burst` extra; the naive server is measured the same way beside it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import measure
from bench.models import MODELS

BATCH = 64
SETTLE_S = 10.0


def worker_rss_mb(server: measure.Server) -> float:
    """RSS of the process that computes: the hub's worker(s), or the naive server."""
    pids = [
        pid
        for pid in server.pids()
        if measure.role_of(measure.cmdline(pid), server.label) in ("worker", server.label)
    ]
    return measure.memory_mb(pids)[0]


def burst(server: measure.Server, stubs: Path, seconds: float) -> dict[str, Any]:
    model = MODELS["resnet50"]
    server.wait_idle()
    before = worker_rss_mb(server)
    args = measure.builtin_args(server.grpc, "grpc", model, 2, stubs, seconds)
    shape = ",".join(map(str, (BATCH, *model.batch1_shape[1:])))
    args[args.index("--shape") + 1] = shape
    load = measure.run_builtin([*args, "--warmup", "0", "--deadline", "120"], seconds + 240)
    peak = worker_rss_mb(server)
    server.wait_idle()
    time.sleep(SETTLE_S)
    after = worker_rss_mb(server)
    return {
        "batch": BATCH,
        "ok": load.get("ok_total", 0),
        "errors": load.get("errors", load.get("failed")),
        "rss_before_mb": before,
        "rss_end_of_burst_mb": peak,
        "rss_after_mb": after,
        "ratio": after / before if before else None,
    }
