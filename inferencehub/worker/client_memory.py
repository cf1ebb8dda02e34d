"""Tensors in clients' shared-memory regions, on the worker's side of a request.

The gateway resolved each region name to a span (key, offset, size, and the object's device
and inode at registration); here the bytes are copied in before decoding and out after the run
(protocol/shared_memory.py says why copies, not mappings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from inferencehub.protocol.shared_memory import RegionError, read_span, write_span
from inferencehub.protocol.tensors import wire_form
from inferencehub.v1 import inference_pb2 as pb


class Classifier(Protocol):
    def top_classes(self, name: str, values: np.ndarray, k: int) -> np.ndarray: ...


def shaped_outputs(
    model: Classifier, request: pb.PredictRequest, outputs: list[tuple[str, np.ndarray]]
) -> Sequence[tuple[str, np.ndarray | pb.Tensor]]:
    """The outputs as the request asked for them: top-k classes where it asked for
    classification, and for an output it sent to one of its regions, the response's tensor
    saying where it went. Those are written here, before any part of the answer is queued, so
    a write that fails is one clean error. A request without output options costs nothing.

    Raises:
        RegionError: an output does not fit its span, or the region cannot take it.
    """
    options = request.output_options
    if not options:
        return outputs
    shaped: list[tuple[str, np.ndarray | pb.Tensor]] = []
    for name, values in outputs:
        chosen = options[name] if name in options else None
        if chosen is None:
            shaped.append((name, values))
            continue
        if chosen.class_count:
            values = model.top_classes(name, values, chosen.class_count)
        if not chosen.HasField("shared_memory"):
            shaped.append((name, values))
            continue
        datatype, data = wire_form(values)
        tensor = pb.Tensor(name=name, datatype=datatype, shape=values.shape)
        write_output(tensor, chosen.shared_memory, data)
        shaped.append((name, tensor))
    return shaped


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
