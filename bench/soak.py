"""Soak: minutes of mixed, moderate load on one InferenceHub, with a canary split, a hot reload
and a worker SIGKILL in the middle, to show what hours of service would: memory that creeps,
errors that only a reload or a restart provokes, latency that drifts.

Builds the bench repository (mlp, squeezenet, efficientnet v1 + v2; ResNet-50 is left out: idle
weight that would only lengthen the restart), starts `python -m inferencehub up` from source,
and runs four paced load processes (bench/loadgen.py --rate, and the SDK's predict_image) while
it samples the process tree every few seconds. Events, by default at 30/40/50 % of the run:
canary (copy MLP version 2 in, wait until it is READY, split 90/10), reload (rewrite
squeezenet/1/model.onnx with a new doc string: a changed file, reloaded under load), kill
(SIGKILL the worker; the restart window runs until the supervisor reports the new worker
running and the gateway sees it serving, plus --grace). Writes
bench/results/soak-<date>-<commit>.md (+ .json).

    python bench/soak.py                              # 10 minutes
    python bench/soak.py --minutes 2                  # every event, for development
    python bench/soak.py --minutes 10 --events-at 3,4,5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import onnx  # noqa: E402

from bench import kserve_stubs, measure, soak_report  # noqa: E402
from bench.loadgen import next_due  # noqa: E402
from bench.models import MODELS, build_mlp, build_repository  # noqa: E402
from bench.run import log_anomalies, machine_info  # noqa: E402

RESULTS = ROOT / "bench" / "results"
IMAGES = (ROOT / "examples" / "cat.jpg", ROOT / "examples" / "coffee.jpg")
CANARY_SPLIT = {"1": 90, "2": 10}


@dataclass(frozen=True)
class Workload:
    """One load process. Rates are paced (not closed-loop flat out): together they keep the
    hub near half of these 2 cores, so a latency that moves is the hub's doing, not a queue
    the generators built. Concurrency only has to exceed rate x latency, so that one slow
    answer does not hold the pace back, while a small value keeps an outage from releasing
    a burst."""

    name: str
    path: str  # grpc | http (KServe binary) | image (SDK predict_image over HTTP)
    model: str
    concurrency: int
    rate: float


WORKLOADS = (
    Workload("mlp-grpc", "grpc", "mlp", 4, 100),  # ~7 % of the gateway's c=64 ceiling
    Workload("mlp-http", "http", "mlp", 2, 40),
    Workload("squeezenet-grpc", "grpc", "squeezenet", 2, 12),  # ~0.15 core of ORT
    Workload("efficientnet-image", "image", "efficientnet", 2, 3),  # decode + Lite2
)


def start_hub(work: Path) -> measure.Server:
    """`up` on free ports with its own data dir: the canary's saved routing policy must
    neither leak into nor come from other runs on this box."""
    config = work / "hub.toml"
    config.write_text(f'data_dir = "{work / "data"}"\n')
    command = [sys.executable, "-m", "inferencehub", "up", "--models", str(work / "models")]
    command += ["--config", str(config), "--http-port", "{http}", "--grpc-port", "{grpc}"]
    hub = measure.Server.start("hub", command, work / "hub.log")
    hub.wait_ready(timeout_s=300)  # a first start may tune every version
    return hub


def start_load(
    w: Workload, hub: measure.Server, stubs: Path, seconds: float, trace: Path
) -> subprocess.Popen[bytes]:
    if w.path == "image":
        args = ["bench.soak", "images", "--url", f"http://{hub.http}", "--model", w.model]
        args += ["--concurrency", str(w.concurrency), "--duration", str(seconds)]
    else:
        target = hub.grpc if w.path == "grpc" else hub.http
        model = MODELS[w.model]
        args = ["bench.loadgen"]
        args += measure.builtin_args(target, w.path, model, w.concurrency, stubs, seconds)
        args += ["--warmup", "0", "--deadline", "30"]
    args += ["--rate", str(w.rate), "--trace", str(trace)]
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def sample(hub: measure.Server) -> soak_report.Sample:
    pid: dict[str, int] = {}
    rss: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for p in hub.pids():
        role = measure.role_of(measure.cmdline(p), "hub")
        if role in soak_report.ROLES:
            pid[role], rss[role] = p, measure.memory_mb([p])[0]
            cpu[role] = measure.cpu_seconds([p])
    return soak_report.Sample(time.monotonic(), pid, rss, cpu, measure.machine_busy_seconds())


def served(hub: measure.Server, model: str) -> dict[str, int] | None:
    """Requests per version the gateway has answered since it started (cumulative); None when
    it did not say (a reading to skip, not a count of zero)."""
    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
        reply = httpx.get(f"http://{hub.http}/v1/models/{model}/traffic", timeout=5).json()
        return {v["version"]: int(v["requests"]) for v in reply["versions"]}
    return None


class Events:
    """Runs the planned events on their own thread, so sampling keeps its cadence."""

    def __init__(
        self, hub: measure.Server, repo: Path, t0: float, plan: dict[str, float], grace: float
    ) -> None:
        self.hub, self.repo, self.t0, self.plan, self.grace = hub, repo, t0, plan, grace
        self.log: list[dict[str, Any]] = []
        self.windows: list[tuple[float, float]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for name, minute in self.plan.items():
            time.sleep(max(0.0, self.t0 + minute * 60 - time.monotonic()))
            began = time.monotonic()
            try:
                detail = getattr(self, name)()
            except Exception as exc:  # a failed event is a finding, not a crash of the soak
                detail = f"FAILED: {type(exc).__name__}: {exc}"
            self.log.append({"event": name, "at_s": began - self.t0, "detail": detail})
            print(f"# {soak_report._clock(began - self.t0)} {name}: {detail}", flush=True)

    def _wait(self, what: str, check: Any, timeout_s: float = 120.0) -> float:
        """Seconds until check() holds (polled every 0.1 s)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                if check():
                    return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError(f"{what} not seen after {timeout_s:.0f} s")

    def canary(self) -> str:
        """MLP version 2 copied in under a hidden name and renamed into place (atomic), then
        a 90/10 split once the worker has loaded it from the repository."""
        staging = self.repo / "mlp" / ".2"
        staging.mkdir()
        onnx.save(build_mlp(seed=1), staging / "model.onnx")
        staging.rename(self.repo / "mlp" / "2")
        url = f"http://{self.hub.http}/v1/models/mlp"

        def ready() -> bool:
            versions = httpx.get(url, timeout=5).json()["versions"]
            return any(v["version"] == "2" and v["state"] == "READY" for v in versions)

        loaded = self._wait("mlp version 2 READY", ready)
        reply = httpx.put(
            f"{url}/routing", json={"split": CANARY_SPLIT, "labels": {}, "sticky": True}, timeout=10
        )
        reply.raise_for_status()
        return f"mlp/2 copied in, READY after {loaded:.1f} s; split {CANARY_SPLIT}"

    def reload(self) -> str:
        """A changed squeezenet/1/model.onnx (new doc string: new bytes, same graph), renamed
        into place: the worker reloads a version that is serving load."""
        path = self.repo / "squeezenet" / "1" / "model.onnx"
        model = onnx.load(path)
        model.doc_string = f"soak reload {time.time():.0f}"
        partial = path.with_name(".model.onnx.partial")
        onnx.save(model, partial)
        offset = self.hub.log.stat().st_size
        os.replace(partial, path)

        def reloaded() -> bool:
            with self.hub.log.open("rb") as log:
                log.seek(offset)
                return b"loaded squeezenet version 1" in log.read()

        took = self._wait("the reload", reloaded)
        return f"squeezenet/1/model.onnx replaced; reloaded after {took:.1f} s"

    def kill(self) -> str:
        """SIGKILL the worker; the window ends when the supervisor reports a new worker
        running and the gateway sees it serving, plus the grace."""
        old = sample(self.hub).pid["worker"]
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        url = f"http://{self.hub.http}/v1/status"
        new: dict[str, int] = {}

        def back() -> bool:
            status = httpx.get(url, timeout=2).json()
            workers = [p for p in status["supervisor"]["processes"] if p["role"] == "worker"]
            running = [p["pid"] for p in workers if p["state"] == "running" and p["pid"] != old]
            new["pid"] = running[0] if running else 0
            return bool(running) and status["worker_serving"]

        took = self._wait("the restarted worker serving", back)
        self.windows.append((killed, killed + took + self.grace))
        return (
            f"worker pid {old} SIGKILLed; pid {new['pid']} serving after {took:.1f} s; "
            f"restart window {took + self.grace:.1f} s (+{self.grace:g} s grace)"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = soak_report.schedule(args.minutes, args.events_at)
    work = Path(tempfile.mkdtemp(prefix="inferencehub-soak-"))
    print(f"# work dir {work}; events at {plan} min", flush=True)
    repo = build_repository(work / "models")
    shutil.rmtree(repo / "resnet50")
    stubs = kserve_stubs.generate(work / "stubs")
    result: dict[str, Any] = {"info": machine_info(), "minutes": args.minutes}
    result |= {"sample_s": args.sample_s, "workloads": [asdict(w) for w in WORKLOADS]}
    hub = start_hub(work)
    loads: dict[str, subprocess.Popen[bytes]] = {}
    samples: list[soak_report.Sample] = []
    split: list[tuple[float, dict[str, int]]] = []
    try:
        t0, children = time.monotonic(), measure.children_cpu_seconds()
        seconds = args.minutes * 60
        for w in WORKLOADS:
            loads[w.name] = start_load(w, hub, stubs, seconds, work / f"{w.name}.csv")
        events = Events(hub, repo, t0, plan, args.grace)
        events.thread.start()
        while (now := time.monotonic()) < t0 + seconds:
            samples.append(sample(hub))
            if (counts := served(hub, "mlp")) is not None:
                split.append((now, counts))
            time.sleep(max(0.0, args.sample_s - (time.monotonic() - now)))
        for name, process in loads.items():
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"{name} load exited {process.returncode}")
            result.setdefault("load_summaries", {})[name] = json.loads(
                out.decode().strip().splitlines()[-1]
            )
        used = measure.children_cpu_seconds() - children  # the load processes, all ended
        result["loadgen_cpu_pct"] = round(used / (time.monotonic() - t0) * 100, 1)
        events.thread.join(timeout=1)
        samples.append(sample(hub))
        if (counts := served(hub, "mlp")) is not None:
            split.append((time.monotonic(), counts))
    finally:
        for process in loads.values():
            if process.poll() is None:
                process.kill()
        hub.stop()
    windows = events.windows
    result |= {
        "t0": t0,
        "events": events.log,
        "restart_windows_s": [(a - t0, b - t0) for a, b in windows],
        "per_minute": {
            w.name: [
                asdict(s)
                for s in soak_report.per_minute(
                    soak_report.read_trace(work / f"{w.name}.csv"), t0, args.minutes, windows
                )
            ]
            for w in WORKLOADS
        },
        "samples": [asdict(s) for s in samples],
        "rss_growth": soak_report.rss_growth(samples, t0, args.minutes),
        "rss_growth_per_process": soak_report.growth_per_process(samples, t0, args.minutes),
        "cpu": soak_report.cpu_per_minute(samples, t0, args.minutes),
        "mlp_split": soak_report.split_per_minute(split, t0, args.minutes),
        "anomalies": log_anomalies(work / "hub.log"),
    }
    print(f"# traces and hub.log in {work}")
    return result


def images_main(args: argparse.Namespace) -> None:
    """The image workload, as its own process: the SDK's predict_image (JPEG bytes over HTTP,
    decoded by the worker), paced like loadgen, one client per thread."""
    from inferencehub.client import ClientError, connect

    images = [p.read_bytes() for p in IMAGES]
    start = time.perf_counter()
    end = start + args.duration
    interval = args.concurrency / args.rate
    trace: list[str] = []

    def loop(i: int) -> None:
        due = start + i * interval / args.concurrency
        with connect(args.url, timeout_s=30) as hub:
            n = i
            while (sent := time.perf_counter()) < end:
                if due > sent:
                    time.sleep(due - sent)
                    if (sent := time.perf_counter()) >= end:
                        break
                due = next_due(due, interval, sent)
                try:
                    hub.predict_image(args.model, images[n % len(images)])
                    outcome = "OK"
                except ClientError as exc:
                    outcome = str(exc.status)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                n += 1
                done = time.perf_counter()
                trace.append(f"{time.monotonic():.4f},{(done - sent) * 1e3:.3f},{outcome}\n")

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    args.trace.write_text("".join(trace))
    print(json.dumps({"sent": len(trace), "ok": sum(",OK\n" in line for line in trace)}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument(
        "--events-at",
        type=lambda s: [float(v) for v in s.split(",")],
        help="minutes of the canary, reload and kill, e.g. 3,4,5 (default 30/40/50 %% of the run)",
    )
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--grace", type=float, default=5.0, help="seconds after the worker serves again"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", type=Path, help="only re-render a saved soak .json")
    sub = parser.add_subparsers(dest="mode")
    images = sub.add_parser("images", help="(internal) the image workload")
    images.add_argument("--url", required=True)
    images.add_argument("--model", required=True)
    images.add_argument("--concurrency", type=int, default=1)
    images.add_argument("--duration", type=float, required=True)
    images.add_argument("--rate", type=float, required=True)
    images.add_argument("--trace", type=Path, required=True)
    return parser.parse_args()


def write(result: dict[str, Any], out: Path) -> None:
    text = soak_report.render(result)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"soak-{result['info']['date'][:10]}-{result['info']['commit']}"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    print(text)
    print(f"# wrote {out / (stem + '.md')}")


def main() -> None:
    args = parse_args()
    if args.mode == "images":
        images_main(args)
        return
    if args.render:
        write(json.loads(args.render.read_text()), args.out)
        return
    result = run(args)
    result["command"] = " ".join(["python bench/soak.py", shlex.join(sys.argv[1:])]).strip()
    write(result, args.out)


if __name__ == "__main__":
    main()
