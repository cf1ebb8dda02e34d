"""Built-in closed-loop KServe v2 load generator: the fallback for perf_analyzer, and the tool
for what perf_analyzer cannot do (per-request deadlines, counting rejections, probing).

Runs as its own process so the bench can charge its CPU to the load generator, and prints
one JSON object. It never imports InferenceHub: gRPC messages come from stubs compiled from
the proto (bench/kserve_stubs.py), and each request is serialized once up front.

    python -m bench.loadgen load --protocol grpc --target 127.0.0.1:8001 --model mlp \
        --input-name x --shape 1,64 --concurrency 16 --duration 5 [--deadline 2]
    python -m bench.loadgen probe --url http://127.0.0.1:8000/v2/health/ready --count 100

With `--rate R` each of the concurrent loops paces itself so that together they send at most R
requests a second (the soak's moderate load); `--trace FILE` writes every request's end
(time.monotonic(), shared by all processes on Linux), latency and outcome as CSV.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import orjson

from bench import kserve_stubs

INFER_METHOD = "/inference.GRPCInferenceService/ModelInfer"
REJECT_GRPC = {"RESOURCE_EXHAUSTED", "UNAVAILABLE"}
REJECT_HTTP = {"429", "503"}
MAX_MESSAGE = 64 * 1024 * 1024
STREAMS_PER_CHANNEL = 64


def next_due(due: float, interval: float, sent: float) -> float:
    """When a paced loop sends next: one interval after its last slot, but never earlier than
    that last send, so a loop that fell behind (a slow answer, an outage) sends at once and then
    keeps its pace, instead of bursting to repay every slot it missed."""
    return max(due + interval, sent)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Tally:
    """Outcomes of requests that finished inside the measurement window."""

    ok: list[float] = field(default_factory=list)  # latencies in ms
    rejected: list[float] = field(default_factory=list)
    deadline: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # every request, warm-up and stragglers included
    ok_total: int = 0

    def add(self, outcome: str, ms: float, reject: set[str]) -> None:
        if outcome == "OK":
            self.ok.append(ms)
        elif outcome == "DEADLINE_EXCEEDED":
            self.deadline.append(ms)
        else:
            if outcome in reject:
                self.rejected.append(ms)
            self.errors[outcome] = self.errors.get(outcome, 0) + 1

    def summary(self, duration_s: float, deadline_s: float | None) -> dict[str, Any]:
        late = [ms for ms in self.ok if deadline_s and ms > deadline_s * 1e3]
        return {
            "ok": len(self.ok),
            "throughput": len(self.ok) / duration_s,
            "p50_ms": percentile(self.ok, 50),
            "p99_ms": percentile(self.ok, 99),
            "errors": sum(self.errors.values()) + len(self.deadline),
            "error_kinds": self.errors,
            "rejected": len(self.rejected),
            "rejected_p50_ms": percentile(self.rejected, 50),
            "rejected_p99_ms": percentile(self.rejected, 99),
            "rejected_max_ms": max(self.rejected, default=None),
            "deadline_exceeded": len(self.deadline),
            "late_ok": len(late),
            "sent_total": self.sent,
            "ok_total": self.ok_total,
        }


def infer_bodies(args: argparse.Namespace) -> tuple[bytes, dict[str, str]]:
    """The one request every worker sends, serialized once: U[0,1) values."""
    shape = [int(d) for d in args.shape.split(",")]
    data = np.random.default_rng(0).random(shape, dtype=np.float32)
    if args.protocol == "grpc":
        pb, _ = kserve_stubs.load(args.stubs)
        request = pb.ModelInferRequest(model_name=args.model)
        request.inputs.add(name=args.input_name, datatype="FP32", shape=shape)
        request.raw_input_contents.append(data.tobytes())
        return request.SerializeToString(), {}
    tensor: dict[str, Any] = {"name": args.input_name, "datatype": "FP32", "shape": shape}
    if args.protocol == "http-json":
        tensor["data"] = data.ravel().tolist()
        return orjson.dumps({"inputs": [tensor]}), {"content-type": "application/json"}
    raw = data.tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    head = orjson.dumps({"inputs": [tensor], "parameters": {"binary_data_output": True}})
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
    return head + raw, headers


async def run_load(args: argparse.Namespace) -> dict[str, Any]:
    body, headers = infer_bodies(args)
    start = time.perf_counter()
    window_start = start + args.warmup
    end = window_start + args.duration
    tally = Tally()
    deadline = args.deadline
    trace: list[tuple[float, float, str]] = []
    interval = args.concurrency / args.rate if args.rate else 0.0

    if args.protocol == "grpc":
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel
        ]
        channels = [
            grpc.aio.insecure_channel(args.target, options=options)
            for _ in range(1 + (args.concurrency - 1) // STREAMS_PER_CHANNEL)
        ]
        calls = [ch.unary_unary(INFER_METHOD) for ch in channels]  # bytes in, bytes out
        reject = REJECT_GRPC

        async def one(i: int) -> str:
            try:
                await calls[i % len(calls)](body, timeout=deadline)
            except grpc.aio.AioRpcError as exc:
                return exc.code().name
            return "OK"
    else:
        url = f"http://{args.target}/v2/models/{args.model}/infer"
        limits = httpx.Limits(max_connections=args.concurrency)
        client = httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(None),
            headers={"accept-encoding": "identity"},  # as perf_analyzer: no gzip round trip
        )
        reject = REJECT_HTTP

        async def one(i: int) -> str:
            try:
                async with asyncio.timeout(deadline):
                    response = await client.post(url, content=body, headers=headers)
                    await response.aread()
            except TimeoutError:
                return "DEADLINE_EXCEEDED"
            except httpx.HTTPError as exc:
                return type(exc).__name__
            return "OK" if response.status_code == 200 else str(response.status_code)

    async def worker(i: int) -> None:
        due = start + i * interval / args.concurrency  # the loops' slots interleave
        while (sent := time.perf_counter()) < end:
            if interval:
                if due > sent:
                    await asyncio.sleep(due - sent)
                    if (sent := time.perf_counter()) >= end:
                        break
                due = next_due(due, interval, sent)
            tally.sent += 1
            outcome = await one(i)
            done = time.perf_counter()
            tally.ok_total += outcome == "OK"
            if window_start <= done <= end:
                tally.add(outcome, (done - sent) * 1e3, reject)
            if args.trace:
                trace.append((time.monotonic(), (done - sent) * 1e3, outcome))

    tasks = [asyncio.create_task(worker(i)) for i in range(args.concurrency)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=end - time.perf_counter() + 0.5)
    if args.protocol == "grpc":
        for channel in channels:
            await channel.close()
    else:
        await client.aclose()
    if args.trace:
        args.trace.write_text("".join(f"{t:.4f},{ms:.3f},{o}\n" for t, ms, o in trace))
    return tally.summary(args.duration, deadline)


def run_probe(args: argparse.Namespace) -> dict[str, Any]:
    """Sequential GETs (health checks): latency of the door, not of the model."""
    latencies, errors = [], 0
    with httpx.Client(timeout=10.0) as client:
        client.get(args.url)  # connect outside the measurement
        for _ in range(args.count):
            started = time.perf_counter()
            try:
                ok = client.get(args.url).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1e3)
            errors += not ok
            time.sleep(args.interval)
    return {
        "count": len(latencies),
        "errors": errors,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    load = sub.add_parser("load", help="closed-loop infer requests at a fixed concurrency")
    load.add_argument("--protocol", choices=["grpc", "http", "http-json"], default="grpc")
    load.add_argument("--target", required=True, help="host:port")
    load.add_argument("--model", required=True)
    load.add_argument("--input-name", required=True)
    load.add_argument("--shape", required=True, help="with the batch dim, e.g. 1,64")
    load.add_argument("--concurrency", type=int, default=1)
    load.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    load.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    load.add_argument("--deadline", type=float, help="per-request deadline in seconds")
    load.add_argument("--stubs", type=Path, help="generated KServe stubs directory")
    load.add_argument("--rate", type=float, help="pace: at most this many requests/s in all")
    load.add_argument("--trace", type=Path, help="write each request as CSV: t,ms,outcome")
    probe = sub.add_parser("probe", help="sequential GETs of one URL")
    probe.add_argument("--url", required=True)
    probe.add_argument("--count", type=int, default=100)
    probe.add_argument("--interval", type=float, default=0.01, help="pause between GETs (s)")
    args = parser.parse_args()
    result = asyncio.run(run_load(args)) if args.mode == "load" else run_probe(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
