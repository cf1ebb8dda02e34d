"""Batch-1 latency of each bundled model version: the appliance vs raw ONNX Runtime, side by side.

Starts the real `inferencehub up` on models/, then interleaves rounds of sequential requests:
raw ORT in this process (on the already-preprocessed tensor), HTTP image predict, gRPC image
predict. Prints medians and ratios against raw ORT; run it on a quiet machine and quote medians.

    python bench/latency.py [--requests 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inferencehub.client import connect  # noqa: E402
from inferencehub.worker.preprocess import images_to_batch  # noqa: E402
from inferencehub.worker.repository import load_model_config  # noqa: E402
from tests.hub import running_hub  # noqa: E402

MODEL_DIR = ROOT / "models" / "efficientnet"
PHOTO = ROOT / "examples" / "cat.jpg"


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def raw_session(version: str, threads: int) -> tuple[Callable[[], object], np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        str(MODEL_DIR / version / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    size = session.get_inputs()[0].shape[2]
    config, _ = load_model_config(MODEL_DIR)
    assert config.preprocess is not None
    batch = images_to_batch([PHOTO.read_bytes()], config.preprocess, size, size, 10**8)
    return lambda: session.run(None, {"images": batch}), batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="requests per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    image = PHOTO.read_bytes()
    results: dict[tuple[str, str], list[float]] = {}
    with running_hub(ROOT / "models", Path("/tmp")) as hub:
        http, grpc = connect(hub.http_url), connect(hub.grpc_url)
        paths: dict[str, dict[str, Callable[[], object]]] = {}
        for version in ("1", "2"):
            raw1, _ = raw_session(version, 1)
            raw2, _ = raw_session(version, 2)
            paths[version] = {
                "raw ORT, 1 thread": raw1,
                "raw ORT, 2 threads": raw2,
                "HTTP image predict": lambda v=version: http.predict_image(
                    "efficientnet", image, v
                ),
                "gRPC image predict": lambda v=version: grpc.predict_image(
                    "efficientnet", image, v
                ),
            }
            for call in paths[version].values():  # warm-up: fresh sessions start slow
                timed(call, 5)
        for _ in range(args.rounds):
            for version, calls in paths.items():
                for name, call in calls.items():
                    results.setdefault((version, name), []).extend(timed(call, args.requests))
        http.close()
        grpc.close()
    print(
        f"# {args.rounds} rounds x {args.requests} sequential batch-1 requests, "
        f"{os.cpu_count()} cores, onnxruntime {ort.__version__}"
    )
    print("| version | path | median ms | p90 ms | vs raw ORT 1 thread |")
    print("|---|---|---:|---:|---:|")
    for (version, name), samples in results.items():
        median = statistics.median(samples)
        p90 = statistics.quantiles(samples, n=10)[-1]
        base = statistics.median(results[(version, "raw ORT, 1 thread")])
        print(f"| {version} | {name} | {median:.1f} | {p90:.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
