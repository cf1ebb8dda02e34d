"""Measuring instruments: process-tree CPU and memory from /proc, server lifecycles, and one
load point (perf_analyzer or the built-in generator) with the CPU it cost on each side.

CPU is charged per request from counters read before and after each point: the server
tree's utime+stime, split by role (supervisor, gateway and worker for InferenceHub, told apart
by their argv, so that each process can be held to its own budget), the load generator's
(it is our child: RUSAGE_CHILDREN), and the whole machine's busy time, so that what other
work on this shared box did during the point is on record too.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench import kserve_stubs

ROOT = Path(__file__).resolve().parents[1]
PERF_ANALYZER = ROOT / ".tools" / "perf_analyzer" / "perf_analyzer"
TICK = os.sysconf("SC_CLK_TCK")
MAX_WINDOW_MS = 15_000
# A point's path: http-json | http | grpc, or http-shm | grpc-shm: Triton's system shared
# memory (perf_analyzer --shared-memory system), where the request and the answer carry only
# region names and the tensors stay in POSIX shm objects the client created.
SHM_SUFFIX = "-shm"
# perf_analyzer's output region per output: at least each bench CNN's answer (1,000 FP32 = 4 KB)
SHM_OUTPUT_BYTES = 16 * 1024


def protocol(path: str) -> str:
    """The wire a point's path uses: grpc or http."""
    return "grpc" if path.startswith("grpc") else "http"


def is_shm(path: str) -> bool:
    return path.endswith(SHM_SUFFIX)


# --- /proc -------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (one scan of /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name)
                )
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (threads included), in seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = _stat_fields(pid)
            total += int(fields[11]) + int(fields[12])
    return total / TICK


# `python -m inferencehub SUBCOMMAND ...` (or the `inferencehub` console script): the role
SUBCOMMAND_ROLES = {"up": "supervisor"}


def role_of(argv: list[str], default: str) -> str:
    """A process's role from its argv: InferenceHub's subcommand (`up` is the supervisor;
    `gateway`, `worker`, anything else by its own name), otherwise `default` (the naive or
    floor server: one process). Only argv is relied on, not the server's internals."""
    for i, arg in enumerate(argv):
        module = arg == "-m" and i + 1 < len(argv) and argv[i + 1] == "inferencehub"
        script = i > 0 and Path(arg).name == "inferencehub" and argv[i - 1] != "-m"
        if module or script:
            rest = argv[i + 2 :] if module else argv[i + 1 :]
            sub = next((a for a in rest if not a.startswith("-")), None)
            return SUBCOMMAND_ROLES.get(sub, sub) if sub else default
    return default


def cmdline(pid: int) -> list[str]:
    """argv of `pid` ([] when it is gone or a kernel thread)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def cpu_by_role(pids: list[int], default: str) -> dict[str, float]:
    """utime + stime in seconds, summed per role (several workers add up under `worker`)."""
    out: dict[str, float] = {}
    for pid in pids:
        role = role_of(cmdline(pid), default)
        out[role] = out.get(role, 0.0) + cpu_seconds([pid])
    return out


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(summed RSS, summed PSS) in MB (10^6 bytes); PSS splits shared pages fairly."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss * 1024 / 1e6, pss * 1024 / 1e6


def machine_busy_seconds() -> float:
    """CPU seconds this machine's processes used since boot: user, nice, system, irq and
    softirq from /proc/stat (not idle, iowait, or steal by the hypervisor's other guests)."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / TICK


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- servers -----------------------------------------------------------------------------
@dataclass
class Server:
    """A server process tree we started: InferenceHub (`up`) or the naive server."""

    label: str
    process: subprocess.Popen[bytes]
    http: str  # host:port
    grpc: str
    log: Path

    @classmethod
    def start(cls, label: str, command: list[str], log: Path, **more: Any) -> Server:
        http, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        command = [
            part.format(http=http.split(":")[1], grpc=grpc.split(":")[1]) for part in command
        ]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
            )
        return cls(label, process, http, grpc, log, **more)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.label} exited: {self.log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://{self.http}/v2/health/ready").status_code == 200:
                        return
                time.sleep(0.02)
        raise TimeoutError(f"{self.label} not ready after {timeout_s}s")

    def pids(self) -> list[int]:
        return tree(self.process.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def cpu_by_role(self) -> dict[str, float]:
        return cpu_by_role(self.pids(), self.label)

    def requests(self, model: str) -> tuple[int, int]:
        """(succeeded, failed) infer requests the server counted for `model` (KServe stats)."""
        stats = httpx.get(f"http://{self.http}/v2/models/stats", timeout=10).json()
        ok = failed = 0
        for entry in stats.get("model_stats", []):
            if entry["name"] == model:
                ok += int(entry["inference_stats"]["success"]["count"])
                failed += int(entry["inference_stats"]["fail"]["count"])
        return ok, failed

    def wait_idle(self, timeout_s: float = 60.0, threshold: float = 0.05) -> float:
        """Seconds until the tree uses < threshold of a core (abandoned work drains)."""
        started = time.monotonic()
        last = self.cpu()
        while time.monotonic() - started < timeout_s:
            time.sleep(0.25)
            now = self.cpu()
            if now - last < threshold * 0.25:
                return time.monotonic() - started - 0.25
            last = now
        return timeout_s

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclass
class GrpcOnlyServer(Server):
    """A server without HTTP (the floor server): readiness from gRPC ServerReady and request
    counts from gRPC ModelStatistics, through the bench's own compiled stubs."""

    stubs: Path | None = None

    def _stub(self, channel: grpc.Channel) -> Any:
        pb, pbg = kserve_stubs.load(self.stubs)
        return pb, pbg.GRPCInferenceServiceStub(channel)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.grpc) as channel:
            pb, stub = self._stub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.label} exited: {self.log.read_text()[-3000:]}")
                with contextlib.suppress(grpc.RpcError):
                    if stub.ServerReady(pb.ServerReadyRequest(), timeout=1.0).ready:
                        return
                time.sleep(0.05)
        raise TimeoutError(f"{self.label} not ready after {timeout_s}s")

    def requests(self, model: str) -> tuple[int, int]:
        with grpc.insecure_channel(self.grpc) as channel:
            pb, stub = self._stub(channel)
            reply = stub.ModelStatistics(pb.ModelStatisticsRequest(name=model), timeout=10)
        ok = sum(s.inference_stats.success.count for s in reply.model_stats if s.name == model)
        failed = sum(s.inference_stats.fail.count for s in reply.model_stats if s.name == model)
        return int(ok), int(failed)


# --- load points -------------------------------------------------------------------------
@dataclass
class Load:
    """How to drive one point: tool and measurement windows."""

    tool: str  # perf_analyzer | builtin
    window_ms: int
    trials: int
    stubs: Path
    inputs: dict[str, Path]  # model -> perf_analyzer --input-data file
    ceilings: dict[str, float] = field(default_factory=dict)  # model -> raw ORT best /s

    def window(self, model: str, concurrency: int) -> int:
        """At least `window_ms`, and long enough for ~4 rounds of `concurrency` requests at the
        raw ORT ceiling: a batching server completes requests in bursts, and a window that
        holds none or one of them makes perf_analyzer's windows disagree (ResNet-50, c=64)."""
        ceiling = self.ceilings.get(model)
        if not ceiling:
            return self.window_ms
        return int(max(self.window_ms, min(MAX_WINDOW_MS, 4000 * concurrency / ceiling)))


@dataclass
class Point:
    server: str
    path: str  # http-json | http | grpc
    model: str
    concurrency: int
    tool: str
    throughput: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    note: str = ""
    requests: int = 0
    server_cpu_s: float = 0.0  # the whole tree
    server_cpu_by_role: dict[str, float] = field(default_factory=dict)  # supervisor/gateway/...
    loadgen_cpu_s: float = 0.0
    other_cpu_s: float = 0.0
    wall_s: float = 0.0
    drain_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def per_1k(self, seconds: float) -> float | None:
        return seconds / self.requests * 1000 if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def perf_analyzer_available() -> bool:
    return os.access(PERF_ANALYZER, os.X_OK)


def run_perf_analyzer(
    target: str, path: str, model: str, concurrency: int, load: Load, report: Path
) -> dict[str, Any]:
    """One perf_analyzer run; its CSV gives the figures, its output is kept beside it."""
    report.unlink(missing_ok=True)
    window = load.window(model, concurrency)
    command = [
        str(PERF_ANALYZER),
        *("-m", model, "-u", target, "-i", protocol(path)),
        *("--concurrency-range", f"{concurrency}:{concurrency}"),
        *("-p", str(window), "-r", str(load.trials), "--stability-percentage", "1000"),
        *("--input-data", str(load.inputs[model]), "-f", str(report)),
    ]
    if path == "http-json":
        command += ["--input-tensor-format", "json", "--output-tensor-format", "json"]
    if is_shm(path):
        command += ["--shared-memory", "system"]
        command += ["--output-shared-memory-size", str(SHM_OUTPUT_BYTES)]
    limit = window / 1000 * (load.trials + 2) + 60
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        return {"failed": f"perf_analyzer timed out after {limit:.0f}s"}
    output = done.stdout + done.stderr
    report.with_suffix(".log").write_text(f"{shlex.join(command)}\nrc={done.returncode}\n{output}")
    rows = list(csv.DictReader(report.read_text().splitlines())) if report.exists() else []
    if done.returncode != 0 or not rows:
        lines = [ln for ln in output.splitlines() if re.search(r"error|fail", ln, re.I)]
        lines = lines or [ln for ln in output.splitlines() if ln.strip()][-2:]
        why = " | ".join(ln.strip() for ln in lines[-3:])[:300]
        return {"failed": f"perf_analyzer rc={done.returncode} ({report.name}): {why}"}
    row = rows[0]
    return {
        "throughput": float(row["Inferences/Second"]),
        "p50_ms": float(row["p50 latency"]) / 1000,
        "p99_ms": float(row["p99 latency"]) / 1000,
        "errors": 0,
        "window_ms": window,
    }


def run_builtin(args: list[str], timeout_s: float) -> dict[str, Any]:
    """`python -m bench.loadgen ARGS` in its own process; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        return {"failed": f"loadgen rc={done.returncode}: {done.stderr.strip()[-300:]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def builtin_args(
    target: str, path: str, model: Any, concurrency: int, stubs: Path, duration: float
) -> list[str]:
    return [
        *("load", "--protocol", path, "--target", target, "--model", model.name),
        *("--input-name", model.input_name, "--shape", ",".join(map(str, model.batch1_shape))),
        *("--concurrency", str(concurrency), "--duration", str(duration), "--stubs", str(stubs)),
    ]


def role_deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each role used between two readings. A role whose processes were replaced
    meanwhile (a restarted worker starts from 0) could go negative: clamped, never invented."""
    return {role: max(0.0, after.get(role, 0.0) - before.get(role, 0.0)) for role in after}


def _counters(server: Server) -> tuple[dict[str, float], tuple[float, float, float, float]]:
    """CPU by role, and (server CPU, load generator CPU, machine busy, wall clock) now."""
    roles = server.cpu_by_role()
    return roles, (
        sum(roles.values()),
        children_cpu_seconds(),
        machine_busy_seconds(),
        time.monotonic(),
    )


def measure_point(
    server: Server, path: str, model: Any, concurrency: int, load: Load, scratch: Path
) -> Point:
    """One (server, path, model, concurrency) point. perf_analyzer aborts on the first failed
    request; the point is then rerun with the built-in generator, which counts failures.
    Shared-memory points have no such fallback: the built-in generator sends the tensors in the
    request, so its figures would be a binary point's under a shared-memory label."""
    target = server.grpc if protocol(path) == "grpc" else server.http
    tools = ["perf_analyzer", "builtin"] if load.tool == "perf_analyzer" else ["builtin"]
    if is_shm(path):
        tools = tools[:1] if load.tool == "perf_analyzer" else []
    point = Point(server.label, path, model.name, concurrency, load.tool)
    notes = [] if tools else ["system shared memory needs perf_analyzer: not measured"]
    for tool in tools:
        point = Point(server.label, path, model.name, concurrency, tool)
        point.extra["window_ms"] = load.window(model.name, concurrency)
        roles_before, before = _counters(server)
        counted = server.requests(model.name)
        if tool == "perf_analyzer":
            report = scratch / f"pa-{server.label}-{model.name}-{path}-{concurrency}.csv"
            result = run_perf_analyzer(target, path, model.name, concurrency, load, report)
        else:
            duration = load.window(model.name, concurrency) / 1000 * load.trials
            args = builtin_args(target, path, model, concurrency, load.stubs, duration)
            result = run_builtin(args, timeout_s=duration + 120)
            keep = ("error_kinds", "rejected", "deadline_exceeded")
            point.extra.update({k: v for k, v in result.items() if k in keep})
        roles_after, after = _counters(server)
        ok, failed = (b - a for b, a in zip(server.requests(model.name), counted, strict=True))
        point.drain_s = server.wait_idle()
        if "failed" in result:
            notes.append(result["failed"])
            point.errors = failed
            point.extra["server_ok"] = ok  # answered, though the client gave up on them
            continue
        point.throughput = result["throughput"]
        point.p50_ms, point.p99_ms = result["p50_ms"], result["p99_ms"]
        point.errors = max(int(result.get("errors", 0)), failed)
        point.requests = ok + failed
        point.server_cpu_s = after[0] - before[0]
        point.server_cpu_by_role = role_deltas(roles_before, roles_after)
        point.loadgen_cpu_s = after[1] - before[1]
        point.wall_s = after[3] - before[3]
        busy = after[2] - before[2]
        point.other_cpu_s = max(0.0, busy - point.server_cpu_s - point.loadgen_cpu_s)
        break
    point.note = "; ".join(notes)
    return point
