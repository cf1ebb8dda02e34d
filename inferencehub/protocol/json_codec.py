"""JSON tensors ({"name", "datatype", "shape", "data"}) <-> raw-bytes tensors, in one numpy pass."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from inferencehub.errors import InvalidRequestError
from inferencehub.protocol.canary import percent as canary_percent
from inferencehub.protocol.datatypes import BYTES, NUMPY_BY_DATATYPE
from inferencehub.protocol.tensors import encode_bytes_elements, tensor_to_numpy
from inferencehub.v1 import inference_pb2 as pb


def tensor_from_json(index: int, item: Any) -> pb.Tensor:
    """Build a raw tensor from one JSON input object.

    Raises:
        InvalidRequestError: missing fields, unknown datatype, or data that do not fit the shape.
    """
    if not isinstance(item, dict) or not {"name", "datatype", "shape", "data"} <= item.keys():
        raise InvalidRequestError(
            f"inputs[{index}] must be an object with 'name', 'datatype', 'shape' and 'data'"
        )
    name, datatype, shape, data = item["name"], item["datatype"], item["shape"], item["data"]
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise InvalidRequestError(f"inputs[{index}]: 'name' and 'datatype' must be strings")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidRequestError(f"input '{name}': 'shape' must be a list of non-negative ints")
    count = int(np.prod(shape)) if shape else 1
    if datatype == BYTES:
        flat = np.asarray(data, dtype=object).reshape(-1)
        if not all(isinstance(e, str) for e in flat.tolist()):
            raise InvalidRequestError(f"input '{name}': BYTES 'data' must be a list of strings")
        if flat.size != count:
            raise InvalidRequestError(
                f"input '{name}' has {flat.size} elements; shape {shape} needs {count}"
            )
        elements = [e.encode() for e in flat.tolist()]
        return pb.Tensor(
            name=name, datatype=BYTES, shape=shape, contents=encode_bytes_elements(elements)
        )
    dtype = NUMPY_BY_DATATYPE.get(datatype)
    if dtype is None:
        raise InvalidRequestError(
            f"input '{name}' has unknown datatype '{datatype}'; "
            f"expected one of {', '.join(sorted([*NUMPY_BY_DATATYPE, BYTES]))}"
        )
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError):
        raise InvalidRequestError(
            f"input '{name}': 'data' must be a (nested) list of {datatype} numbers"
        ) from None
    if array.size != count:
        raise InvalidRequestError(
            f"input '{name}' has {array.size} elements; shape {shape} needs {count}"
        )
    return pb.Tensor(name=name, datatype=datatype, shape=shape, contents=array.tobytes())


def tensor_to_json(tensor: pb.Tensor) -> dict[str, Any]:
    """A response tensor as JSON-ready values (data flat, row-major, as KServe v2 does)."""
    array = tensor_to_numpy(tensor).reshape(-1)
    data: Any
    if tensor.datatype == BYTES:
        data = [_text(e) for e in array.tolist()]
    elif tensor.datatype == "FP16":
        data = array.astype(np.float32)
    else:
        data = array
    return {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
        "data": data,
    }


def _text(element: bytes) -> str:
    try:
        return element.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(element).decode()


def response_to_json(response: pb.PredictResponse) -> dict[str, Any]:
    """The /v1 predict response body (orjson serialises the numpy arrays directly)."""
    body = {
        "model_name": response.model_name,
        "version": response.version,
        "request_id": response.request_id,
        "outputs": [tensor_to_json(t) for t in response.outputs],
        "classifications": [
            [{"index": c.index, "label": c.label, "score": c.score} for c in item.classes]
            for item in response.classifications
        ],
        "timing": {
            "preprocess_ms": response.timing.preprocess_ms,
            "inference_ms": response.timing.inference_ms,
            "postprocess_ms": response.timing.postprocess_ms,
            "queue_ms": response.timing.queue_ms,
            "batch_size": response.timing.batch_size,
        },
    }
    if response.timing.steps:  # a pipeline's, in the order they ran
        body["steps"] = [
            {"name": step.name, "ms": step.ms, **({"items": step.items} if step.items else {})}
            for step in response.timing.steps
        ]
    return body


def _spec_to_json(spec: pb.TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def model_to_json(model: pb.ModelInfo) -> dict[str, Any]:
    """A model's metadata for /v1/models (int64 shapes stay numbers, unlike proto3 JSON)."""
    versions = []
    for v in model.versions:
        entry: dict[str, Any] = {
            "version": v.version,
            "state": pb.ModelVersion.State.Name(v.state),
            "provider": v.provider,
            "inputs": [_spec_to_json(s) for s in v.inputs],
            "outputs": [_spec_to_json(s) for s in v.outputs],
        }
        if v.error:
            entry["error"] = v.error
        if v.image.input:
            entry["image"] = {
                "input": v.image.input,
                "height": v.image.height,
                "width": v.image.width,
                "layout": v.image.layout,
                "color": v.image.color,
            }
        if v.top_k:
            entry["top_k"] = v.top_k
        if v.provider_notes:
            entry["provider_notes"] = list(v.provider_notes)
        if v.provider_timings_ms:
            entry["provider_timings_ms"] = dict(v.provider_timings_ms)
        if v.state == pb.ModelVersion.READY:
            entry["instances"] = v.instances
            entry["max_batch_size"] = v.max_batch_size
            entry["tuning"] = _message_to_json(v.tuning)
        versions.append(entry)
    described: dict[str, Any] = {
        "name": model.name,
        "default_version": model.default_version,
        "versions": versions,
    }
    described["routing"] = routing_to_json(model.routing)
    return described


def import_reply_to_json(reply: pb.ImportReply) -> dict[str, Any]:
    """What POST /v1/repository/import answers (and the gRPC SDK gives as a dict)."""
    return {
        "model": model_to_json(reply.model),
        "versions": list(reply.versions),
        "signer": reply.signer,
    }


def routing_to_json(routing: pb.RoutingPolicy) -> dict[str, Any]:
    """The policy as the HTTP API shows and accepts it (PUT /v1/models/NAME/routing)."""
    described: dict[str, Any] = {
        "labels": dict(routing.labels),
        "split": dict(routing.weights),
        "sticky": routing.sticky,
    }
    if routing.HasField("shadow"):
        described["shadow"] = {
            "version": routing.shadow.version,
            "fraction": routing.shadow.fraction,
        }
    if routing.HasField("canary"):
        described["canary"] = {
            **_message_to_json(routing.canary),
            "percent": canary_percent(routing.canary),
        }
    return described


def traffic_to_json(traffic: pb.VersionTraffic) -> dict[str, Any]:
    described = _message_to_json(traffic)
    described["error_rate"] = traffic.errors / traffic.requests if traffic.requests else 0.0
    return described


def _message_to_json(message: Any) -> dict[str, Any]:
    """Every field by its proto name, with 64-bit integers as numbers (proto JSON: strings)."""
    described = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    wide = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
    for field in message.DESCRIPTOR.fields:
        if field.cpp_type in wide and isinstance(described.get(field.name), str):
            described[field.name] = int(described[field.name])
    return described
