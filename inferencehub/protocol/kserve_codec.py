"""KServe v2 (Open Inference Protocol) <-> inferencehub.v1, for both the gRPC and REST edges.

Raw tensor bytes pass through untouched (raw_input_contents, the binary extension); only the
typed `contents` and JSON `data` forms cost a numpy conversion, done once per tensor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np

from inferencehub import __version__
from inferencehub.errors import InvalidRequestError
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.protocol.datatypes import BYTES, NUMPY_BY_DATATYPE
from inferencehub.protocol.kserve_parameters import (
    grpc_parameter,
    output_options,
    region_parameters,
    region_ref,
    typed_parameters,
)
from inferencehub.protocol.tensors import encode_bytes_elements, tensor_to_numpy
from inferencehub.v1 import inference_pb2 as pb

PLATFORM: Final = "onnxruntime_onnx"
BACKEND: Final = "onnxruntime"
# A pipeline (docs/pipelines.md) is what Triton calls an ensemble: steps, no backend of its own.
PIPELINE_PLATFORM: Final = "ensemble"
PIPELINE_PROVIDER: Final = "pipeline"  # worker/pipeline.py's provider name


def platform_of(version: pb.ModelVersion) -> str:
    return PIPELINE_PLATFORM if version.provider == PIPELINE_PROVIDER else PLATFORM


# What GET /v2 and ServerMetadata advertise; perf_analyzer reads statistics only when listed.
EXTENSIONS: Final = (
    "binary_tensor_data",
    "classification",
    "model_repository",
    "statistics",
    "system_shared_memory",
)

# Which typed `contents` field carries each datatype (FP16 has none: raw bytes only).
_CONTENTS_FIELD: Final[dict[str, str]] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def config_datatype(datatype: str) -> str:
    """v2 datatype name -> Triton model-config enum name (BYTES is TYPE_STRING there)."""
    return "TYPE_STRING" if datatype == BYTES else f"TYPE_{datatype}"


def _filled_fields(tensor: v2.ModelInferRequest.InferInputTensor) -> list[str]:
    return [descriptor.name for descriptor, _ in tensor.contents.ListFields()]


def _typed_contents_to_bytes(tensor: v2.ModelInferRequest.InferInputTensor) -> bytes:
    field = _CONTENTS_FIELD.get(tensor.datatype)
    if field is None:
        raise InvalidRequestError(
            f"input '{tensor.name}': {tensor.datatype} cannot travel in 'contents'; "
            "send it in raw_input_contents"
        )
    wrong = [name for name in _filled_fields(tensor) if name != field]
    if wrong:
        raise InvalidRequestError(
            f"input '{tensor.name}' ({tensor.datatype}) carries {', '.join(wrong)}; "
            f"its values belong in contents.{field}"
        )
    values = getattr(tensor.contents, field)
    if tensor.datatype == BYTES:
        return encode_bytes_elements(list(values))
    try:
        return np.asarray(values, dtype=NUMPY_BY_DATATYPE[tensor.datatype]).tobytes()
    except OverflowError:
        raise InvalidRequestError(
            f"input '{tensor.name}': a value does not fit {tensor.datatype}"
        ) from None


def predict_request_from_grpc(
    request: v2.ModelInferRequest,
) -> tuple[pb.PredictRequest, list[bytes]]:
    """A v2 ModelInferRequest as the request the worker runs, and its inputs' bytes apart
    (raw_input_contents as they came, typed contents encoded once): they go to the worker
    without being copied into the message.

    Raises:
        InvalidRequestError: raw and typed contents are mixed or miscounted.
    """
    regions = [
        region_ref(f"input '{t.name}'", typed_parameters(t.parameters)) if t.parameters else None
        for t in request.inputs
    ]
    carried = [t for t, region in zip(request.inputs, regions, strict=True) if region is None]
    raw = request.raw_input_contents
    if raw and len(raw) != len(carried):
        raise InvalidRequestError(
            f"raw_input_contents holds {len(raw)} entries for {len(carried)} inputs not in "
            "shared memory; send raw contents for every such input or for none"
        )
    if raw and any(_filled_fields(tensor) for tensor in carried):
        raise InvalidRequestError(
            "a request carries raw_input_contents and typed contents; use one or the other"
        )
    carried_bytes = iter(list(raw) if raw else [_typed_contents_to_bytes(t) for t in carried])
    predict = pb.PredictRequest(
        model_name=request.model_name,
        version=request.model_version,
        outputs=[o.name for o in request.outputs],
        parameters={
            k: "" if v is None else str(v) for k, v in typed_parameters(request.parameters).items()
        },
        request_id=request.id,
    )
    for output in request.outputs:
        if output.parameters:
            options = output_options(output.name, typed_parameters(output.parameters))
            if options is not None:
                predict.output_options[output.name].CopyFrom(options)
    payloads: list[bytes] = []
    for tensor, region in zip(request.inputs, regions, strict=True):
        added = predict.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if region is None:
            payloads.append(next(carried_bytes))
            continue
        if _filled_fields(tensor):
            raise InvalidRequestError(
                f"input '{tensor.name}' is in shared memory and carries contents too"
            )
        added.shared_memory.CopyFrom(region)
        payloads.append(b"")
    return predict, payloads


def infer_response_to_grpc(response: pb.PredictResponse, request_id: str) -> v2.ModelInferResponse:
    """The worker's answer as a v2 ModelInferResponse, outputs in raw_output_contents (an
    empty entry for an output written to shared memory, so positions stay aligned)."""
    reply = v2.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.version,
        id=request_id,
        raw_output_contents=[t.contents for t in response.outputs],
    )
    for tensor in response.outputs:
        output = reply.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if tensor.HasField("shared_memory"):
            for key, value in region_parameters(tensor.shared_memory).items():
                output.parameters[key].CopyFrom(grpc_parameter(value))
    return reply


def _tensor_specs(specs: Iterable[pb.TensorSpec]) -> list[dict[str, Any]]:
    return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in specs]


def model_metadata(model: pb.ModelInfo, version: pb.ModelVersion) -> dict[str, Any]:
    """The v2 model metadata object (REST body; the gRPC message has the same fields)."""
    return {
        "name": model.name,
        "versions": [v.version for v in model.versions if v.state == pb.ModelVersion.READY],
        "platform": platform_of(version),
        "inputs": _tensor_specs(version.inputs),
        "outputs": _tensor_specs(version.outputs),
    }


def model_metadata_to_grpc(metadata: Mapping[str, Any]) -> v2.ModelMetadataResponse:
    return v2.ModelMetadataResponse(
        name=metadata["name"],
        versions=metadata["versions"],
        platform=metadata["platform"],
        inputs=[v2.ModelMetadataResponse.TensorMetadata(**s) for s in metadata["inputs"]],
        outputs=[v2.ModelMetadataResponse.TensorMetadata(**s) for s in metadata["outputs"]],
    )


def _dims(spec: pb.TensorSpec, batched: bool) -> list[int]:
    return list(spec.shape[1:] if batched else spec.shape)


def model_config(model: pb.ModelInfo, version: pb.ModelVersion) -> dict[str, Any]:
    """Triton's model configuration, as much of it as clients read (REST JSON form).

    With max_batch_size > 0, dims leave out the batch dimension, as Triton's do.
    """
    batched = version.max_batch_size > 0
    image_format = {"NCHW": "FORMAT_NCHW", "NHWC": "FORMAT_NHWC"}.get(version.image.layout)
    return {
        "name": model.name,
        "platform": platform_of(version),
        "backend": "" if version.provider == PIPELINE_PROVIDER else BACKEND,
        "max_batch_size": version.max_batch_size,
        "input": [
            {
                "name": s.name,
                "data_type": config_datatype(s.datatype),
                "format": image_format
                if s.name == version.image.input and image_format
                else "FORMAT_NONE",
                "dims": _dims(s, batched),
            }
            for s in version.inputs
        ],
        "output": [
            {"name": s.name, "data_type": config_datatype(s.datatype), "dims": _dims(s, batched)}
            for s in version.outputs
        ],
        "instance_group": [
            {"name": model.name, "kind": "KIND_CPU", "count": max(version.instances, 1)}
        ],
        "default_model_filename": "model.onnx",
        **(
            {
                "dynamic_batching": {
                    "preferred_batch_size": list(version.dynamic_batching.preferred_batch_sizes),
                    "max_queue_delay_microseconds": version.dynamic_batching.max_queue_delay_us,
                }
            }
            if version.HasField("dynamic_batching")
            else {}
        ),
    }


def model_config_to_grpc(config: Mapping[str, Any]) -> v2.ModelConfigResponse:
    return v2.ModelConfigResponse(
        config=v2.ModelConfig(
            name=config["name"],
            platform=config["platform"],
            backend=config["backend"],
            max_batch_size=config["max_batch_size"],
            input=[v2.ModelInput(**i) for i in config["input"]],
            output=[v2.ModelOutput(**o) for o in config["output"]],
            instance_group=[v2.ModelInstanceGroup(**g) for g in config["instance_group"]],
            default_model_filename=config["default_model_filename"],
            dynamic_batching=v2.ModelDynamicBatching(**config["dynamic_batching"])
            if "dynamic_batching" in config
            else None,
        )
    )


def _duration(d: pb.Duration) -> dict[str, int]:
    return {"count": d.count, "ns": d.ns}


def statistics(versions: Iterable[pb.VersionStatistics]) -> dict[str, Any]:
    """v2 statistics extension body (REST JSON form)."""
    empty = {"count": 0, "ns": 0}
    return {
        "model_stats": [
            {
                "name": s.name,
                "version": s.version,
                "last_inference": s.last_inference_ms,
                "inference_count": s.inference_count,
                "execution_count": s.execution_count,
                "inference_stats": {
                    "success": _duration(s.success),
                    "fail": _duration(s.fail),
                    "queue": _duration(s.queue),
                    "compute_input": _duration(s.compute_input),
                    "compute_infer": _duration(s.compute_infer),
                    "compute_output": _duration(s.compute_output),
                    "cache_hit": empty,
                    "cache_miss": empty,
                },
                "batch_stats": [],
            }
            for s in versions
        ]
    }


def statistics_to_grpc(body: Mapping[str, Any]) -> v2.ModelStatisticsResponse:
    return v2.ModelStatisticsResponse(
        model_stats=[
            v2.ModelStatistics(
                name=s["name"],
                version=s["version"],
                last_inference=s["last_inference"],
                inference_count=s["inference_count"],
                execution_count=s["execution_count"],
                inference_stats=v2.InferStatistics(
                    **{k: v2.StatisticDuration(**d) for k, d in s["inference_stats"].items()}
                ),
            )
            for s in body["model_stats"]
        ]
    )


def repository_index(models: Iterable[pb.ModelInfo], ready_only: bool) -> list[dict[str, str]]:
    """One entry per model version: state READY or UNAVAILABLE, with the reason."""
    index = []
    for model in models:
        for v in model.versions:
            ready = v.state == pb.ModelVersion.READY
            if ready_only and not ready:
                continue
            entry = {
                "name": model.name,
                "version": v.version,
                "state": "READY" if ready else "UNAVAILABLE",
            }
            if not ready:
                entry["reason"] = v.error
            index.append(entry)
    return index


def server_metadata() -> dict[str, Any]:
    return {"name": "inferencehub", "version": __version__, "extensions": list(EXTENSIONS)}


def output_array(tensor: pb.Tensor) -> np.ndarray:
    """A response tensor for JSON: flat, FP16 widened (JSON has no half floats)."""
    array = tensor_to_numpy(tensor).reshape(-1)
    return array.astype(np.float32) if tensor.datatype == "FP16" else array
