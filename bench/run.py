"""InferenceHub vs raw ONNX Runtime vs the naive one-process server, side by side, in one go.

Builds the bench models (tiny MLP, SqueezeNet, ResNet-50) into a temp repository, measures raw
ONNX Runtime in-process, lets InferenceHub tune its own layouts (--hub-layout auto; or untuned,
or raw ORT's best written to model.toml), then starts InferenceHub (`python -m inferencehub
up`, from source), the naive FastAPI + grpc.aio server (bench/naive_server.py) and the
do-nothing grpc.aio floor (bench/floor_server.py) and drives them, point by point, with
Triton's perf_analyzer (or the built-in generator), charging CPU per request to each
InferenceHub process (gateway, worker) separately. Adds the issue's extra targets: overload
with a deadline, the door under load, memory after a batch-64 burst, idle memory, start-up,
and the CNNs through Triton's system shared memory against binary tensors (extra `shm`).
Writes bench/results/<date>-<commit>.md (+ .json) and, unless --only-extras, latest.md.

    python bench/run.py              # full run, ~15 min on 2 cores
    python bench/run.py --quick      # fewer points, 2 s windows (development)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from bench import kserve_stubs, measure, rawort, report  # noqa: E402
from bench.burst import burst  # noqa: E402
from bench.floor_server import MODEL as FLOOR_MODEL  # noqa: E402
from bench.models import MODELS, build_repository, write_perf_analyzer_input  # noqa: E402
from bench.provenance import commit, cpu_name, uncommitted  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ORDER = [
    ("naive", "http"),
    ("naive", "grpc"),
    ("hub", "http-json"),
    ("hub", "http"),
    ("hub", "grpc"),
]
FLOOR_CONCURRENCY = (1, 64)  # the MLP gRPC points whose gateway budgets the floor informs
CNNS = ("squeezenet", "resnet50")
# extra -> the models it needs: all of them, or for ANY_OF extras one at least (each measured)
EXTRAS = {
    "overload": {"squeezenet"},
    "door": {"mlp", "resnet50"},
    "burst": {"resnet50"},
    "shm": set(CNNS),
}
ANY_OF = {"shm"}
NAIVE_EXTRAS = {"overload", "door", "burst"}  # extras that measure the naive server too
# The shm extra: each shared-memory point right after its binary baseline, same protocol
SHM_PATHS = ("grpc", "grpc-shm", "http", "http-shm")
SHM_CONCURRENCY = (1, 4)


def machine_info() -> dict[str, Any]:
    cpu = cpu_name()
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    os_name = platform.platform()
    if Path("/etc/os-release").exists():
        fields = dict(
            ln.split("=", 1) for ln in Path("/etc/os-release").read_text().splitlines() if "=" in ln
        )
        os_name = fields.get("PRETTY_NAME", os_name).strip('"')
    dirty = uncommitted(("inferencehub/", "proto/", "pyproject"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "dirty": dirty,
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem_kb / 1e6,
        "os": os_name,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
    }


def roles(server: measure.Server) -> dict[str, float]:
    """RSS MB per role (supervisor, gateway, worker; naive), several workers summed."""
    named: dict[str, float] = {}
    for pid in server.pids():
        role = measure.role_of(measure.cmdline(pid), server.label)
        named[role] = named.get(role, 0.0) + measure.memory_mb([pid])[0]
    return named


def memory(server: measure.Server) -> dict[str, Any]:
    rss, pss = measure.memory_mb(server.pids())
    return {"rss_mb": rss, "pss_mb": pss, "per_process": roles(server)}


def start_hub(repo: Path, work: Path, samples: int) -> tuple[measure.Server, list[float]]:
    """Start `up` `samples` times, timing launch -> ready; the last one keeps running."""
    command = [sys.executable, "-m", "inferencehub", "up", "--models", str(repo)]
    command += ["--http-port", "{http}", "--grpc-port", "{grpc}"]
    times = []
    for i in range(samples):
        started = time.perf_counter()
        hub = measure.Server.start("hub", command, work / "hub.log")
        hub.wait_ready()
        times.append(time.perf_counter() - started)
        if i < samples - 1:
            hub.stop()
    return hub, times


def builtin(
    server_target: str, model: str, c: int, stubs: Path, seconds: float, *more: str
) -> dict[str, Any]:
    args = measure.builtin_args(server_target, "grpc", MODELS[model], c, stubs, seconds)
    return measure.run_builtin([*args, *more], timeout_s=seconds + 120)


def runnable(extra: str, models: set[str]) -> bool:
    need = EXTRAS[extra]
    return bool(need & models) if extra in ANY_OF else need <= models


def shared_memory(
    hub: measure.Server, models: list[str], load: measure.Load, scratch: Path
) -> dict[str, Any]:
    """The CNNs through Triton's system shared memory (perf_analyzer --shared-memory system:
    tensors in POSIX shm objects, the requests name regions) against binary tensors in the
    request (gRPC raw_input_contents, HTTP binary extension), interleaved point by point."""
    scratch.mkdir(exist_ok=True)
    points = []
    for name in models:
        for c in SHM_CONCURRENCY:
            for path in SHM_PATHS:
                point = measure.measure_point(hub, path, MODELS[name], c, load, scratch)
                points.append(point.as_dict())
                print(progress(point), flush=True)
    return {"output_region_bytes": measure.SHM_OUTPUT_BYTES, "points": points}


def overload(server: measure.Server, stubs: Path, seconds: float) -> dict[str, Any]:
    """SqueezeNet gRPC with a 2 s deadline: c=16 as the baseline, then c=256."""
    out: dict[str, Any] = {}
    for key, c in (("baseline", 16), ("overload", 256)):
        before = server.requests("squeezenet")
        result = builtin(
            server.grpc, "squeezenet", c, stubs, seconds, "--deadline", "2", "--warmup", "2"
        )
        result["concurrency"] = c
        result["drain_s"] = server.wait_idle()
        finished = server.requests("squeezenet")[0] - before[0]
        result["server_ok"] = finished
        result["wasted"] = max(0, finished - result.get("ok_total", 0))
        out[key] = result
    return out


def door(server: measure.Server, stubs: Path, seconds: float) -> dict[str, Any]:
    """Health probes and MLP calls while ResNet-50 at c=8 keeps the worker busy."""
    model = MODELS["resnet50"]
    args = measure.builtin_args(server.grpc, "grpc", model, 8, stubs, 3600)
    background = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        time.sleep(3)  # queue fills, worker saturated
        before, started = server.requests("resnet50")[0], time.monotonic()
        ready = measure.run_builtin(
            ["probe", "--url", f"http://{server.http}/v2/health/ready", "--count", "100"], 120
        )
        mlp = builtin(server.grpc, "mlp", 1, stubs, seconds)
        rate = (server.requests("resnet50")[0] - before) / (time.monotonic() - started)
    finally:
        background.send_signal(signal.SIGTERM)
        background.wait()
    server.wait_idle()
    return {"ready": ready, "mlp": mlp, "background_rate": rate}


def progress(p: measure.Point) -> str:
    cpu = p.per_1k(p.server_cpu_s) or 0
    split = " ".join(
        f"{role} {seconds / p.requests * 1e6:.0f}us"
        for role, seconds in p.server_cpu_by_role.items()
        if p.requests and role in ("gateway", "worker")
    )
    return (
        f"{p.model:10} c={p.concurrency:<3} {p.server:5} {p.path:9} {p.throughput or 0:9.1f}/s "
        f"p50 {p.p50_ms or 0:8.2f} p99 {p.p99_ms or 0:8.2f} ms err {p.errors} "
        f"cpu/1k {cpu:.3f} {split} {p.note}".rstrip()
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="c=1,16; 2 s windows; short extras")
    parser.add_argument("--concurrency", help="comma list (default 1,4,16,64; quick 1,16)")
    parser.add_argument("--models", default="mlp,squeezenet,resnet50")
    parser.add_argument("--loadgen", choices=["auto", "perf_analyzer", "builtin"], default="auto")
    parser.add_argument("--window-ms", type=int, help="perf_analyzer -p (default 3000; quick 2000)")
    parser.add_argument(
        "--trials", type=int, default=3, help="perf_analyzer -r (windows per point)"
    )
    parser.add_argument("--no-extras", action="store_true", help="skip overload/door/startup")
    parser.add_argument(
        "--only-extras",
        help="comma list of extras (overload, door, burst, shm): run only those, no per-model "
        "points",
    )
    parser.add_argument(
        "--hub-layout",
        choices=["auto", "untuned", "raw-best"],
        default="auto",
        help="InferenceHub's layout: its own tuning (no model.toml), tuning off (1 instance "
        "with every core), or raw ORT's best of this run written to model.toml",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the do-nothing grpc.aio floor server"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render", type=Path, help="only re-render a saved results .json")
    args = parser.parse_args()
    args.concurrency = [
        int(c) for c in (args.concurrency or ("1,16" if args.quick else "1,4,16,64")).split(",")
    ]
    args.models = args.models.split(",")
    args.only_extras = set(args.only_extras.split(",")) if args.only_extras else set()
    if args.only_extras - set(EXTRAS):
        parser.error(f"--only-extras takes {', '.join(EXTRAS)}")
    args.window_ms = args.window_ms or (2000 if args.quick else 3000)
    if args.loadgen == "auto":
        args.loadgen = "perf_analyzer" if measure.perf_analyzer_available() else "builtin"
    elif args.loadgen == "perf_analyzer" and not measure.perf_analyzer_available():
        parser.error(f"{measure.PERF_ANALYZER} missing: run scripts/install_perf_analyzer.sh")
    return args


def main() -> None:
    args = parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        command = saved.get("command", "python bench/run.py")
        write_report(saved, command, args.out, latest=not saved["settings"].get("only_extras"))
        return
    command = " ".join(["python bench/run.py", shlex.join(sys.argv[1:])]).strip()
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="inferencehub-bench-"))
    print(f"# work dir {work}", flush=True)
    repo = build_repository(work / "models")
    stubs = kserve_stubs.generate(work / "stubs")
    inputs = {m: write_perf_analyzer_input(MODELS[m], work / f"{m}.json") for m in args.models}
    results: dict[str, Any] = {"info": machine_info(), "points": [], "memory": {}}
    results["command"] = command
    results["settings"] = {
        "models": args.models,
        "concurrency": args.concurrency,
        "only_extras": sorted(args.only_extras),
        "window_ms": args.window_ms,
        "trials": args.trials,
        "loadgen": "perf_analyzer 2.51.0"
        if args.loadgen == "perf_analyzer"
        else "built-in generator",
    }
    results["raw"] = measure_raw(args.models, repo, args.quick)
    results["hub_layout"] = {
        "mode": args.hub_layout,
        "models": hub_layouts(results["raw"], repo) if args.hub_layout == "raw-best" else {},
    }
    if args.hub_layout == "untuned":
        for name in ("mlp", *CNNS):
            (repo / name / "model.toml").write_text('tuning = "off"\n')
    once = args.quick or args.no_extras or args.only_extras
    hub, start_times = start_hub(repo, work, 1 if once else 3)
    servers = {"hub": hub}
    naive = None
    if not args.only_extras or args.only_extras & NAIVE_EXTRAS:
        naive = servers["naive"] = start_naive(repo, stubs, work)
    floor = None
    if FLOOR_MODEL in args.models and not args.no_floor:
        floor = servers["floor"] = start_floor(stubs, work)
    try:
        if naive:
            naive.wait_ready()
        if floor:
            floor.wait_ready()
        time.sleep(2)
        results["memory"]["hub_idle"] = memory(hub)
        if naive:
            results["memory"]["naive_idle"] = memory(naive)
        results["hub_layout"]["tuned"] = tuned_layouts(hub)
        results["startup"] = {"samples_s": start_times, "median_s": statistics.median(start_times)}
        for label, server in servers.items():  # fresh ORT sessions run slow for a few seconds
            for name in [FLOOR_MODEL] if label == "floor" else args.models:
                builtin(server.grpc, name, 2, stubs, 1.0 if args.quick else 2.0)
        ceilings = {name: raw["best"]["throughput"] for name, raw in results["raw"].items()}
        load = measure.Load(args.loadgen, args.window_ms, args.trials, stubs, inputs, ceilings)

        def run_point(label: str, path: str, name: str, c: int) -> None:
            point = measure.measure_point(servers[label], path, MODELS[name], c, load, work)
            results["points"].append(point.as_dict())
            print(progress(point), flush=True)

        for name in [] if args.only_extras else args.models:
            for c in args.concurrency:
                for label, path in ORDER:
                    run_point(label, path, name, c)
                if floor and name == FLOOR_MODEL and c in FLOOR_CONCURRENCY:
                    run_point("floor", "grpc", name, c)  # interleaved with the MLP points
            if floor and name == FLOOR_MODEL:
                for c in FLOOR_CONCURRENCY:
                    if c not in args.concurrency:
                        run_point("floor", "grpc", name, c)
        extras = args.only_extras or (set() if args.no_extras else set(EXTRAS))
        extras = {e for e in extras if runnable(e, set(args.models))}
        seconds = 4.0 if args.quick else 10.0
        pair = {"hub": hub, "naive": naive}
        if "shm" in extras:
            cnns = [m for m in args.models if m in CNNS]
            results["shm"] = shared_memory(hub, cnns, load, work / "shm")
            print("shm done", flush=True)
        if "overload" in extras:
            results["overload"] = {k: overload(s, stubs, seconds) for k, s in pair.items()}
            print("overload done", flush=True)
        if "door" in extras:
            results["door"] = {k: door(s, stubs, seconds / 2) for k, s in pair.items()}
            print("door done", flush=True)
        if "burst" in extras:
            results["burst"] = {k: burst(s, stubs, 8.0) for k, s in pair.items()}
            print("burst done", flush=True)
        results["memory"]["hub_after"] = memory(hub)
    finally:
        for server in servers.values():
            server.stop()
    results["anomalies"] = log_anomalies(work / "hub.log")
    results["duration_s"] = time.monotonic() - began
    shutil.rmtree(repo, ignore_errors=True)  # keep the logs and perf_analyzer CSVs only
    write_report(results, command, args.out, latest=not args.only_extras)
    print(f"# logs and perf_analyzer CSVs in {work}")


def tuned_layouts(hub: measure.Server) -> dict[str, dict[str, Any]]:
    """The layout each version serves with and how it was chosen (GET /v1/models)."""
    out = {}
    reply = httpx.get(f"http://{hub.http}/v1/models", timeout=10)
    for model in reply.json()["models"]:
        for v in model["versions"]:
            tuning = v.get("tuning")
            if tuning is None:
                continue
            key = model["name"] + ("" if len(model["versions"]) == 1 else f"/{v['version']}")
            out[key] = {
                "instances": v["instances"],
                "threads": tuning["intra_op_threads"],
                "batch_cap": tuning["batch_cap"],
                "source": tuning["source"],
                "spent_ms": tuning["spent_ms"],
                "session_mb": tuning["session_mb"],
                "reason": tuning["reason"],
            }
    return out


def log_anomalies(log: Path) -> list[str]:
    """InferenceHub's WARNING/ERROR lines, timestamps dropped, counted (tracebacks skipped)."""
    seen: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[1].startswith(("WARNING", "ERROR")):
            message = re.sub(r" \[request [^\]]*\]$", "", " ".join(parts[1].split()))
            seen[message[:200]] += 1
    return [f"hub log, {n}x: `{message}`" for message, n in seen.items()]


def measure_raw(models: list[str], repo: Path, quick: bool) -> dict[str, Any]:
    window, warmup = (1.0, 1.0) if quick else (3.0, 2.0)
    batches = [1, 4, 8, 16]
    out = {}
    for name in models:
        path = repo / name / "1" / "model.onnx"
        raw = rawort.measure(MODELS[name], path, batches, window, warmup)
        best, layout, batch = raw.best()
        out[name] = {
            **raw.as_dict(),
            "batches": batches,
            "best": {"throughput": best, "layout": layout, "batch": batch},
        }
        print(f"raw ORT {name}: best {best:,.1f}/s ({layout}, batch {batch})", flush=True)
    return out


def layout_toml(instances: int, batch: int) -> str:
    """model.toml for `instances` ORT sessions (the worker gives each cores/instances threads)
    and raw ORT's best batch: batch 1 means batching off, else batches capped at `batch`."""
    lines = [f"instances = {instances}"]
    if batch > 1:
        lines.append(f"max_batch_size = {batch}")
    else:
        lines += ["", "[batching]", "enabled = false"]
    return "\n".join(lines) + "\n"


def hub_layouts(raw: dict[str, Any], repo: Path) -> dict[str, dict[str, Any]]:
    """Write each measured CNN's model.toml so InferenceHub serves it with raw ORT's best
    layout of this very run: the hub is then judged against the ceiling it could reach, not
    against a layout its defaults happen to pick. Must run before InferenceHub starts."""
    cores = len(os.sched_getaffinity(0))
    out = {}
    for name in CNNS:
        if name not in raw:
            continue
        best = raw[name]["best"]
        calls, _threads = rawort.LAYOUTS[best["layout"]]
        toml = layout_toml(calls, int(best["batch"]))
        (repo / name / "model.toml").write_text(toml)
        out[name] = {
            "instances": calls,
            "threads": max(1, cores // calls),
            "batching": best["batch"] > 1,
            "max_batch_size": best["batch"] if best["batch"] > 1 else None,
            "raw_layout": best["layout"],
            "raw_batch": best["batch"],
            "model_toml": toml,
        }
        flat = "; ".join(line for line in toml.splitlines() if line)
        print(f"hub layout {name}: {flat}", flush=True)
    return out


def start_floor(stubs: Path, work: Path) -> measure.Server:
    command = [sys.executable, "-m", "bench.floor_server", "--stubs", str(stubs)]
    command += ["--grpc-port", "{grpc}"]
    return measure.GrpcOnlyServer.start("floor", command, work / "floor.log", stubs=stubs)


def start_naive(repo: Path, stubs: Path, work: Path) -> measure.Server:
    command = [sys.executable, "-m", "bench.naive_server", "--models", str(repo)]
    command += ["--stubs", str(stubs), "--http-port", "{http}", "--grpc-port", "{grpc}"]
    return measure.Server.start("naive", command, work / "naive.log")


def write_report(results: dict[str, Any], command: str, out: Path, latest: bool) -> None:
    """<date>-<commit>.md + .json, and latest.md when `latest`. An extras-only run is
    <date>-<commit>-<extras>.md and leaves latest.md alone: it must not replace a full report."""
    text = report.render(results, command)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{results['info']['date'][:10]}-{results['info']['commit']}"
    if only := results["settings"].get("only_extras"):
        stem += "-" + "-".join(only)
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    if latest:
        (out / "latest.md").write_text(text)
    print(f"# wrote {out / (stem + '.md')}" + (f" and {out / 'latest.md'}" if latest else ""))


if __name__ == "__main__":
    main()
