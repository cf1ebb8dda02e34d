"""Workers vs threads, and isolation by process: measured side by side in one invocation.

1. Scaling. EfficientNet-Lite0 at batch 1 under 4 concurrent clients: raw ONNX Runtime with
   one session x 2 threads vs two sessions x 1 thread (the prediction), then the appliance with
   `--workers 1` (2 ORT threads) vs `--workers 2` (1 thread each), over gRPC with the
   preprocessed tensor. Rounds alternate between the two set-ups; medians of the rounds.
2. Isolation. A light model's batch-1 latency (EfficientNet-Lite0, one client in a loop) while
   a heavy one (Lite2 at batch 8, two clients in a loop) runs: both models in one worker vs
   each in its own worker (placement), 1 ORT thread per session in both set-ups, then each in
   its own worker pinned to a core of its own (placement `cpus`, on a machine with 2 or more),
   plus the light model alone as the baseline.

    python bench/scale.py [--seconds 8] [--rounds 3] [--only scaling|isolation]
    # results: bench/results/scale.md (or --out)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inferencehub.client import connect  # noqa: E402
from inferencehub.worker.preprocess import images_to_batch  # noqa: E402
from inferencehub.worker.repository import load_model_config  # noqa: E402
from tests.hub import Hub, running_hub  # noqa: E402

MODELS = ROOT / "models"


def images(version: str, batch: int) -> np.ndarray:
    config, _ = load_model_config(MODELS / "efficientnet")
    assert config.preprocess is not None
    side = 224 if version == "1" else 260
    one = images_to_batch(
        [(ROOT / "examples" / "cat.jpg").read_bytes()], config.preprocess, side, side, 10**8
    )
    return np.repeat(one, batch, axis=0)


def run_for(seconds: float, calls: list[Callable[[], object]]) -> list[float]:
    """Every request's latency (ms), one thread per call, each calling it for `seconds`."""
    samples: list[float] = []
    stop = time.monotonic() + seconds

    def loop(call: Callable[[], object]) -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1e3)

    threads = [threading.Thread(target=loop, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


@contextmanager
def background(calls: list[Callable[[], object]]) -> Iterator[None]:
    """Each call in a loop on its own thread until the block ends."""
    stop = threading.Event()

    def loop(call: Callable[[], object]) -> None:
        while not stop.is_set():
            call()

    threads = [threading.Thread(target=loop, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def raw_sessions(count: int, threads: int) -> Callable[[], object]:
    """`count` sessions of Lite0 with `threads` each, used round-robin by concurrent callers."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = str(MODELS / "efficientnet" / "1" / "model.onnx")
    sessions = [ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])]
    sessions += [
        ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for _ in range(count - 1)
    ]
    feeds = {"images": images("1", 1)}
    free = list(sessions)
    lock = threading.Lock()

    def call() -> object:
        with lock:
            session = free.pop() if free else sessions[0]
        try:
            return session.run(None, feeds)
        finally:
            with lock:
                if session not in free:
                    free.append(session)

    return call


@contextmanager
def hub_with(config: str, logs: Path) -> Iterator[Hub]:
    path = logs / f"hub-{abs(hash(config))}.toml"
    path.write_text(config)
    with running_hub(MODELS, logs, "--config", str(path)) as hub:
        yield hub


def scaling(seconds: float, rounds: int, logs: Path) -> list[str]:
    feeds = {"images": images("1", 1)}
    setups = {
        "raw ORT, 1 session x 2 threads": raw_sessions(1, 2),
        "raw ORT, 2 sessions x 1 thread": raw_sessions(2, 1),
    }
    rates: dict[str, list[float]] = {name: [] for name in setups}
    served = {
        "--workers 1 (2 threads)": "[worker]\nintra_op_threads = 2\n",
        "--workers 2 (1 thread each)": (
            "[worker]\nintra_op_threads = 1\n[supervisor]\nworkers = 2\n"
        ),
    }
    rates.update({name: [] for name in served})
    latencies: dict[str, list[float]] = {name: [] for name in rates}
    for _ in range(rounds):
        for name, call in setups.items():
            samples = run_for(seconds, [call] * 4)
            rates[name].append(len(samples) / seconds)
            latencies[name].extend(samples)
        for name, config in served.items():
            with hub_with(config, logs) as hub:
                clients = [connect(hub.grpc_url) for _ in range(4)]
                for client in clients:  # warm-up
                    client.predict("efficientnet", feeds, "1")
                samples = run_for(
                    seconds,
                    [lambda c=c: c.predict("efficientnet", feeds, "1") for c in clients],
                )
                rates[name].append(len(samples) / seconds)
                latencies[name].extend(samples)
                for client in clients:
                    client.close()
    lines = [
        "| set-up (Lite0, batch 1, 4 clients) | req/s (median of rounds) | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for name, values in rates.items():
        ordered = sorted(latencies[name])
        lines.append(
            f"| {name} | {statistics.median(values):.1f} | {statistics.median(ordered):.1f} | "
            f"{ordered[int(0.99 * (len(ordered) - 1))]:.1f} |"
        )
    raw_ratio = statistics.median(rates["raw ORT, 2 sessions x 1 thread"]) / statistics.median(
        rates["raw ORT, 1 session x 2 threads"]
    )
    served_ratio = statistics.median(rates["--workers 2 (1 thread each)"]) / statistics.median(
        rates["--workers 1 (2 threads)"]
    )
    lines.append("")
    lines.append(
        f"Throughput ratio, 2 x 1 thread over 1 x 2 threads: raw ORT {raw_ratio:.2f}x, "
        f"served {served_ratio:.2f}x."
    )
    return lines


def two_models(directory: Path) -> Path:
    """A repository with Lite0 as `light` and Lite2 as `heavy`: two models to place apart."""
    for name, version in (("light", "1"), ("heavy", "2")):
        target = directory / "isolation" / name / "1"
        target.mkdir(parents=True, exist_ok=True)
        (target / "model.onnx").symlink_to(MODELS / "efficientnet" / version / "model.onnx")
    return directory / "isolation"


def isolation(seconds: float, rounds: int, logs: Path) -> list[str]:
    repository = two_models(logs)
    light_feeds = {"images": images("1", 1)}
    heavy_feeds = {"images": images("2", 8)}
    one = "[worker]\nintra_op_threads = 1\n"
    apart = one + (
        '[[supervisor.placement]]\nmodels = ["light"]\n'
        '[[supervisor.placement]]\nmodels = ["heavy"]\n'
    )
    setups = {
        "light alone (one worker)": (one, False),
        "light + heavy in one worker": (one, True),
        "light + heavy, a worker each": (apart, True),
    }
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        pinned = (
            f'[[supervisor.placement]]\nmodels = ["light"]\ncpus = [{cores[0]}]\n'
            f'[[supervisor.placement]]\nmodels = ["heavy"]\ncpus = [{cores[1]}]\n'
        )
        setups["light + heavy, a worker each, pinned to a core each"] = (pinned, True)
    latencies: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, (config, heavy) in setups.items():
            path = logs / "isolation.toml"
            path.write_text(config)
            with running_hub(repository, logs, "--config", str(path)) as hub:
                light = connect(hub.grpc_url)
                light.predict("light", light_feeds)
                loaders = [connect(hub.grpc_url) for _ in range(2 if heavy else 0)]
                with background([lambda c=c: c.predict("heavy", heavy_feeds) for c in loaders]):
                    time.sleep(1.0 if heavy else 0)
                    latencies[name].extend(
                        run_for(seconds, [lambda c=light: c.predict("light", light_feeds)])
                    )
                for client in (light, *loaders):
                    client.close()
    lines = [
        "| light model (Lite0, batch 1) while heavy (Lite2, batch 8, 2 clients) runs | p50 ms "
        "| p99 ms | p50 vs alone | p99 vs alone |",
        "|---|---:|---:|---:|---:|",
    ]

    def p99(samples: list[float]) -> float:
        return sorted(samples)[int(0.99 * (len(samples) - 1))]

    alone = latencies["light alone (one worker)"]
    for name, samples in latencies.items():
        p50 = statistics.median(samples)
        lines.append(
            f"| {name} | {p50:.1f} | {p99(samples):.1f} | {p50 / statistics.median(alone):.2f}x "
            f"| {p99(samples) / p99(alone):.2f}x |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["scaling", "isolation"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as logs:
        report = [
            f"# bench/scale.py: {args.rounds} rounds x {args.seconds:g} s, {os.cpu_count()} cores, "
            f"onnxruntime {ort.__version__}",
        ]
        if args.only in (None, "scaling"):
            report += ["", "## Workers vs threads", ""]
            report += scaling(args.seconds, args.rounds, Path(logs))
        if args.only in (None, "isolation"):
            report += ["", "## Isolation by process", ""]
            report += isolation(args.seconds, args.rounds, Path(logs))
    text = "\n".join(report) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
