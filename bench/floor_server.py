"""The floor: a grpc.aio KServe v2 server that does nothing, to judge CPU budgets against.

It serves the bench `mlp` model's signature (x: FP32 [-1,64] -> y: FP32 [-1,16]) well enough
for perf_analyzer (ServerLive/Ready, ModelReady, ServerMetadata without extensions,
ModelMetadata, ModelConfig) and answers every ModelInfer with a zero `y` of shape [batch,16],
computing nothing. Whatever CPU it spends per request is what grpc.aio itself costs per unary
call on this machine: no server built on grpc.aio (InferenceHub's gateway included) can spend
less. It counts ModelInfer calls and reports them through ModelStatistics, so CPU per request
is computed like every other server's. No HTTP side, and it does not import `inferencehub`:
its stubs are compiled from the proto like the naive server's (kserve_stubs.py). uvloop is
used when installed, as InferenceHub's gateway does.

    python -m bench.floor_server --grpc-port 8102 [--stubs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from bench import kserve_stubs

NAME, VERSION, MODEL = "floor", "1", "mlp"
INPUT, OUTPUT = ("x", 64), ("y", 16)  # (name, features); the batch dimension is dynamic
MAX_BATCH = 64
MAX_MESSAGE = 64 * 1024 * 1024


def servicer(pb: Any, pbg: Any) -> Any:
    """GRPCInferenceService for the one model; the stubs are compiled at run time."""
    zeros: dict[int, bytes] = {}  # batch -> the y bytes: built once, not per request

    class Servicer(pbg.GRPCInferenceServiceServicer):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.success = 0

        async def ServerLive(self, request: Any, context: Any) -> Any:
            return pb.ServerLiveResponse(live=True)

        async def ServerReady(self, request: Any, context: Any) -> Any:
            return pb.ServerReadyResponse(ready=True)

        async def ModelReady(self, request: Any, context: Any) -> Any:
            return pb.ModelReadyResponse(ready=request.name == MODEL)

        async def ServerMetadata(self, request: Any, context: Any) -> Any:
            # no extensions: perf_analyzer then asks for no statistics during the run
            return pb.ServerMetadataResponse(name=NAME, version=VERSION)

        async def ModelMetadata(self, request: Any, context: Any) -> Any:
            await self._known(request.name, context)
            response = pb.ModelMetadataResponse(
                name=MODEL, versions=[VERSION], platform="onnxruntime_onnx"
            )
            response.inputs.add(name=INPUT[0], datatype="FP32", shape=[-1, INPUT[1]])
            response.outputs.add(name=OUTPUT[0], datatype="FP32", shape=[-1, OUTPUT[1]])
            return response

        async def ModelConfig(self, request: Any, context: Any) -> Any:
            await self._known(request.name, context)
            config = pb.ModelConfig(
                name=MODEL,
                platform="onnxruntime_onnx",
                backend="onnxruntime",
                max_batch_size=MAX_BATCH,
            )
            config.input.add(name=INPUT[0], data_type="TYPE_FP32", dims=[INPUT[1]])
            config.output.add(name=OUTPUT[0], data_type="TYPE_FP32", dims=[OUTPUT[1]])
            return pb.ModelConfigResponse(config=config)

        async def ModelStatistics(self, request: Any, context: Any) -> Any:
            response = pb.ModelStatisticsResponse()
            if request.name in ("", MODEL):
                stats = response.model_stats.add(name=MODEL, version=VERSION)
                stats.inference_count = stats.execution_count = self.success
                stats.inference_stats.success.count = self.success
            return response

        async def ModelInfer(self, request: Any, context: Any) -> Any:
            inputs = request.inputs
            batch = int(inputs[0].shape[0]) if inputs and inputs[0].shape else 1
            if batch not in zeros:
                zeros[batch] = bytes(4 * OUTPUT[1] * batch)
            self.success += 1
            response = pb.ModelInferResponse(model_name=MODEL, model_version=VERSION, id=request.id)
            response.outputs.add(name=OUTPUT[0], datatype="FP32", shape=[batch, OUTPUT[1]])
            response.raw_output_contents.append(zeros[batch])
            return response

        async def _known(self, name: str, context: Any) -> None:
            if name != MODEL:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {name}")

    return Servicer()


async def serve(args: argparse.Namespace) -> None:
    pb, pbg = kserve_stubs.load(args.stubs)
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    server = grpc.aio.server(options=options)
    pbg.add_GRPCInferenceServiceServicer_to_server(servicer(pb, pbg), server)
    server.add_insecure_port(f"{args.host}:{args.grpc_port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1.0)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (as InferenceHub's gateway picks it by default), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=8102)
    parser.add_argument("--stubs", type=Path, help="generated KServe stubs (default: temp dir)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory()) as r:
        r.run(serve(args))


if __name__ == "__main__":
    main()
