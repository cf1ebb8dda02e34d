"""Tensors in clients' shared-memory regions, on the worker's side of a request.

The gateway resolved each region name to a span (key, offset, size, and the object's device
and inode at registration); here the bytes are copied in before decoding and out after the run
(protocol/shared_memory.py says why copies, not mappings).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from inferencehub.protocol.shared_memory import RegionError, read_span, write_span
from inferencehub.protocol.tensors import wire_form
from inferencehub.v1 import inference_pb2 as pb


class Classifier(Protocol):
    def top_classes(self, name: str, values: np.ndarray, k: int) -> np.ndarray: ...


def requested_form(
    model: Classifier, request: pb.PredictRequest, name: str, values: np.ndarray
) -> tuple[np.ndarray, pb.SharedMemorySpan | None]:
    """An output as the request asked for it (top-k classes or its values) and the region
    span it goes to, if any."""
    options = request.output_options
    if not options or name not in options:
        return values, None
    chosen = options[name]
    if chosen.class_count:
        values = model.top_classes(name, values, chosen.class_count)
    return values, chosen.shared_memory if chosen.HasField("shared_memory") else None


def region_or_contents(tensor: pb.Tensor) -> bytes | bytearray:
    """An input's bytes: read from its region, or the tensor's own contents.

    Raises:
        RegionError: the region is gone, replaced or shorter than the span.
    """
    if tensor.HasField("shared_memory"):
        return read_span(tensor.shared_memory, f"input '{tensor.name}'")
    return tensor.contents


def write_output(tensor: pb.Tensor, span: pb.SharedMemorySpan, data: bytes | np.ndarray) -> None:
    """Write an output into the client's region and record where in the response tensor
    (which then carries no contents).

    Raises:
        RegionError: the output does not fit the span, or the region cannot take it.
    """
    view = memoryview(data).cast("B")
    what = f"output '{tensor.name}'"
    if len(view) > span.byte_size:
        raise RegionError(
            f"{what} needs {len(view)} bytes; its span of shared-memory region "
            f"'{span.region}' holds {span.byte_size}"
        )
    write_span(span, view, what)
    tensor.shared_memory.CopyFrom(span)
    tensor.shared_memory.byte_size = len(view)


def region_output(name: str, array: np.ndarray, span: pb.SharedMemorySpan) -> pb.Tensor:
    """Write an output into its region; the response's tensor for it (no contents).

    Raises:
        RegionError: as write_output.
    """
    datatype, data = wire_form(array)
    tensor = pb.Tensor(name=name, datatype=datatype, shape=array.shape)
    write_output(tensor, span, data)
    return tensor
