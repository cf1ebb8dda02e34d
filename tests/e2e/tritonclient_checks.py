"""KServe v2 checks with the real Triton clients (tritonclient.http, tritonclient.grpc).

Run as a subprocess by tests/e2e/test_kserve_clients.py: tritonclient's generated protobuf
messages (package `inference`) clash with InferenceHub's own in one process, so this script
never imports inferencehub (nor anything under tests/), and the pytest process never imports
tritonclient.

    python tests/e2e/tritonclient_checks.py --http http://127.0.0.1:8000 \
        --grpc 127.0.0.1:8001 --out results.json [--check NAME ...] [--list]

It expects the repository built by tests/e2e/kserve_models.py (build_kserve_repository, then
add_late_model after start-up). Every check records {"ok": bool, "detail": str}; one check
failing or raising never stops the others, and the JSON file is rewritten after each check
so that a run killed half-way still reports what it did.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException, deserialize_bytes_tensor

# --- the repository (mirrors tests/e2e/kserve_models.py; not imported, see above) ----------

DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
CONFIG_TYPE = {dt: f"TYPE_{dt}" for dt in DATATYPES} | {"BYTES": "TYPE_STRING"}
# gRPC InferTensorContents field per datatype (FP16 has none: raw only).
TYPED_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
SCALE_FACTORS = {
    "1": np.array([1, 2, 3, 4], np.float32),
    "2": np.array([10, 20, 30, 40], np.float32),
}
LATE_FACTORS = np.array([5, 6, 7, 8], np.float32)
MAX_BATCH_SIZE = 64
TIMEOUT_S = 20.0


def id_model(dt: str) -> str:
    return f"id_{dt.lower()}"


def sample(dt: str, json_safe: bool = False) -> np.ndarray:
    """A [2, 3] tensor of `dt` with the edge values of the type (bit patterns matter)."""
    rows: dict[str, list[list[Any]]] = {
        "BOOL": [[True, False, True], [False, True, True]],
        "UINT8": [[0, 1, 255], [128, 7, 254]],
        "UINT16": [[0, 1, 65535], [32768, 7, 1234]],
        "UINT32": [[0, 1, 2**32 - 1], [2**31, 7, 123456789]],
        "UINT64": [[0, 1, 2**64 - 1], [2**63, 7, 2**53 + 1]],
        "INT8": [[-128, 0, 127], [-1, 1, 42]],
        "INT16": [[-32768, 0, 32767], [-1, 1, 4242]],
        "INT32": [[-(2**31), 0, 2**31 - 1], [-1, 1, 123456789]],
        "INT64": [[-(2**63), 0, 2**63 - 1], [-1, 1, 2**53 + 1]],
        "FP16": [[0.1, -65504.0, 6e-8], [-0.0, 1.5, 3.14159]],
        "FP32": [[0.1, -3.4028235e38, 1e-45], [-0.0, 1.5, 16777215.0]],
        "FP64": [[0.1, -1.7976931348623157e308, 5e-324], [-0.0, 1.5, 2.0**53 + 2]],
    }
    if dt == "BYTES":
        # ONNX string tensors hold UTF-8 text (see the *_BYTES_non_utf8 checks); NUL is fine.
        third = b'tab\t quote" backslash\\' if json_safe else b"nul\x00inside"
        values = [[b"", b"a", third], ["ünïcødé ✓".encode(), b"x" * 300, b"hello world"]]
        array = np.empty((2, 3), dtype=np.object_)
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                array[i, j] = value
        return array
    return np.array(rows[dt], dtype=NUMPY[dt])


# --- results -------------------------------------------------------------------------------


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def bytes_list(array: np.ndarray) -> list[bytes]:
    return [v.encode() if isinstance(v, str) else bytes(v) for v in array.reshape(-1)]


def describe(array: np.ndarray | None) -> str:
    if array is None:
        return "None"
    flat = array.reshape(-1)
    shown = bytes_list(flat[:6]) if array.dtype == np.object_ else flat[:6].tolist()
    return f"{array.dtype}{list(array.shape)} {shown}{'...' if flat.size > 6 else ''}"


def expect_equal(got: np.ndarray | None, expected: np.ndarray, what: str) -> None:
    """Bit-exact: same shape, same dtype, same bytes (BYTES: same byte strings)."""
    expect(got is not None, f"{what}: output missing")
    assert got is not None
    expect(
        list(got.shape) == list(expected.shape),
        f"{what}: shape {list(got.shape)}, expected {list(expected.shape)}",
    )
    if expected.dtype == np.object_:
        got_list, want_list = bytes_list(got), bytes_list(expected)
        wrong = [
            (i, g, w) for i, (g, w) in enumerate(zip(got_list, want_list, strict=True)) if g != w
        ]
        shown = "; ".join(f"[{i}] got {g[:40]!r}, expected {w[:40]!r}" for i, g, w in wrong[:3])
        expect(not wrong, f"{what}: {len(wrong)} of {len(want_list)} elements differ: {shown}")
        return
    expect(got.dtype == expected.dtype, f"{what}: dtype {got.dtype}, expected {expected.dtype}")
    expect(
        np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes(),
        f"{what}: got {describe(got)}, expected {describe(expected)}",
    )


def expect_http_error(call: Callable[[], Any], status: int) -> str:
    try:
        result = call()
    except InferenceServerException as exc:
        expect(
            exc.status() == str(status),
            f"HTTP status {exc.status()} ({exc.message()!r}), expected {status}",
        )
        expect(bool(exc.message()), f"HTTP {status} without an error message")
        return f"HTTP {status}: {exc.message()}"
    raise CheckFailed(f"succeeded ({_short(result)}), expected HTTP {status}")


def expect_grpc_error(call: Callable[[], Any], code: str) -> str:
    """`call` uses tritonclient.grpc (InferenceServerException) or the raw stub (RpcError)."""
    try:
        result = call()
    except InferenceServerException as exc:
        got, message = exc.status(), exc.message()
    except grpc.RpcError as exc:
        got, message = str(exc.code()), exc.details()
    else:
        raise CheckFailed(f"succeeded ({_short(result)}), expected {code}")
    expect(got == f"StatusCode.{code}", f"gRPC {got} ({message!r}), expected {code}")
    expect(bool(message), f"gRPC {code} without an error message")
    return f"{code}: {message}"


def _short(value: Any) -> str:
    if hasattr(value, "get_response"):
        value = value.get_response()
    text = str(value).replace("\n", " ")
    return text[:300]


# --- clients ---------------------------------------------------------------------------------


class Ctx:
    def __init__(self, http_url: str, grpc_target: str) -> None:
        self.http_url = http_url
        self.grpc_target = grpc_target
        host = http_url.split("://", 1)[-1].rstrip("/")
        self.http = httpclient.InferenceServerClient(
            host, concurrency=4, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S
        )
        self.grpc = grpcclient.InferenceServerClient(grpc_target)
        self.channel = grpc.insecure_channel(grpc_target)
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)

    def close(self) -> None:
        for closer in (self.http.close, self.grpc.close, self.channel.close):
            try:
                closer()
            except Exception:
                pass  # closing is best effort


def http_input(name: str, array: np.ndarray, dt: str, binary: bool) -> httpclient.InferInput:
    inp = httpclient.InferInput(name, list(array.shape), dt)
    inp.set_data_from_numpy(array, binary_data=binary)
    return inp


def grpc_input(name: str, array: np.ndarray, dt: str) -> grpcclient.InferInput:
    inp = grpcclient.InferInput(name, list(array.shape), dt)
    inp.set_data_from_numpy(array)
    return inp


def http_infer(
    ctx: Ctx,
    model: str,
    tensors: list[tuple[str, np.ndarray, str, bool]],
    outputs: list[tuple[str, bool]] | None = None,
    version: str = "",
    request_id: str = "",
) -> httpclient.InferResult:
    inputs = [http_input(name, array, dt, binary) for name, array, dt, binary in tensors]
    requested = (
        [httpclient.InferRequestedOutput(name, binary_data=binary) for name, binary in outputs]
        if outputs is not None
        else None
    )
    return ctx.http.infer(
        model, inputs, model_version=version, outputs=requested, request_id=request_id
    )


def grpc_infer(
    ctx: Ctx,
    model: str,
    tensors: list[tuple[str, np.ndarray, str]],
    outputs: list[str] | None = None,
    version: str = "",
    request_id: str = "",
) -> grpcclient.InferResult:
    inputs = [grpc_input(name, array, dt) for name, array, dt in tensors]
    requested = [grpcclient.InferRequestedOutput(n) for n in outputs] if outputs else None
    return ctx.grpc.infer(
        model,
        inputs,
        model_version=version,
        outputs=requested,
        request_id=request_id,
        client_timeout=TIMEOUT_S,
    )


def response_output_names(result: Any) -> list[str]:
    if isinstance(result, httpclient.InferResult):
        return [o["name"] for o in result.get_response().get("outputs", [])]
    return [o.name for o in result.get_response().outputs]


def decode_grpc_outputs(response: service_pb2.ModelInferResponse) -> dict[str, np.ndarray]:
    """raw_output_contents (what Triton sends) or typed contents, whichever the server used."""
    decoded = {}
    for index, output in enumerate(response.outputs):
        shape = list(output.shape)
        if index < len(response.raw_output_contents):
            raw = response.raw_output_contents[index]
            if output.datatype == "BYTES":
                array = deserialize_bytes_tensor(raw)
            else:
                array = np.frombuffer(raw, dtype=NUMPY[output.datatype])
        else:
            field = TYPED_FIELD.get(output.datatype)
            values = list(getattr(output.contents, field)) if field else []
            if output.datatype == "BYTES":
                array = np.empty(len(values), dtype=np.object_)
                array[:] = values
            else:
                array = np.array(values, dtype=NUMPY[output.datatype])
        decoded[output.name] = array.reshape(shape)
    return decoded


def stub_infer(ctx: Ctx, request: service_pb2.ModelInferRequest) -> Any:
    return ctx.stub.ModelInfer(request, timeout=TIMEOUT_S)


def typed_request(
    model: str, tensors: list[tuple[str, np.ndarray, str]]
) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=model)
    for name, array, dt in tensors:
        tensor = request.inputs.add(name=name, datatype=dt, shape=list(array.shape))
        values = array.reshape(-1).tolist()
        getattr(tensor.contents, TYPED_FIELD[dt]).extend(values)
    return request


# --- the checks --------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[Ctx], str | None]] = {}


def check(name: str) -> Callable[[Callable[[Ctx], str | None]], Callable[[Ctx], str | None]]:
    def register(fn: Callable[[Ctx], str | None]) -> Callable[[Ctx], str | None]:
        expect(name not in CHECKS, f"duplicate check {name}")
        CHECKS[name] = fn
        return fn

    return register


# server ------------------------------------------------------------------------------------


@check("http_server_live")
def _(ctx: Ctx) -> str:
    expect(ctx.http.is_server_live() is True, "is_server_live() is not True")
    return "live"


@check("http_server_ready")
def _(ctx: Ctx) -> str:
    expect(ctx.http.is_server_ready() is True, "is_server_ready() is not True")
    return "ready"


@check("http_server_metadata")
def _(ctx: Ctx) -> str:
    meta = ctx.http.get_server_metadata()
    expect(isinstance(meta, dict), f"not an object: {meta!r}")
    expect(isinstance(meta.get("name"), str) and meta["name"], f"no name: {meta}")
    expect(isinstance(meta.get("version"), str) and meta["version"], f"no version: {meta}")
    expect(isinstance(meta.get("extensions"), list), f"extensions is not a list: {meta}")
    return json.dumps(meta)


@check("grpc_server_live")
def _(ctx: Ctx) -> str:
    expect(ctx.grpc.is_server_live(client_timeout=TIMEOUT_S) is True, "not live")
    return "live"


@check("grpc_server_ready")
def _(ctx: Ctx) -> str:
    expect(ctx.grpc.is_server_ready(client_timeout=TIMEOUT_S) is True, "not ready")
    return "ready"


@check("grpc_server_metadata")
def _(ctx: Ctx) -> str:
    meta = ctx.grpc.get_server_metadata(client_timeout=TIMEOUT_S)
    expect(bool(meta.name), f"no name: {meta}")
    expect(bool(meta.version), f"no version: {meta}")
    return f"{meta.name} {meta.version} {list(meta.extensions)}"


@check("grpc_health_serving")
def _(ctx: Ctx) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    stub = health_pb2_grpc.HealthStub(ctx.channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
    expect(
        reply.status == health_pb2.HealthCheckResponse.SERVING,
        f"overall health {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}",
    )
    return "SERVING"


@check("grpc_reflection_lists_service")
def _(ctx: Ctx) -> str:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(ctx.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = list(stub.ServerReflectionInfo(iter([request]), timeout=TIMEOUT_S))
    names = [s.name for r in replies for s in r.list_services_response.service]
    expect("inference.GRPCInferenceService" in names, f"services: {names}")
    return f"services: {names}"


# model metadata / config / ready --------------------------------------------------------------


def _check_scale_metadata(meta: dict[str, Any], versions: bool = True) -> None:
    expect(meta.get("name") == "scale", f"name {meta.get('name')!r}")
    if versions:
        expect({"1", "2"} <= set(meta.get("versions", [])), f"versions {meta.get('versions')}")
    for key, name in (("inputs", "x"), ("outputs", "y")):
        tensors = meta.get(key, [])
        expect(len(tensors) == 1, f"{key}: {tensors}")
        t = tensors[0]
        expect(t["name"] == name, f"{key}[0].name {t['name']!r}")
        expect(t["datatype"] == "FP32", f"{key}[0].datatype {t['datatype']!r}")
        expect([int(d) for d in t["shape"]] == [-1, 4], f"{key}[0].shape {t['shape']}")


def _check_all_types_metadata(meta: dict[str, Any]) -> None:
    for key, prefix in (("inputs", "in_"), ("outputs", "out_")):
        got = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta[key]}
        want = {f"{prefix}{dt}": (dt, [-1, 3]) for dt in DATATYPES}
        expect(got == want, f"{key}: {got}, expected {want}")


def _grpc_metadata_dict(meta: service_pb2.ModelMetadataResponse) -> dict[str, Any]:
    def tensors(ts: Any) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in ts]

    return {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": tensors(meta.inputs),
        "outputs": tensors(meta.outputs),
    }


@check("http_model_metadata")
def _(ctx: Ctx) -> str:
    meta = ctx.http.get_model_metadata("scale")
    _check_scale_metadata(meta)
    return json.dumps(meta)


@check("http_model_metadata_version")
def _(ctx: Ctx) -> str:
    meta = ctx.http.get_model_metadata("scale", model_version="1")
    _check_scale_metadata(meta, versions=False)
    return json.dumps(meta)


@check("http_model_metadata_all_types")
def _(ctx: Ctx) -> str:
    meta = ctx.http.get_model_metadata("identity_all")
    _check_all_types_metadata(meta)
    return "13 datatypes"


@check("grpc_model_metadata")
def _(ctx: Ctx) -> str:
    meta = _grpc_metadata_dict(ctx.grpc.get_model_metadata("scale", client_timeout=TIMEOUT_S))
    _check_scale_metadata(meta)
    return json.dumps(meta)


@check("grpc_model_metadata_version")
def _(ctx: Ctx) -> str:
    meta = ctx.grpc.get_model_metadata("scale", model_version="1", client_timeout=TIMEOUT_S)
    _check_scale_metadata(_grpc_metadata_dict(meta), versions=False)
    return json.dumps(_grpc_metadata_dict(meta))


@check("grpc_model_metadata_all_types")
def _(ctx: Ctx) -> str:
    meta = ctx.grpc.get_model_metadata("identity_all", client_timeout=TIMEOUT_S)
    _check_all_types_metadata(_grpc_metadata_dict(meta))
    return "13 datatypes"


def _config_tensors(tensors: list[dict[str, Any]]) -> dict[str, tuple[str, list[int]]]:
    return {t["name"]: (t.get("data_type"), [int(d) for d in t.get("dims", [])]) for t in tensors}


def _grpc_config_dict(config: model_config_pb2.ModelConfig) -> dict[str, Any]:
    def tensors(ts: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": t.name,
                "data_type": model_config_pb2.DataType.Name(t.data_type),
                "dims": list(t.dims),
            }
            for t in ts
        ]

    return {
        "name": config.name,
        "platform": config.platform,
        "backend": config.backend,
        "max_batch_size": config.max_batch_size,
        "input": tensors(config.input),
        "output": tensors(config.output),
    }


def _check_config(config: dict[str, Any], name: str, mbs: int, ins: dict, outs: dict) -> None:
    expect(config.get("name") == name, f"name {config.get('name')!r}, expected {name!r}")
    expect(
        config.get("max_batch_size", 0) == mbs,
        f"max_batch_size {config.get('max_batch_size')}, expected {mbs}",
    )
    got_in = _config_tensors(config.get("input", []))
    got_out = _config_tensors(config.get("output", []))
    expect(got_in == ins, f"input {got_in}, expected {ins}")
    expect(got_out == outs, f"output {got_out}, expected {outs}")


CONFIG_CASES = {
    "batching": (
        "scale",
        MAX_BATCH_SIZE,
        {"x": ("TYPE_FP32", [4])},
        {"y": ("TYPE_FP32", [4])},
    ),
    "fixed_shape": ("fixed", 0, {"x": ("TYPE_FP32", [2, 3])}, {"y": ("TYPE_FP32", [2, 3])}),
    "all_types": (
        "identity_all",
        MAX_BATCH_SIZE,
        {f"in_{dt}": (CONFIG_TYPE[dt], [3]) for dt in DATATYPES},
        {f"out_{dt}": (CONFIG_TYPE[dt], [3]) for dt in DATATYPES},
    ),
}


def _make_config_checks() -> None:
    for case, (model, mbs, ins, outs) in CONFIG_CASES.items():

        def http_check(ctx: Ctx, model=model, mbs=mbs, ins=ins, outs=outs) -> str:
            config = ctx.http.get_model_config(model)
            _check_config(config, model, mbs, ins, outs)
            return json.dumps(config)[:600]

        def grpc_check(ctx: Ctx, model=model, mbs=mbs, ins=ins, outs=outs) -> str:
            reply = ctx.grpc.get_model_config(model, client_timeout=TIMEOUT_S)
            config = _grpc_config_dict(reply.config)
            _check_config(config, model, mbs, ins, outs)
            return json.dumps(config)[:600]

        check(f"http_model_config_{case}")(http_check)
        check(f"grpc_model_config_{case}")(grpc_check)


_make_config_checks()

READY_CASES = [
    ("scale", "", True),
    ("scale", "1", True),
    ("scale", "2", True),
    ("broken", "", False),
    ("scale", "9", False),
    ("no_such_model", "", False),
]


@check("http_model_ready")
def _(ctx: Ctx) -> str:
    got = [(m, v, ctx.http.is_model_ready(m, v)) for m, v, _ in READY_CASES]
    expect(got == READY_CASES, f"got {got}, expected {READY_CASES}")
    return str(got)


@check("grpc_model_ready")
def _(ctx: Ctx) -> str:
    got = []
    for model, version, _ in READY_CASES:
        try:
            ready = ctx.grpc.is_model_ready(model, version, client_timeout=TIMEOUT_S)
        except InferenceServerException as exc:
            # Unknown models may be an error rather than ready=false; never a wrong "true".
            ready = False if exc.status() == "StatusCode.NOT_FOUND" else exc.status()
        got.append((model, version, ready))
    expect(got == READY_CASES, f"got {got}, expected {READY_CASES}")
    return str(got)


# inference: every datatype --------------------------------------------------------------------

HTTP_MODES = {
    "binary": (True, True),
    "json": (False, False),
    "json_in_binary_out": (False, True),
    "binary_in_json_out": (True, False),
}


def _make_datatype_checks() -> None:
    for dt in DATATYPES:
        for mode, (binary_in, binary_out) in HTTP_MODES.items():

            def http_check(ctx: Ctx, dt=dt, binary_in=binary_in, binary_out=binary_out) -> str:
                data = sample(dt, json_safe=not (binary_in and binary_out))
                result = http_infer(
                    ctx,
                    id_model(dt),
                    [("INPUT0", data, dt, binary_in)],
                    outputs=[("OUTPUT0", binary_out)],
                )
                out = result.get_output("OUTPUT0")
                expect(out is not None, f"no OUTPUT0 in {_short(result)}")
                expect(out["datatype"] == dt, f"datatype {out['datatype']!r}")
                has_binary = "binary_data_size" in (out.get("parameters") or {})
                expect(
                    has_binary == binary_out,
                    f"binary_data requested {binary_out}, output is {out}"[:400],
                )
                expect_equal(result.as_numpy("OUTPUT0"), data, "OUTPUT0")
                return describe(data)

            check(f"http_infer_{dt}_{mode}")(http_check)

        def grpc_check(ctx: Ctx, dt=dt) -> str:
            data = sample(dt)
            result = grpc_infer(ctx, id_model(dt), [("INPUT0", data, dt)])
            out = result.get_output("OUTPUT0")
            expect(out is not None and out.datatype == dt, f"output {out}")
            expect_equal(result.as_numpy("OUTPUT0"), data, "OUTPUT0")
            return describe(data)

        check(f"grpc_infer_{dt}")(grpc_check)

        if dt in TYPED_FIELD:

            def grpc_typed_check(ctx: Ctx, dt=dt) -> str:
                data = sample(dt)
                request = typed_request(id_model(dt), [("INPUT0", data, dt)])
                reply = ctx.stub.ModelInfer(request, timeout=TIMEOUT_S)
                outputs = decode_grpc_outputs(reply)
                expect_equal(outputs.get("OUTPUT0"), data, "OUTPUT0")
                return describe(data)

            check(f"grpc_infer_{dt}_typed_contents")(grpc_typed_check)


_make_datatype_checks()


def _all_types(json_safe: bool) -> dict[str, np.ndarray]:
    return {dt: sample(dt, json_safe=json_safe) for dt in DATATYPES}


@check("http_infer_all_types_binary")
def _(ctx: Ctx) -> str:
    data = _all_types(json_safe=False)
    result = http_infer(ctx, "identity_all", [(f"in_{dt}", a, dt, True) for dt, a in data.items()])
    for dt, array in data.items():
        expect_equal(result.as_numpy(f"out_{dt}"), array, f"out_{dt}")
    return "13 inputs, all outputs binary (none requested)"


@check("http_infer_all_types_json")
def _(ctx: Ctx) -> str:
    data = _all_types(json_safe=True)
    result = http_infer(
        ctx,
        "identity_all",
        [(f"in_{dt}", a, dt, False) for dt, a in data.items()],
        outputs=[(f"out_{dt}", False) for dt in DATATYPES],
    )
    for dt, array in data.items():
        expect_equal(result.as_numpy(f"out_{dt}"), array, f"out_{dt}")
    return "13 inputs and outputs as JSON"


@check("http_infer_mixed_binary_and_json")
def _(ctx: Ctx) -> str:
    """Binary and JSON inputs interleaved; outputs alternately binary and JSON."""
    data = _all_types(json_safe=True)
    tensors = [(f"in_{dt}", a, dt, i % 2 == 0) for i, (dt, a) in enumerate(data.items())]
    outputs = [(f"out_{dt}", i % 3 == 0) for i, dt in enumerate(DATATYPES)]
    result = http_infer(ctx, "identity_all", tensors, outputs=outputs)
    for dt, array in data.items():
        expect_equal(result.as_numpy(f"out_{dt}"), array, f"out_{dt}")
    return "alternating binary/JSON"


@check("grpc_infer_all_types")
def _(ctx: Ctx) -> str:
    data = _all_types(json_safe=False)
    result = grpc_infer(ctx, "identity_all", [(f"in_{dt}", a, dt) for dt, a in data.items()])
    for dt, array in data.items():
        expect_equal(result.as_numpy(f"out_{dt}"), array, f"out_{dt}")
    expect(
        response_output_names(result) == [f"out_{dt}" for dt in DATATYPES],
        f"outputs {response_output_names(result)} (model order expected)",
    )
    return "13 inputs, raw contents"


NON_UTF8 = [b"\xff\xfe", b"ok", b"\x80"]


def _non_utf8_outcome(got: np.ndarray | None) -> str:
    """An ONNX string model cannot hold non-UTF-8 bytes through ORT's Python API: the server
    must either round-trip them exactly or refuse the request, never change them silently."""
    expect(got is not None, "no OUTPUT0")
    assert got is not None
    expect(bytes_list(got) == NON_UTF8, f"changed silently: {bytes_list(got)}, sent {NON_UTF8}")
    return "round-tripped exactly"


@check("http_infer_BYTES_non_utf8")
def _(ctx: Ctx) -> str:
    inp = _http_raw_input("INPUT0", [1, 3], "BYTES", _serialize(NON_UTF8))
    try:
        result = ctx.http.infer(id_model("BYTES"), [inp])
    except InferenceServerException as exc:
        expect(exc.status() == "400", f"HTTP {exc.status()} ({exc.message()}), expected 400")
        return f"refused: HTTP 400 {exc.message()}"
    return _non_utf8_outcome(result.as_numpy("OUTPUT0"))


@check("grpc_infer_BYTES_non_utf8")
def _(ctx: Ctx) -> str:
    request = _grpc_raw_request(id_model("BYTES"), "INPUT0", [1, 3], "BYTES", _serialize(NON_UTF8))
    try:
        reply = stub_infer(ctx, request)
    except grpc.RpcError as exc:
        expect(exc.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{exc.code()}: {exc.details()}")
        return f"refused: INVALID_ARGUMENT {exc.details()}"
    return _non_utf8_outcome(decode_grpc_outputs(reply).get("OUTPUT0"))


def _serialize(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


@check("http_infer_default_outputs")
def _(ctx: Ctx) -> str:
    a = np.array([[-2, 0], [5, 9223372036854775806]], dtype=np.int64)
    result = http_infer(ctx, "ints", [("a", a, "INT64", False)])
    expect(
        sorted(response_output_names(result)) == ["flag", "out"],
        f"outputs {response_output_names(result)}",
    )
    expect_equal(result.as_numpy("out"), a + 1, "out")
    expect_equal(result.as_numpy("flag"), a > 0, "flag")
    return "out, flag"


@check("grpc_infer_default_outputs")
def _(ctx: Ctx) -> str:
    a = np.array([[-2, 0], [5, 9223372036854775806]], dtype=np.int64)
    result = grpc_infer(ctx, "ints", [("a", a, "INT64")])
    expect(
        sorted(response_output_names(result)) == ["flag", "out"],
        f"outputs {response_output_names(result)}",
    )
    expect_equal(result.as_numpy("out"), a + 1, "out")
    expect_equal(result.as_numpy("flag"), a > 0, "flag")
    return "out, flag"


@check("http_infer_requested_outputs_subset")
def _(ctx: Ctx) -> str:
    a = np.array([[-1, 3]], dtype=np.int64)
    result = http_infer(ctx, "ints", [("a", a, "INT64", True)], outputs=[("flag", True)])
    expect(response_output_names(result) == ["flag"], f"outputs {response_output_names(result)}")
    expect_equal(result.as_numpy("flag"), a > 0, "flag")
    data = _all_types(json_safe=True)
    result = http_infer(
        ctx,
        "identity_all",
        [(f"in_{dt}", arr, dt, True) for dt, arr in data.items()],
        outputs=[("out_FP16", False), ("out_INT32", True)],
    )
    names = response_output_names(result)
    expect(sorted(names) == ["out_FP16", "out_INT32"], f"outputs {names}")
    expect_equal(result.as_numpy("out_FP16"), data["FP16"], "out_FP16")
    expect_equal(result.as_numpy("out_INT32"), data["INT32"], "out_INT32")
    return f"ints: flag only; identity_all: {names}"


@check("grpc_infer_requested_outputs_subset")
def _(ctx: Ctx) -> str:
    a = np.array([[-1, 3]], dtype=np.int64)
    result = grpc_infer(ctx, "ints", [("a", a, "INT64")], outputs=["flag"])
    expect(response_output_names(result) == ["flag"], f"outputs {response_output_names(result)}")
    expect_equal(result.as_numpy("flag"), a > 0, "flag")
    data = _all_types(json_safe=False)
    result = grpc_infer(
        ctx,
        "identity_all",
        [(f"in_{dt}", arr, dt) for dt, arr in data.items()],
        outputs=["out_FP16", "out_UINT64"],
    )
    names = response_output_names(result)
    expect(sorted(names) == ["out_FP16", "out_UINT64"], f"outputs {names}")
    expect_equal(result.as_numpy("out_FP16"), data["FP16"], "out_FP16")
    expect_equal(result.as_numpy("out_UINT64"), data["UINT64"], "out_UINT64")
    return f"ints: flag only; identity_all: {names}"


# versions ---------------------------------------------------------------------------------------


def _scale_x(rows: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, 4)).astype(np.float32)


@check("http_model_version_selection")
def _(ctx: Ctx) -> str:
    x = _scale_x()
    seen = []
    for version, used in (("1", "1"), ("2", "2"), ("", "2")):
        result = http_infer(ctx, "scale", [("x", x, "FP32", True)], version=version)
        expect_equal(result.as_numpy("y"), x * SCALE_FACTORS[used], f"version {version!r} y")
        response = result.get_response()
        expect(response.get("model_name") == "scale", f"model_name {response.get('model_name')}")
        expect(
            response.get("model_version") == used,
            f"version {version!r}: model_version {response.get('model_version')!r}, "
            f"expected {used!r}",
        )
        seen.append((version, response.get("model_version")))
    return f"requested -> served: {seen}"


@check("grpc_model_version_selection")
def _(ctx: Ctx) -> str:
    x = _scale_x()
    seen = []
    for version, used in (("1", "1"), ("2", "2"), ("", "2")):
        result = grpc_infer(ctx, "scale", [("x", x, "FP32")], version=version)
        expect_equal(result.as_numpy("y"), x * SCALE_FACTORS[used], f"version {version!r} y")
        response = result.get_response()
        expect(response.model_name == "scale", f"model_name {response.model_name!r}")
        expect(
            response.model_version == used,
            f"version {version!r}: model_version {response.model_version!r}, expected {used!r}",
        )
        seen.append((version, response.model_version))
    return f"requested -> served: {seen}"


# consistency across encodings and protocols -------------------------------------------------------


@check("json_binary_grpc_outputs_equal")
def _(ctx: Ctx) -> str:
    x = np.random.default_rng(3).normal(size=(5, 16)).astype(np.float32)
    json_out = http_infer(ctx, "mlp", [("x", x, "FP32", False)], outputs=[("y", False)])
    binary_out = http_infer(ctx, "mlp", [("x", x, "FP32", True)], outputs=[("y", True)])
    grpc_out = grpc_infer(ctx, "mlp", [("x", x, "FP32")])
    reference = binary_out.as_numpy("y")
    expect(reference is not None and reference.shape == (5, 4), f"binary y {describe(reference)}")
    expect_equal(json_out.as_numpy("y"), reference, "JSON y vs binary y")
    expect_equal(grpc_out.as_numpy("y"), reference, "gRPC y vs HTTP binary y")
    return describe(reference)


@check("http_scale_matches_numpy")
def _(ctx: Ctx) -> str:
    x = np.random.default_rng(4).uniform(-1e3, 1e3, size=(64, 4)).astype(np.float32)
    result = http_infer(ctx, "scale", [("x", x, "FP32", False)], version="1")
    expect_equal(result.as_numpy("y"), x * SCALE_FACTORS["1"], "y (JSON, batch 64)")
    return "batch 64 bit-exact"


@check("http_request_id_echo")
def _(ctx: Ctx) -> str:
    result = http_infer(ctx, "scale", [("x", _scale_x(1), "FP32", True)], request_id="req-42")
    got = result.get_response().get("id")
    expect(got == "req-42", f"id {got!r}")
    return "id echoed"


@check("grpc_request_id_echo")
def _(ctx: Ctx) -> str:
    result = grpc_infer(ctx, "scale", [("x", _scale_x(1), "FP32")], request_id="req-43")
    got = result.get_response().id
    expect(got == "req-43", f"id {got!r}")
    return "id echoed"


@check("http_async_infer_concurrent")
def _(ctx: Ctx) -> str:
    xs = [_scale_x(rows=1 + i % 4, seed=100 + i) for i in range(16)]
    pending = []
    for x in xs:
        inp = http_input("x", x, "FP32", True)
        pending.append(ctx.http.async_infer("scale", [inp], model_version="1"))
    for i, (x, request) in enumerate(zip(xs, pending, strict=True)):
        result = request.get_result(timeout=TIMEOUT_S)
        expect_equal(result.as_numpy("y"), x * SCALE_FACTORS["1"], f"request {i}")
    return "16 requests, concurrency 4"


@check("grpc_async_infer_concurrent")
def _(ctx: Ctx) -> str:
    xs = [_scale_x(rows=1 + i % 4, seed=200 + i) for i in range(16)]
    results: dict[int, Any] = {}
    done = threading.Event()
    lock = threading.Lock()

    def callback(index: int, result: Any, error: Any) -> None:
        with lock:
            results[index] = error if error is not None else result
            if len(results) == len(xs):
                done.set()

    for i, x in enumerate(xs):
        ctx.grpc.async_infer(
            "scale",
            [grpc_input("x", x, "FP32")],
            callback=lambda result, error, i=i: callback(i, result, error),
            model_version="2",
            client_timeout=TIMEOUT_S,
        )
    expect(done.wait(TIMEOUT_S), f"only {len(results)} of {len(xs)} answered")
    for i, x in enumerate(xs):
        result = results[i]
        expect(not isinstance(result, Exception), f"request {i}: {result}")
        expect_equal(result.as_numpy("y"), x * SCALE_FACTORS["2"], f"request {i}")
    return "16 requests in flight"


# statistics -------------------------------------------------------------------------------------


def _stats_entry(stats: dict[str, Any], name: str, version: str) -> dict[str, Any]:
    entries = [
        s
        for s in stats.get("model_stats", [])
        if s.get("name") == name and str(s.get("version")) == version
    ]
    expect(len(entries) == 1, f"{len(entries)} entries for {name}/{version}: {stats}"[:600])
    return entries[0]


def _counts(entry: dict[str, Any]) -> dict[str, int]:
    inference = entry.get("inference_stats", {})
    return {
        "success": int(inference.get("success", {}).get("count", 0)),
        "fail": int(inference.get("fail", {}).get("count", 0)),
        "compute_infer": int(inference.get("compute_infer", {}).get("count", 0)),
        "inference_count": int(entry.get("inference_count", 0)),
        "execution_count": int(entry.get("execution_count", 0)),
        "last_inference": int(entry.get("last_inference", 0)),
        "success_ns": int(inference.get("success", {}).get("ns", 0)),
    }


def _check_stats_delta(before: dict[str, int], after: dict[str, int]) -> str:
    delta = {k: after[k] - before[k] for k in before}
    expect(delta["success"] == 3, f"success.count +{delta['success']}, expected +3 ({delta})")
    expect(delta["fail"] == 0, f"fail.count +{delta['fail']}, expected +0 ({delta})")
    expect(
        delta["inference_count"] == 6,
        f"inference_count +{delta['inference_count']}, expected +6 (3 requests x batch 2)",
    )
    expect(
        1 <= delta["execution_count"] <= 3,
        f"execution_count +{delta['execution_count']}, expected +1..+3",
    )
    expect(delta["compute_infer"] == 3, f"compute_infer.count +{delta['compute_infer']}")
    expect(delta["success_ns"] > 0, f"success.ns +{delta['success_ns']}")
    expect(after["last_inference"] > 1_500_000_000_000, f"last_inference {after}")
    return f"delta {delta}"


@check("http_statistics")
def _(ctx: Ctx) -> str:
    before = _counts(_stats_entry(ctx.http.get_inference_statistics("ints", "1"), "ints", "1"))
    a = np.array([[1, 2], [3, 4]], dtype=np.int64)
    for _ in range(3):
        http_infer(ctx, "ints", [("a", a, "INT64", True)], version="1")
    after = _counts(_stats_entry(ctx.http.get_inference_statistics("ints", "1"), "ints", "1"))
    return _check_stats_delta(before, after)


@check("grpc_statistics")
def _(ctx: Ctx) -> str:
    def counts() -> dict[str, int]:
        reply = ctx.grpc.get_inference_statistics(
            "ints", "1", as_json=True, client_timeout=TIMEOUT_S
        )
        return _counts(_stats_entry(reply, "ints", "1"))

    before = counts()
    a = np.array([[1, 2], [3, 4]], dtype=np.int64)
    for _ in range(3):
        grpc_infer(ctx, "ints", [("a", a, "INT64")], version="1")
    return _check_stats_delta(before, counts())


@check("http_statistics_all_models")
def _(ctx: Ctx) -> str:
    stats = ctx.http.get_inference_statistics()
    keys = {(s.get("name"), str(s.get("version"))) for s in stats.get("model_stats", [])}
    want = {("scale", "1"), ("scale", "2"), ("ints", "1"), ("identity_all", "1")}
    expect(want <= keys, f"missing {sorted(want - keys)} in {sorted(keys)}")
    return f"{len(keys)} model versions"


@check("grpc_statistics_all_models")
def _(ctx: Ctx) -> str:
    stats = ctx.grpc.get_inference_statistics(client_timeout=TIMEOUT_S)
    keys = {(s.name, s.version) for s in stats.model_stats}
    want = {("scale", "1"), ("scale", "2"), ("ints", "1"), ("identity_all", "1")}
    expect(want <= keys, f"missing {sorted(want - keys)} in {sorted(keys)}")
    return f"{len(keys)} model versions"


# errors -----------------------------------------------------------------------------------------


def _x(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


def _http_raw_input(name: str, shape: list[int], dt: str, raw: bytes) -> httpclient.InferInput:
    """A binary input whose bytes (and binary_data_size) are exactly `raw`."""
    inp = httpclient.InferInput(name, shape, dt)
    inp._raw_data = raw
    inp._parameters["binary_data_size"] = len(raw)
    return inp


def _grpc_raw_request(model: str, name: str, shape: list[int], dt: str, *raws: bytes):
    request = service_pb2.ModelInferRequest(model_name=model)
    request.inputs.add(name=name, datatype=dt, shape=shape)
    request.raw_input_contents.extend(raws)
    return request


ERROR_CASES: dict[str, tuple[Callable[[Ctx], Any], Callable[[Ctx], Any], int, str]] = {}


def error_case(name: str, status: int, code: str):
    """Register http_error_<name> and grpc_error_<name> from (http_call, grpc_call) factories."""

    def register(factory: Callable[[], tuple[Callable[[Ctx], Any], Callable[[Ctx], Any]]]):
        http_call, grpc_call = factory()
        check(f"http_error_{name}")(lambda ctx: expect_http_error(lambda: http_call(ctx), status))
        check(f"grpc_error_{name}")(lambda ctx: expect_grpc_error(lambda: grpc_call(ctx), code))
        return factory

    return register


@error_case("unknown_model", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: http_infer(ctx, "no_such_model", [("x", _x((1, 4)), "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "no_such_model", [("x", _x((1, 4)), "FP32")]),
    )


@error_case("unknown_model_metadata", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: ctx.http.get_model_metadata("no_such_model"),
        lambda ctx: ctx.grpc.get_model_metadata("no_such_model", client_timeout=TIMEOUT_S),
    )


@error_case("unknown_model_config", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: ctx.http.get_model_config("no_such_model"),
        lambda ctx: ctx.grpc.get_model_config("no_such_model", client_timeout=TIMEOUT_S),
    )


@error_case("unknown_version", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: http_infer(ctx, "scale", [("x", _x((1, 4)), "FP32", True)], version="9"),
        lambda ctx: grpc_infer(ctx, "scale", [("x", _x((1, 4)), "FP32")], version="9"),
    )


@error_case("unknown_version_metadata", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: ctx.http.get_model_metadata("scale", model_version="9"),
        lambda ctx: ctx.grpc.get_model_metadata("scale", "9", client_timeout=TIMEOUT_S),
    )


@error_case("statistics_unknown_model", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: ctx.http.get_inference_statistics("no_such_model"),
        lambda ctx: ctx.grpc.get_inference_statistics("no_such_model", client_timeout=TIMEOUT_S),
    )


@error_case("failed_model", 409, "FAILED_PRECONDITION")
def _():
    return (
        lambda ctx: http_infer(ctx, "broken", [("x", _x((1, 4)), "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "broken", [("x", _x((1, 4)), "FP32")]),
    )


@error_case("wrong_shape", 400, "INVALID_ARGUMENT")
def _():
    return (
        lambda ctx: http_infer(ctx, "scale", [("x", _x((2, 5)), "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "scale", [("x", _x((2, 5)), "FP32")]),
    )


@error_case("wrong_shape_json", 400, "INVALID_ARGUMENT")
def _():
    # gRPC half: the fixed-shape model with a batch dimension it does not have.
    return (
        lambda ctx: http_infer(ctx, "scale", [("x", _x((2, 5)), "FP32", False)]),
        lambda ctx: grpc_infer(ctx, "fixed", [("x", _x((1, 2, 3)), "FP32")]),
    )


@error_case("wrong_rank", 400, "INVALID_ARGUMENT")
def _():
    return (
        lambda ctx: http_infer(ctx, "scale", [("x", _x((8,)), "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "scale", [("x", _x((2, 4, 1)), "FP32")]),
    )


@error_case("wrong_dtype", 400, "INVALID_ARGUMENT")
def _():
    return (
        lambda ctx: http_infer(ctx, "scale", [("x", _x((2, 4), np.float64), "FP64", True)]),
        lambda ctx: grpc_infer(ctx, "scale", [("x", _x((2, 4), np.float64), "FP64")]),
    )


@error_case("wrong_dtype_json", 400, "INVALID_ARGUMENT")
def _():
    return (
        lambda ctx: http_infer(ctx, "ints", [("a", _x((1, 2), np.int32), "INT32", False)]),
        lambda ctx: grpc_infer(ctx, "ints", [("a", _x((1, 2), np.int32), "INT32")]),
    )


@error_case("batch_too_large", 400, "INVALID_ARGUMENT")
def _():
    big = (MAX_BATCH_SIZE + 1, 4)
    return (
        lambda ctx: http_infer(ctx, "scale", [("x", _x(big), "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "scale", [("x", _x(big), "FP32")]),
    )


@error_case("unknown_input", 400, "INVALID_ARGUMENT")
def _():
    return (
        lambda ctx: http_infer(ctx, "scale", [("nope", _x((1, 4)), "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "scale", [("nope", _x((1, 4)), "FP32")]),
    )


@error_case("missing_input", 400, "INVALID_ARGUMENT")
def _():
    x = sample("FP32")
    return (
        lambda ctx: http_infer(ctx, "identity_all", [("in_FP32", x, "FP32", True)]),
        lambda ctx: grpc_infer(ctx, "identity_all", [("in_FP32", x, "FP32")]),
    )


@error_case("unknown_output", 400, "INVALID_ARGUMENT")
def _():
    return (
        lambda ctx: http_infer(
            ctx, "scale", [("x", _x((1, 4)), "FP32", True)], outputs=[("nope", True)]
        ),
        lambda ctx: grpc_infer(ctx, "scale", [("x", _x((1, 4)), "FP32")], outputs=["nope"]),
    )


@error_case("byte_size_vs_shape", 400, "INVALID_ARGUMENT")
def _():
    """7 floats for shape [2, 4]: binary_data_size / raw_input_contents agree with the body."""
    raw = _x((7,)).tobytes()
    return (
        lambda ctx: ctx.http.infer("scale", [_http_raw_input("x", [2, 4], "FP32", raw)]),
        lambda ctx: ctx.stub.ModelInfer(
            _grpc_raw_request("scale", "x", [2, 4], "FP32", raw), timeout=TIMEOUT_S
        ),
    )


@error_case("bytes_malformed", 400, "INVALID_ARGUMENT")
def _():
    """BYTES elements: a 4-byte length prefix that runs past the end of the data."""
    raw = struct.pack("<I", 1) + b"a" + struct.pack("<I", 1) + b"b" + struct.pack("<I", 100) + b"c"
    return (
        lambda ctx: ctx.http.infer(
            id_model("BYTES"), [_http_raw_input("INPUT0", [1, 3], "BYTES", raw)]
        ),
        lambda ctx: ctx.stub.ModelInfer(
            _grpc_raw_request(id_model("BYTES"), "INPUT0", [1, 3], "BYTES", raw),
            timeout=TIMEOUT_S,
        ),
    )


@check("http_error_binary_data_size_exceeds_body")
def _(ctx: Ctx) -> str:
    """binary_data_size says 32 bytes (right for [2, 4] FP32) but the body carries 28."""
    inp = httpclient.InferInput("x", [2, 4], "FP32")
    inp._raw_data = _x((7,)).tobytes()
    inp._parameters["binary_data_size"] = 32
    return expect_http_error(lambda: ctx.http.infer("scale", [inp]), 400)


@check("http_error_binary_data_trailing_bytes")
def _(ctx: Ctx) -> str:
    """The body has 4 bytes more than the inputs' binary_data_size add up to."""
    inp = httpclient.InferInput("x", [2, 4], "FP32")
    inp._raw_data = _x((9,)).tobytes()
    inp._parameters["binary_data_size"] = 32
    return expect_http_error(lambda: ctx.http.infer("scale", [inp]), 400)


@check("http_error_json_element_count")
def _(ctx: Ctx) -> str:
    inp = httpclient.InferInput("x", [2, 4], "FP32")
    inp.set_data_from_numpy(_x((2, 4)), binary_data=False)
    inp._data = inp._data[:7]
    return expect_http_error(lambda: ctx.http.infer("scale", [inp]), 400)


@check("http_error_json_element_type")
def _(ctx: Ctx) -> str:
    inp = httpclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(_x((1, 4)), binary_data=False)
    inp._data = ["a", "b", "c", "d"]
    return expect_http_error(lambda: ctx.http.infer("scale", [inp]), 400)


@check("http_error_unsupported_datatype")
def _(ctx: Ctx) -> str:
    inp = _http_raw_input("x", [1, 4], "FP8", b"\x00" * 4)
    return expect_http_error(lambda: ctx.http.infer("scale", [inp]), 400)


@check("grpc_error_raw_contents_count")
def _(ctx: Ctx) -> str:
    """Two raw_input_contents for one input."""
    raw = _x((1, 4)).tobytes()
    request = _grpc_raw_request("scale", "x", [1, 4], "FP32", raw, raw)
    return expect_grpc_error(lambda: stub_infer(ctx, request), "INVALID_ARGUMENT")


@check("grpc_error_typed_contents_count")
def _(ctx: Ctx) -> str:
    """fp32_contents with 7 values for shape [2, 4]."""
    request = service_pb2.ModelInferRequest(model_name="scale")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[2, 4])
    tensor.contents.fp32_contents.extend([1.0] * 7)
    return expect_grpc_error(lambda: stub_infer(ctx, request), "INVALID_ARGUMENT")


@check("grpc_error_typed_contents_wrong_field")
def _(ctx: Ctx) -> str:
    """FP32 input carrying its values in int_contents."""
    request = service_pb2.ModelInferRequest(model_name="scale")
    tensor = request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    tensor.contents.int_contents.extend([1, 2, 3, 4])
    return expect_grpc_error(lambda: stub_infer(ctx, request), "INVALID_ARGUMENT")


@check("grpc_error_raw_and_typed_contents")
def _(ctx: Ctx) -> str:
    """raw_input_contents and typed contents in one request (the spec forbids mixing)."""
    request = service_pb2.ModelInferRequest(model_name="ints")
    tensor = request.inputs.add(name="a", datatype="INT64", shape=[1, 2])
    tensor.contents.int64_contents.extend([1, 2])
    request.raw_input_contents.append(np.array([1, 2], np.int64).tobytes())
    return expect_grpc_error(lambda: stub_infer(ctx, request), "INVALID_ARGUMENT")


@check("grpc_error_raw_size_short")
def _(ctx: Ctx) -> str:
    """tritonclient's own InferInput with its raw content cut short by 4 bytes."""
    inp = grpc_input("x", _x((2, 4)), "FP32")
    inp._raw_content = inp._raw_content[:-4]
    return expect_grpc_error(
        lambda: ctx.grpc.infer("scale", [inp], client_timeout=TIMEOUT_S), "INVALID_ARGUMENT"
    )


# repository -------------------------------------------------------------------------------------


def _index_http(ctx: Ctx) -> list[dict[str, Any]]:
    index = ctx.http.get_model_repository_index()
    expect(isinstance(index, list), f"index is not a list: {index!r}"[:300])
    return index


def _index_grpc(ctx: Ctx) -> list[dict[str, Any]]:
    reply = ctx.grpc.get_model_repository_index(client_timeout=TIMEOUT_S)
    return [
        {"name": m.name, "version": m.version, "state": m.state, "reason": m.reason}
        for m in reply.models
    ]


def _states(index: list[dict[str, Any]], name: str) -> list[tuple[str, str, str]]:
    return [
        (str(e.get("version", "")), e.get("state", ""), e.get("reason", ""))
        for e in index
        if e.get("name") == name
    ]


def _check_index(index: list[dict[str, Any]]) -> str:
    names = {e.get("name") for e in index}
    want = {"scale", "ints", "identity_all", "broken", "fixed", "mlp"}
    expect(want <= names, f"missing {sorted(want - names)} in {sorted(names)}")
    scale = _states(index, "scale")
    expect(scale and all(s == "READY" for _, s, _ in scale), f"scale entries {scale}")
    versions = {v for v, _, _ in scale}
    expect(versions in ({"1", "2"}, {""}), f"scale versions {versions}")
    broken = _states(index, "broken")
    expect(broken and all(s != "READY" for _, s, _ in broken), f"broken entries {broken}")
    expect(all(r for _, _, r in broken), f"broken entries without a reason {broken}")
    return f"{len(index)} entries; scale {scale}; broken {broken}"[:600]


@check("http_repository_index")
def _(ctx: Ctx) -> str:
    return _check_index(_index_http(ctx))


@check("grpc_repository_index")
def _(ctx: Ctx) -> str:
    return _check_index(_index_grpc(ctx))


def _unload_load(ctx: Ctx, protocol: str) -> str:
    model = f"spare_{protocol}"
    x = _scale_x(2, seed=5)
    if protocol == "http":
        ready = lambda: ctx.http.is_model_ready(model)  # noqa: E731
        infer = lambda: http_infer(ctx, model, [("x", x, "FP32", True)])  # noqa: E731
        unload, load, index = ctx.http.unload_model, ctx.http.load_model, _index_http
        refused = lambda: expect_http_error(infer, 409)  # noqa: E731
    else:
        ready = lambda: ctx.grpc.is_model_ready(model, client_timeout=TIMEOUT_S)  # noqa: E731
        infer = lambda: grpc_infer(ctx, model, [("x", x, "FP32")])  # noqa: E731
        unload, load, index = ctx.grpc.unload_model, ctx.grpc.load_model, _index_grpc
        refused = lambda: expect_grpc_error(infer, "FAILED_PRECONDITION")  # noqa: E731
    expect(ready() is True, "not ready before unloading")
    expect_equal(infer().as_numpy("y"), x * SCALE_FACTORS["1"], "y before unloading")
    unload(model)
    expect(ready() is False, "still ready after unload")
    refusal = refused()
    states = _states(index(ctx), model)
    expect(states and all(s != "READY" for _, s, _ in states), f"index after unload {states}")
    load(model)
    expect(ready() is True, "not ready after load")
    expect_equal(infer().as_numpy("y"), x * SCALE_FACTORS["1"], "y after loading again")
    return f"unloaded -> {refusal}; index {states}; loaded again"[:600]


@check("http_repository_unload_load")
def _(ctx: Ctx) -> str:
    return _unload_load(ctx, "http")


@check("grpc_repository_unload_load")
def _(ctx: Ctx) -> str:
    return _unload_load(ctx, "grpc")


@check("http_repository_load_new_model")
def _(ctx: Ctx) -> str:
    """`late` was created after start-up (tests/e2e/kserve_models.add_late_model)."""
    before = ctx.http.is_model_ready("late")
    ctx.http.load_model("late")
    expect(ctx.http.is_model_ready("late") is True, "late not ready after load")
    x = _scale_x(2, seed=6)
    result = http_infer(ctx, "late", [("x", x, "FP32", True)])
    expect_equal(result.as_numpy("y"), x * LATE_FACTORS, "late y")
    meta = ctx.grpc.get_model_metadata("late", client_timeout=TIMEOUT_S)
    expect(meta.name == "late", f"gRPC metadata {meta}")
    return f"ready before load: {before}; after: True"


@error_case("load_unknown_model", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: ctx.http.load_model("no_such_model"),
        lambda ctx: ctx.grpc.load_model("no_such_model", client_timeout=TIMEOUT_S),
    )


@error_case("unload_unknown_model", 404, "NOT_FOUND")
def _():
    return (
        lambda ctx: ctx.http.unload_model("no_such_model"),
        lambda ctx: ctx.grpc.unload_model("no_such_model", client_timeout=TIMEOUT_S),
    )


# shared memory and classification -------------------------------------------------------------


@check("grpc_system_shared_memory")
def _(ctx: Ctx) -> str:
    """As simple_grpc_shm_client does: both tensors in regions, through tritonclient.grpc."""
    x = np.array([[1, 1, 1, 1], [2, 2, 2, 2]], np.float32)
    tag = f"ihc{os.getpid()}"
    in_handle = shm.create_shared_memory_region("in", f"/{tag}_in", x.nbytes)
    out_handle = shm.create_shared_memory_region("out", f"/{tag}_out", x.nbytes)
    try:
        shm.set_shared_memory_region(in_handle, [x])
        ctx.grpc.unregister_system_shared_memory()
        ctx.grpc.register_system_shared_memory("in", f"/{tag}_in", x.nbytes)
        ctx.grpc.register_system_shared_memory("out", f"/{tag}_out", x.nbytes)
        listed = ctx.grpc.get_system_shared_memory_status(as_json=True)
        expect(sorted(listed.get("regions", {})) == ["in", "out"], f"status: {listed}")
        tensor = grpcclient.InferInput("x", [2, 4], "FP32")
        tensor.set_shared_memory("in", x.nbytes)
        output = grpcclient.InferRequestedOutput("y")
        output.set_shared_memory("out", x.nbytes)
        result = ctx.grpc.infer("scale", [tensor], model_version="1", outputs=[output])
        shape = list(result.get_output("y").shape)
        got = shm.get_contents_as_numpy(out_handle, np.float32, shape)
        expect_equal(got, x * SCALE_FACTORS["1"], "y from the output region")
        ctx.grpc.unregister_system_shared_memory()
        expect(not ctx.grpc.get_system_shared_memory_status(as_json=True).get("regions"), "left")
        return f"y {got.tolist()} read from the output region"
    finally:
        shm.destroy_shared_memory_region(in_handle)
        shm.destroy_shared_memory_region(out_handle)


@check("grpc_classification")
def _(ctx: Ctx) -> str:
    """class_count as image_client -i grpc sets it: top k per batch item, "score:index"."""
    x = np.array([[1, 1, 1, 1], [4, 3, 2, 1]], np.float32)  # y = x * [1, 2, 3, 4]
    output = grpcclient.InferRequestedOutput("y", class_count=2)
    result = ctx.grpc.infer(
        "scale", [grpc_input("x", x, "FP32")], model_version="1", outputs=[output]
    )
    got = [[bytes(s).decode() for s in row] for row in result.as_numpy("y")]
    expected = [["4.000000:3", "3.000000:2"], ["6.000000:1", "6.000000:2"]]
    expect(got == expected, f"classes {got}, expected {expected}")
    return f"classes {got}"


# --- runner ---------------------------------------------------------------------------------------


def run(ctx: Ctx, names: list[str], out: Path, budget_s: float) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for name in names:
        if time.monotonic() - started > budget_s:
            results[name] = {"ok": False, "detail": f"not run: {budget_s:.0f}s budget spent"}
        else:
            t0 = time.monotonic()
            try:
                detail = CHECKS[name](ctx)
                results[name] = {"ok": True, "detail": detail or ""}
            except CheckFailed as exc:
                results[name] = {"ok": False, "detail": str(exc)}
            except InferenceServerException as exc:
                results[name] = {
                    "ok": False,
                    "detail": f"InferenceServerException status={exc.status()}: {exc.message()}",
                }
            except grpc.RpcError as exc:
                results[name] = {"ok": False, "detail": f"RpcError {exc.code()}: {exc.details()}"}
            except Exception as exc:
                tb = traceback.format_exc(limit=4)
                results[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}\n{tb}"}
            results[name]["seconds"] = round(time.monotonic() - t0, 3)
        _write(out, results)
    return results


def _write(out: Path, results: dict[str, dict[str, Any]]) -> None:
    tmp = out.with_suffix(out.suffix + ".part")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--grpc", help="e.g. 127.0.0.1:8001")
    parser.add_argument("--out", type=Path, help="where to write the JSON results")
    parser.add_argument("--check", action="append", help="run only these checks (repeatable)")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds for all checks")
    parser.add_argument("--list", action="store_true", help="print the check names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(CHECKS))
        return 0
    if not (args.http and args.grpc and args.out):
        parser.error("--http, --grpc and --out are required")
    names = args.check or list(CHECKS)
    unknown = [n for n in names if n not in CHECKS]
    results: dict[str, dict[str, Any]] = {
        n: {"ok": False, "detail": "no such check"} for n in unknown
    }
    try:
        ctx = Ctx(args.http, args.grpc)
    except Exception as exc:
        detail = f"cannot create the clients: {type(exc).__name__}: {exc}"
        results |= {n: {"ok": False, "detail": detail} for n in names if n in CHECKS}
        _write(args.out, results)
        return 0
    try:
        results |= run(ctx, [n for n in names if n in CHECKS], args.out, args.budget)
    finally:
        ctx.close()
    _write(args.out, results)
    failed = [n for n, r in results.items() if not r["ok"]]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    for name in failed:
        print(f"FAILED {name}: {results[name]['detail'].splitlines()[0][:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
