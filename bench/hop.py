"""The gateway-worker hop on its own: what a message costs, and where tensor bytes should go.

Part 1, transports (300-byte messages over a Unix socket, a server subprocess echoing them):
grpc.aio unary calls, a grpc.aio bidirectional stream, and asyncio length-prefixed frames,
one at a time and 32 in flight. CPU per message on each side from getrusage.

Part 2, the real hop: the gateway's HopClient (this process) against a real worker
(`python -m inferencehub worker`, a subprocess) serving an FP32 identity model, for tensors of
several sizes, with the shared-memory arena and with every byte inline (arena_bytes = 0):
latency, and CPU per request of the gateway side (this process) and of the worker (/proc).
That comparison is where INLINE_MAX_BYTES in inferencehub/gateway/hop.py comes from.

    python bench/hop.py [--requests 3000] [--rounds 3]

Medians over rounds; the two sides share this machine's cores, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from inferencehub.config import load_settings  # noqa: E402
from inferencehub.gateway.worker_client import GrpcWorkerClient  # noqa: E402
from inferencehub.protocol.tensors import tensor_from_numpy  # noqa: E402
from inferencehub.runtime import event_loop_factory  # noqa: E402
from inferencehub.v1 import inference_pb2 as pb  # noqa: E402
from inferencehub.v1 import inference_pb2_grpc  # noqa: E402

MESSAGE = pb.PredictRequest(
    model_name="mlp",
    version="1",
    request_id="0123456789abcdef",
    inputs=[pb.Tensor(name="x", datatype="FP32", shape=[1, 64], contents=bytes(256))],
)
SIZES = (256, 4096, 16384, 65536, 602112)  # bytes per tensor; the last is one SqueezeNet input
_FRAME = struct.Struct("<I")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- part 1: transports ------------------------------------------------------------------
class _Echo(inference_pb2_grpc.InferenceServiceServicer):
    async def Predict(self, request: pb.PredictRequest, context: object) -> pb.PredictResponse:
        return pb.PredictResponse(model_name=request.model_name, request_id=request.request_id)


async def _echo_stream(requests: object, context: object) -> object:
    async for request in requests:  # type: ignore[attr-defined]
        yield pb.PredictResponse(model_name=request.model_name, request_id=request.request_id)


async def _serve(address: str, frames_path: str) -> None:
    server = grpc.aio.server()
    inference_pb2_grpc.add_InferenceServiceServicer_to_server(_Echo(), server)
    stream = grpc.stream_stream_rpc_method_handler(
        _echo_stream, pb.PredictRequest.FromString, pb.PredictResponse.SerializeToString
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Stream": stream}),)
    )
    server.add_insecure_port(address)
    await server.start()

    async def frames(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readexactly(4)
            except asyncio.IncompleteReadError:
                return
            request = pb.PredictRequest.FromString(await reader.readexactly(*_FRAME.unpack(head)))
            reply = pb.PredictResponse(
                model_name=request.model_name, request_id=request.request_id
            ).SerializeToString()
            writer.write(_FRAME.pack(len(reply)) + reply)

    unix = await asyncio.start_unix_server(frames, frames_path)
    print("ready", flush=True)
    async with unix:
        await server.wait_for_termination()


async def _transport(kind: str, address: str, frames_path: str, count: int, depth: int) -> float:
    """Messages per second; every message is answered before the run ends."""
    if kind == "frames":
        reader, writer = await asyncio.open_unix_connection(frames_path)
        payload = MESSAGE.SerializeToString()
        frame = _FRAME.pack(len(payload)) + payload

        async def read_all() -> None:
            for _ in range(count):
                head = await reader.readexactly(4)
                pb.PredictResponse.FromString(await reader.readexactly(*_FRAME.unpack(head)))
                gate.release()

        gate = asyncio.Semaphore(depth)
        started = time.perf_counter()
        task = asyncio.create_task(read_all())
        for _ in range(count):
            await gate.acquire()
            writer.write(frame)
        await task
        writer.close()
        return count / (time.perf_counter() - started)
    async with grpc.aio.insecure_channel(address) as channel:
        await channel.channel_ready()
        started = time.perf_counter()
        if kind == "unary":
            stub = inference_pb2_grpc.InferenceServiceStub(channel)

            async def caller() -> None:
                for _ in range(count // depth):
                    await stub.Predict(MESSAGE)

            await asyncio.gather(*(caller() for _ in range(depth)))
            return (count // depth * depth) / (time.perf_counter() - started)
        call = channel.stream_stream(
            "/bench.Echo/Stream",
            request_serializer=pb.PredictRequest.SerializeToString,
            response_deserializer=pb.PredictResponse.FromString,
        )()
        gate = asyncio.Semaphore(depth)

        async def read_stream() -> None:
            for _ in range(count):
                await call.read()
                gate.release()

        task = asyncio.create_task(read_stream())
        for _ in range(count):
            await gate.acquire()
            await call.write(MESSAGE)
        await task
        await call.done_writing()
        return count / (time.perf_counter() - started)


def transports(requests: int, rounds: int, work: Path) -> list[dict[str, object]]:
    address, frames_path = f"unix://{work}/echo.sock", str(work / "frames.sock")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", address, frames_path],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    rows = []
    try:
        for kind in ("unary", "stream", "frames"):
            for depth in (1, 32):
                samples = []
                for _ in range(rounds):
                    client0, server0 = cpu_s(), process_cpu_s(server.pid)
                    rate = _run(_transport(kind, address, frames_path, requests, depth))
                    client1, server1 = cpu_s(), process_cpu_s(server.pid)
                    samples.append(
                        (rate, (client1 - client0) / requests, (server1 - server0) / requests)
                    )
                rows.append(
                    {
                        "transport": kind,
                        "in flight": depth,
                        "msg/s": statistics.median(s[0] for s in samples),
                        "client us/msg": statistics.median(s[1] for s in samples) * 1e6,
                        "server us/msg": statistics.median(s[2] for s in samples) * 1e6,
                    }
                )
    finally:
        server.terminate()
        server.wait()
    return rows


# --- part 2: the real hop ----------------------------------------------------------------
def _identity_repository(root: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = root / "identity" / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(model, path)
    return root


async def _hop(
    address: str, worker: int, arena: int, size: int, requests: int, depth: int
) -> tuple[float, float, float]:
    """(p50 latency s, gateway CPU s per request, worker CPU s per request)."""
    client = GrpcWorkerClient(
        address, max_message_bytes=64 << 20, refresh_s=3600, arena_bytes=arena
    )
    await client.start()
    x = np.random.default_rng(0).random((1, size // 4), dtype=np.float32)

    def request() -> pb.PredictRequest:
        return pb.PredictRequest(
            model_name="identity", version="1", inputs=[tensor_from_numpy("x", x)]
        )

    for _ in range(50):
        await client.predict(request(), 10)
    latencies: list[float] = []

    async def caller() -> None:
        for _ in range(requests // depth):
            started = time.perf_counter()
            await client.predict(request(), 10)
            latencies.append(time.perf_counter() - started)

    gateway0, worker0 = cpu_s(), process_cpu_s(worker)
    await asyncio.gather(*(caller() for _ in range(depth)))
    gateway1, worker1 = cpu_s(), process_cpu_s(worker)
    await client.close()
    done = len(latencies)
    return statistics.median(latencies), (gateway1 - gateway0) / done, (worker1 - worker0) / done


def hop(requests: int, rounds: int, work: Path) -> list[dict[str, object]]:
    repo = _identity_repository(work / "models")
    settings = work / "settings.json"
    load_settings(None, {"worker.models_dir": repo, "worker.repository_poll_s": 0}).to_child_file(
        settings
    )
    address = f"unix://{work}/worker.sock"
    command = [sys.executable, "-m", "inferencehub", "worker", "--settings", str(settings)]
    worker = subprocess.Popen([*command, "--socket", address], stderr=subprocess.DEVNULL)
    rows = []
    try:
        deadline = time.monotonic() + 60
        while not (work / "worker.sock").exists():
            assert time.monotonic() < deadline and worker.poll() is None, "worker did not start"
            time.sleep(0.1)
        time.sleep(2)  # models loaded (the client's first calls would wait anyway)
        for size in SIZES:
            count = requests if size < 100_000 else max(300, requests // 5)
            for depth in (1, 16):
                for arena, path in ((128 << 20, "arena"), (0, "inline")):
                    samples = [
                        _run(_hop(address, worker.pid, arena, size, count, depth))
                        for _ in range(rounds)
                    ]
                    rows.append(
                        {
                            "tensor bytes": size,
                            "in flight": depth,
                            "path": path,
                            "p50 ms": statistics.median(s[0] for s in samples) * 1e3,
                            "gateway us/req": statistics.median(s[1] for s in samples) * 1e6,
                            "worker us/req": statistics.median(s[2] for s in samples) * 1e6,
                        }
                    )
                    print(_format([rows[-1]]).splitlines()[-1], flush=True)
    finally:
        worker.terminate()
        worker.wait()
    return rows


_runner: asyncio.Runner | None = None


def _run(coroutine: object) -> object:
    """Run on this process's one event loop: grpc.aio binds itself to the first loop it
    meets, and a second one makes its poller call into a closed loop."""
    global _runner
    if _runner is None:
        _runner = asyncio.Runner(loop_factory=event_loop_factory("auto"))
    return _runner.run(coroutine)  # type: ignore[arg-type]


def _format(rows: list[dict[str, object]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{v:,.1f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        _run(_serve(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-transports", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ih-hop-", dir="/tmp") as scratch:
        work = Path(scratch)
        if not args.skip_transports:
            print("## Transports: 300-byte messages over a Unix socket\n", flush=True)
            print(_format(transports(args.requests, args.rounds, work)), flush=True)
        print("\n## The hop: HopClient -> worker, FP32 identity\n", flush=True)
        print(_format(hop(args.requests, args.rounds, work)))


if __name__ == "__main__":
    main()
