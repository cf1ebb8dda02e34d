"""Batch-1 latency of each bundled model version: the appliance vs raw ONNX Runtime, side by side.

Starts the real `inferencehub up` on models/, then interleaves rounds of sequential requests:
raw ORT in this process (on the already-preprocessed tensor), the JPEG decode + preprocessing
the worker does (in this process too), HTTP image predict, gRPC image predict (the SDK call
`inferencehub predict IMAGE --url grpc://...` makes). Prints medians and ratios against raw ORT,
then the target: gRPC image predict <= raw ORT (2 threads) + JPEG decode + 2 ms, met/missed.
Run it on a quiet machine and quote medians.

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

from bench.report import Target  # noqa: E402
from inferencehub.client import connect  # noqa: E402
from inferencehub.worker.preprocess import images_to_batch  # noqa: E402
from inferencehub.worker.repository import load_model_config  # noqa: E402
from tests.hub import running_hub  # noqa: E402

MODEL_DIR = ROOT / "models" / "efficientnet"
PHOTO = ROOT / "examples" / "cat.jpg"
RAW2, DECODE, GRPC = "raw ORT, 2 threads", "JPEG decode + preprocess", "gRPC image predict"
HOP_ALLOWANCE_MS = 2.0  # what the target grants the appliance beyond compute and decoding


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def preprocess_call(version: str) -> Callable[[], np.ndarray]:
    """The worker's JPEG decode + preprocessing of the photo, as one in-process call: the
    share of an image predict that is neither ONNX Runtime nor serving."""
    session = ort.InferenceSession(
        str(MODEL_DIR / version / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    size = session.get_inputs()[0].shape[2]
    config, _ = load_model_config(MODEL_DIR)
    assert config.preprocess is not None
    image, preprocess = PHOTO.read_bytes(), config.preprocess
    return lambda: images_to_batch([image], preprocess, size, size, 10**8)


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
    results: dict[tuple[str, str], list[float]] = {}
    with running_hub(ROOT / "models", Path("/tmp")) as hub:
        # as `inferencehub predict` does: connect(url, api_key=$INFERENCEHUB_API_KEY), then
        # predict_image(model, Path, version), the file read by the SDK on every call
        key = os.environ.get("INFERENCEHUB_API_KEY") or None
        http, grpc = connect(hub.http_url, api_key=key), connect(hub.grpc_url, api_key=key)
        paths: dict[str, dict[str, Callable[[], object]]] = {}
        for version in ("1", "2"):
            raw1, _ = raw_session(version, 1)
            raw2, _ = raw_session(version, 2)
            paths[version] = {
                "raw ORT, 1 thread": raw1,
                RAW2: raw2,
                DECODE: preprocess_call(version),
                "HTTP image predict": lambda v=version: http.predict_image(
                    "efficientnet", PHOTO, v
                ),
                GRPC: lambda v=version: grpc.predict_image("efficientnet", PHOTO, v),
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
    print()
    print(*target_rows(results), sep="\n")


def target_rows(results: dict[tuple[str, str], list[float]]) -> list[str]:
    """Per version: the gRPC image predict median against raw ORT 2 threads + decode + 2 ms."""
    rows = ["| target | measured | goal | verdict |", "|---|---:|---:|---|"]
    for version in sorted({v for v, _ in results}):
        med = {name: statistics.median(results[(version, name)]) for name in (RAW2, DECODE, GRPC)}
        goal = med[RAW2] + med[DECODE] + HOP_ALLOWANCE_MS
        note = f"({med[RAW2]:.1f} raw + {med[DECODE]:.1f} decode + {HOP_ALLOWANCE_MS:g})"
        name = f"v{version}: `inferencehub predict` gRPC median"
        target = Target(name, med[GRPC], goal, False, "ms", goal_note=note, digits=1)
        rows.append(target.row())
    return rows


if __name__ == "__main__":
    main()
