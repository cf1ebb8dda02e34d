"""On a machine with CUDA and onnxruntime-gpu: is CUDA really used, and faster than the CPU?

Starts two real appliances on the bundled models side by side, one with `--provider cuda
--provider-policy strict` (so a silent fallback fails the load instead of passing unnoticed),
one with `--provider cpu`, checks the provider each reports for efficientnet version 2
(EfficientNet-Lite2, a ResNet-class CNN), then interleaves rounds of gRPC predictions of the
same preprocessed batch on both and prints medians and the CPU/CUDA ratio.

    bash bench/gpu_check.sh [--batch 1 --batch 8] [--requests 30] [--rounds 3]

Exit codes: 0 CUDA used and faster at every batch size, 1 not, 2 CUDA not available here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inferencehub.client import connect  # noqa: E402
from inferencehub.worker.preprocess import images_to_batch  # noqa: E402
from inferencehub.worker.repository import load_model_config  # noqa: E402
from tests.hub import running_hub  # noqa: E402

MODEL = "efficientnet"
VERSION = "2"
CUDA = "CUDAExecutionProvider"


def batch_of(size: int) -> np.ndarray:
    config, _ = load_model_config(ROOT / "models" / MODEL)
    assert config.preprocess is not None
    session = ort.InferenceSession(str(ROOT / "models" / MODEL / VERSION / "model.onnx"))
    side = session.get_inputs()[0].shape[2]
    photo = (ROOT / "examples" / "cat.jpg").read_bytes()
    one = images_to_batch([photo], config.preprocess, side, side, 10**8)
    return np.repeat(one, size, axis=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default 1, 8)")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if CUDA not in ort.get_available_providers():
        print(f"CUDA is not available: onnxruntime offers {ort.get_available_providers()}")
        print("install onnxruntime-gpu (and CUDA 12 + cuDNN 9) to run this check")
        return 2
    sizes = args.batch or [1, 8]
    models = ROOT / "models"
    with tempfile.TemporaryDirectory() as logs:
        logs_dir = Path(logs)
        cuda_args = ("--provider", "cuda", "--provider-policy", "strict")
        with (
            running_hub(models, logs_dir, *cuda_args) as cuda_hub,
            running_hub(models, logs_dir, "--provider", "cpu") as cpu_hub,
            connect(cuda_hub.grpc_url) as on_cuda,
            connect(cpu_hub.grpc_url) as on_cpu,
        ):
            clients = {"cuda": on_cuda, "cpu": on_cpu}
            for label, client in clients.items():
                version = next(
                    v for v in client.model(MODEL)["versions"] if v["version"] == VERSION
                )
                print(f"{label}: {MODEL} v{VERSION} {version['state']} on {version['provider']}")
                if label == "cuda" and version["provider"] != CUDA:
                    print(f"CUDA was asked for but not used: {version.get('error', '')}")
                    return 1
            faster = True
            for size in sizes:
                batch = {"images": batch_of(size)}
                samples: dict[str, list[float]] = {"cuda": [], "cpu": []}
                for client in clients.values():  # warm-up, outside the timings
                    client.predict(MODEL, batch, VERSION)
                for _ in range(args.rounds):
                    for label, client in clients.items():
                        for _ in range(args.requests):
                            started = time.perf_counter()
                            client.predict(MODEL, batch, VERSION)
                            samples[label].append((time.perf_counter() - started) * 1e3)
                cuda_ms = statistics.median(samples["cuda"])
                cpu_ms = statistics.median(samples["cpu"])
                print(
                    f"batch {size}: CUDA {cuda_ms:.2f} ms, CPU {cpu_ms:.2f} ms (median of "
                    f"{len(samples['cuda'])}); CPU/CUDA = {cpu_ms / cuda_ms:.2f}x"
                )
                faster = faster and cuda_ms < cpu_ms
    return 0 if faster else 1


if __name__ == "__main__":
    sys.exit(main())
