"""KServe v2 request parameters InferenceHub acts on, for both edges: shared memory
(`shared_memory_region`, `shared_memory_byte_size`, `shared_memory_offset` on inputs and
outputs) and classification (`classification` on outputs). gRPC parameters are first made the
values JSON would carry, so one parser serves both protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from inferencehub.errors import InvalidRequestError
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.v1 import inference_pb2 as pb

SHM_REGION: Final = "shared_memory_region"
SHM_SIZE: Final = "shared_memory_byte_size"
SHM_OFFSET: Final = "shared_memory_offset"


def typed_parameters(parameters: Mapping[str, v2.InferParameter]) -> dict[str, Any]:
    """gRPC parameters as the values JSON would carry (bool, int, str, float)."""
    typed: dict[str, Any] = {}
    for key, value in parameters.items():
        choice = value.WhichOneof("parameter_choice")
        typed[key] = None if choice is None else getattr(value, choice)
    return typed


def _count(what: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(f"{what}: parameter '{key}' must be a non-negative integer")
    return value


def region_ref(what: str, parameters: Mapping[str, Any]) -> pb.SharedMemorySpan | None:
    """The shared-memory parameters of an input or output, unresolved (region name, offset
    within it, size): the gateway's registry turns the name into the object's key.

    Raises:
        InvalidRequestError: some are missing or of the wrong type.
    """
    region = parameters.get(SHM_REGION)
    if region is None:
        stray = sorted(k for k in parameters if k.startswith("shared_memory_"))
        if stray:
            raise InvalidRequestError(f"{what}: {', '.join(stray)} given without {SHM_REGION}")
        return None
    if not isinstance(region, str) or SHM_SIZE not in parameters:
        raise InvalidRequestError(
            f"{what}: shared memory needs {SHM_REGION} (a registered region's name) and "
            f"{SHM_SIZE}, and may give {SHM_OFFSET}"
        )
    return pb.SharedMemorySpan(
        region=region,
        byte_size=_count(what, SHM_SIZE, parameters[SHM_SIZE]),
        region_offset=_count(what, SHM_OFFSET, parameters.get(SHM_OFFSET, 0)),
    )


def output_options(name: str, parameters: Mapping[str, Any]) -> pb.OutputOptions | None:
    """How an output comes back: top-k classes (classification), into a region, or as is.

    Raises:
        InvalidRequestError: bad parameters, or both at once (as tritonclient refuses).
    """
    what = f"output '{name}'"
    region = region_ref(what, parameters)
    count = parameters.get("classification")
    classes = 0 if count is None else _count(what, "classification", count)
    if region is not None and classes:
        raise InvalidRequestError(f"{what}: a classification output cannot go to shared memory")
    if region is None and not classes:
        return None
    options = pb.OutputOptions(class_count=classes)
    if region is not None:
        options.shared_memory.CopyFrom(region)
    return options


def region_parameters(span: pb.SharedMemorySpan) -> dict[str, Any]:
    """What a response says of an output written into a region (Triton's parameters)."""
    parameters: dict[str, Any] = {SHM_REGION: span.region, SHM_SIZE: span.byte_size}
    if span.region_offset:
        parameters[SHM_OFFSET] = span.region_offset
    return parameters


def grpc_parameter(value: Any) -> v2.InferParameter:
    if isinstance(value, str):
        return v2.InferParameter(string_param=value)
    return v2.InferParameter(int64_param=value)
