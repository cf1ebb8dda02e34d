"""The one-process server a user would write instead of InferenceHub: the baseline to beat.

FastAPI + uvicorn for KServe v2 HTTP (JSON and the binary tensor extension, so perf_analyzer
works), a grpc.aio KServe v2 server on the same event loop, and ONNX Runtime with its default
session options run through `loop.run_in_executor` (asyncio's default thread pool). No
batching, no admission control, no process split: deliberately the obvious design, written
with care (orjson, no access log) so that it is a fair baseline rather than a straw man.

    python -m bench.naive_server --models DIR --http-port 8100 --grpc-port 8101
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

from bench import kserve_stubs

NAME, VERSION = "naive", "1"
ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(uint8)": "UINT8",
    "tensor(int8)": "INT8",
    "tensor(bool)": "BOOL",
}
NUMPY = {
    "FP32": np.float32,
    "FP64": np.float64,
    "FP16": np.float16,
    "INT64": np.int64,
    "INT32": np.int32,
    "UINT8": np.uint8,
    "INT8": np.int8,
    "BOOL": np.bool_,
}
DATATYPE = {np.dtype(v): k for k, v in NUMPY.items()}
CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents"}
CONTENTS.update(INT32="int_contents", UINT8="uint_contents", INT8="int_contents")
MAX_MESSAGE = 64 * 1024 * 1024
HEADER = "inference-header-content-length"


class BadRequest(ValueError):
    """The client's fault: 400 over HTTP, INVALID_ARGUMENT over gRPC."""


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]


@dataclass
class Served:
    """One model: its highest version's ORT session and signature."""

    name: str
    session: ort.InferenceSession
    inputs: list[Tensor]
    outputs: list[Tensor]
    success: int = 0
    failure: int = 0

    async def infer(self, feeds: dict[str, np.ndarray], wanted: list[str]) -> dict[str, Any]:
        names = wanted or [t.name for t in self.outputs]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(None, self.session.run, names, feeds)
        except Exception as exc:  # ORT reports shape/type errors as generic exceptions
            self.failure += 1
            raise BadRequest(str(exc)) from exc
        self.success += 1
        return dict(zip(names, results, strict=True))


def signature(args: list[Any]) -> list[Tensor]:
    """ORT's NodeArgs as KServe tensors; symbolic dimensions become -1."""
    return [
        Tensor(a.name, ORT_TYPES[a.type], [d if isinstance(d, int) else -1 for d in a.shape])
        for a in args
    ]


def load_models(root: Path, intra_op_threads: int) -> dict[str, Served]:
    models = {}
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        versions = [v for v in model_dir.iterdir() if v.name.isdigit()]
        versions = [v for v in versions if (v / "model.onnx").exists()]
        if not versions:
            continue
        path = max(versions, key=lambda v: int(v.name)) / "model.onnx"
        options = ort.SessionOptions()
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        models[model_dir.name] = Served(
            model_dir.name,
            session,
            signature(session.get_inputs()),
            signature(session.get_outputs()),
        )
    return models


def metadata(model: Served) -> dict[str, Any]:
    def tensors(ts: list[Tensor]) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": t.datatype, "shape": t.shape} for t in ts]

    return {
        "name": model.name,
        "versions": [VERSION],
        "platform": "onnxruntime_onnx",
        "inputs": tensors(model.inputs),
        "outputs": tensors(model.outputs),
    }


def config(model: Served) -> dict[str, Any]:
    """Triton-style config: a dynamic first dimension becomes max_batch_size."""
    batched = all(t.shape and t.shape[0] == -1 for t in model.inputs + model.outputs)

    def dims(t: Tensor) -> list[int]:
        return t.shape[1:] if batched else t.shape

    return {
        "name": model.name,
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": 64 if batched else 0,
        "input": [
            {"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": dims(t)}
            for t in model.inputs
        ],
        "output": [
            {"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": dims(t)}
            for t in model.outputs
        ],
    }


def to_array(
    datatype: str, shape: list[int], data: Any = None, raw: bytes | None = None
) -> np.ndarray:
    if datatype not in NUMPY:
        raise BadRequest(f"unsupported datatype {datatype}")
    try:
        if raw is not None:
            return np.frombuffer(raw, NUMPY[datatype]).reshape(shape)
        return np.asarray(data, NUMPY[datatype]).reshape(shape)
    except ValueError as exc:
        raise BadRequest(f"tensor does not match shape {shape}: {exc}") from exc


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def http_app(models: dict[str, Served]) -> FastAPI:
    app = FastAPI(title="naive KServe v2 server", openapi_url=None, docs_url=None)

    def model_or_404(name: str) -> Served:
        if name not in models:
            raise BadRequest(f"unknown model {name}")
        return models[name]

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> Response:
        status = 404 if str(exc).startswith("unknown model") else 400
        return json_response({"error": str(exc)}, status)

    @app.get("/v2")
    async def server_metadata() -> Response:
        return json_response({"name": NAME, "version": VERSION, "extensions": []})

    @app.get("/v2/health/live")
    @app.get("/v2/health/ready")
    async def health() -> Response:
        return json_response({})

    @app.get("/v2/models/stats")
    async def stats() -> Response:
        return json_response(
            {
                "model_stats": [
                    {
                        "name": m.name,
                        "version": VERSION,
                        "inference_stats": {
                            "success": {"count": m.success},
                            "fail": {"count": m.failure},
                        },
                    }
                    for m in models.values()
                ]
            }
        )

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(name: str) -> Response:
        return json_response(metadata(model_or_404(name)))

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(name: str) -> Response:
        return json_response({"name": model_or_404(name).name, "ready": True})

    @app.get("/v2/models/{name}/config")
    @app.get("/v2/models/{name}/versions/{version}/config")
    async def model_config(name: str) -> Response:
        return json_response(config(model_or_404(name)))

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request) -> Response:
        model = model_or_404(name)
        body = await request.body()
        header_length = int(request.headers.get(HEADER, len(body)))
        try:
            header = orjson.loads(body[:header_length])
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from exc
        offset, feeds = header_length, {}
        for spec in header.get("inputs", []):
            size = spec.get("parameters", {}).get("binary_data_size")
            raw = body[offset : offset + size] if size is not None else None
            offset += size or 0
            feeds[spec["name"]] = to_array(spec["datatype"], spec["shape"], spec.get("data"), raw)
        requested = header.get("outputs", [])
        binary_default = header.get("parameters", {}).get("binary_data_output", False)
        binary = {
            o["name"]: o.get("parameters", {}).get("binary_data", binary_default) for o in requested
        }
        results = await model.infer(feeds, [o["name"] for o in requested])
        outputs, chunks = [], []
        for out_name, array in results.items():
            entry: dict[str, Any] = {
                "name": out_name,
                "datatype": DATATYPE[array.dtype],
                "shape": list(array.shape),
            }
            if binary.get(out_name, binary_default):
                chunk = np.ascontiguousarray(array).tobytes()
                entry["parameters"] = {"binary_data_size": len(chunk)}
                chunks.append(chunk)
            else:
                entry["data"] = array.ravel().tolist()
            outputs.append(entry)
        head = orjson.dumps({"model_name": name, "model_version": VERSION, "outputs": outputs})
        if not chunks:
            return Response(head, media_type="application/json")
        return Response(
            b"".join([head, *chunks]),
            media_type="application/octet-stream",
            headers={HEADER: str(len(head))},
        )

    return app


def grpc_servicer(pb: Any, pbg: Any, models: dict[str, Served]) -> Any:
    """A GRPCInferenceService implementation over the same models (stubs load at run time)."""

    async def lookup(name: str, context: grpc.aio.ServicerContext) -> Served:
        if name not in models:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {name}")
        return models[name]

    class Servicer(pbg.GRPCInferenceServiceServicer):  # type: ignore[misc, name-defined]
        async def ServerLive(self, request: Any, context: Any) -> Any:
            return pb.ServerLiveResponse(live=True)

        async def ServerReady(self, request: Any, context: Any) -> Any:
            return pb.ServerReadyResponse(ready=True)

        async def ModelReady(self, request: Any, context: Any) -> Any:
            return pb.ModelReadyResponse(ready=request.name in models)

        async def ServerMetadata(self, request: Any, context: Any) -> Any:
            return pb.ServerMetadataResponse(name=NAME, version=VERSION)

        async def ModelMetadata(self, request: Any, context: Any) -> Any:
            meta = metadata(await lookup(request.name, context))
            response = pb.ModelMetadataResponse(
                name=meta["name"], versions=meta["versions"], platform=meta["platform"]
            )
            for key in ("inputs", "outputs"):
                for t in meta[key]:
                    getattr(response, key).add(**t)
            return response

        async def ModelConfig(self, request: Any, context: Any) -> Any:
            conf = config(await lookup(request.name, context))
            message = pb.ModelConfig(
                name=conf["name"],
                platform=conf["platform"],
                backend=conf["backend"],
                max_batch_size=conf["max_batch_size"],
            )
            for t in conf["input"]:
                message.input.add(name=t["name"], data_type=t["data_type"], dims=t["dims"])
            for t in conf["output"]:
                message.output.add(name=t["name"], data_type=t["data_type"], dims=t["dims"])
            return pb.ModelConfigResponse(config=message)

        async def ModelInfer(self, request: Any, context: Any) -> Any:
            model = await lookup(request.model_name, context)
            try:
                feeds = {}
                for i, t in enumerate(request.inputs):
                    if request.raw_input_contents:
                        raw = request.raw_input_contents[i]
                        feeds[t.name] = to_array(t.datatype, list(t.shape), raw=raw)
                    else:
                        data = getattr(t.contents, CONTENTS.get(t.datatype, "fp32_contents"))
                        feeds[t.name] = to_array(t.datatype, list(t.shape), data)
                results = await model.infer(feeds, [o.name for o in request.outputs])
            except (BadRequest, IndexError) as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            response = pb.ModelInferResponse(
                model_name=model.name, model_version=VERSION, id=request.id
            )
            for out_name, array in results.items():
                response.outputs.add(
                    name=out_name,
                    datatype=DATATYPE[array.dtype],
                    shape=list(array.shape),
                )
                response.raw_output_contents.append(np.ascontiguousarray(array).tobytes())
            return response

    return Servicer()


async def serve(args: argparse.Namespace) -> None:
    models = load_models(args.models, args.intra_op_threads)
    pb, pbg = kserve_stubs.load(args.stubs)
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    grpc_server = grpc.aio.server(options=options)
    pbg.add_GRPCInferenceServiceServicer_to_server(grpc_servicer(pb, pbg, models), grpc_server)
    grpc_server.add_insecure_port(f"{args.host}:{args.grpc_port}")
    await grpc_server.start()
    http = uvicorn.Server(
        uvicorn.Config(
            http_app(models),
            host=args.host,
            port=args.http_port,
            log_level="warning",
            access_log=False,
        )
    )
    try:
        await http.serve()  # returns on SIGINT/SIGTERM
    finally:
        await grpc_server.stop(grace=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="NAME/VERSION/model.onnx")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=8100)
    parser.add_argument("--grpc-port", type=int, default=8101)
    parser.add_argument("--stubs", type=Path, help="generated KServe stubs (default: temp dir)")
    parser.add_argument(
        "--intra-op-threads", type=int, default=0, help="0 = ONNX Runtime's default"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
