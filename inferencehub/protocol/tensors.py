"""Raw-bytes tensors (inferencehub.v1.Tensor) <-> numpy, without per-element Python work."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np

from inferencehub.errors import InvalidRequestError
from inferencehub.protocol.datatypes import BYTES, NUMPY_BY_DATATYPE, datatype_of
from inferencehub.v1 import inference_pb2 as pb

_LENGTH = struct.Struct("<I")


def encode_bytes_elements(elements: Sequence[bytes]) -> bytes:
    """Serialize BYTES elements as KServe v2 does: 4-byte LE length, then the bytes."""
    return b"".join(_LENGTH.pack(len(e)) + e for e in elements)


def decode_bytes_elements(contents: bytes | memoryview, count: int | None = None) -> list[bytes]:
    """Split serialized BYTES elements; `count` is checked when given.

    Raises:
        InvalidRequestError: lengths run past the buffer or the count is wrong.
    """
    view = memoryview(contents)
    elements: list[bytes] = []
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise InvalidRequestError(
                "BYTES tensor is truncated: a 4-byte length prefix is cut off"
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidRequestError(
                f"BYTES tensor is truncated: element {len(elements)} declares {length} bytes, "
                f"{len(view) - offset} remain"
            )
        elements.append(bytes(view[offset : offset + length]))
        offset += length
    if count is not None and len(elements) != count:
        raise InvalidRequestError(
            f"BYTES tensor holds {len(elements)} elements, its shape says {count}"
        )
    return elements


def element_count(shape: Sequence[int]) -> int:
    """Number of elements of a shape (1 for a scalar)."""
    return math.prod(shape)


def wire_form(array: np.ndarray) -> tuple[str, bytes | np.ndarray]:
    """An array's v2 datatype and what goes on the wire: BYTES serialized, numeric arrays as
    little-endian C order (still numpy, so the caller copies them once, wherever they go)."""
    datatype = datatype_of(array)
    if datatype == BYTES:
        flat = [e if isinstance(e, bytes) else str(e).encode() for e in array.reshape(-1).tolist()]
        return datatype, encode_bytes_elements(flat)
    return datatype, np.ascontiguousarray(array, dtype=NUMPY_BY_DATATYPE[datatype])


def tensor_from_numpy(name: str, array: np.ndarray) -> pb.Tensor:
    """Build a raw-bytes tensor; numeric arrays are copied once, as little-endian C order."""
    datatype, data = wire_form(array)
    contents = data if isinstance(data, bytes) else data.tobytes()
    return pb.Tensor(name=name, datatype=datatype, shape=list(array.shape), contents=contents)


def tensor_to_numpy(tensor: pb.Tensor) -> np.ndarray:
    """View a raw-bytes tensor as numpy (zero-copy for numeric types; read-only).

    Raises:
        InvalidRequestError: unknown datatype, negative dims, or contents that do not
            match the shape.
    """
    return array_from_buffer(tensor.name, tensor.datatype, tensor.shape, tensor.contents)


def array_from_buffer(
    name: str, datatype: str, shape: Sequence[int], buffer: bytes | memoryview
) -> np.ndarray:
    """A tensor's bytes, wherever they lie (a message, the hop's arena), as numpy: a view
    without a copy for numeric types, an object array of bytes for BYTES.

    Raises:
        InvalidRequestError: unknown datatype, negative dims, or bytes that do not match the
            shape.
    """
    dims = tuple(shape)
    if any(d < 0 for d in dims):
        raise InvalidRequestError(f"input '{name}' has a negative dimension: {list(dims)}")
    count = element_count(dims)
    if datatype == BYTES:
        elements = decode_bytes_elements(buffer, count)
        return np.array(elements, dtype=object).reshape(dims)
    dtype = NUMPY_BY_DATATYPE.get(datatype)
    if dtype is None:
        raise InvalidRequestError(
            f"input '{name}' has unknown datatype '{datatype}'; "
            f"expected one of {', '.join(sorted([*NUMPY_BY_DATATYPE, BYTES]))}"
        )
    expected = count * dtype.itemsize
    if len(buffer) != expected:
        raise InvalidRequestError(
            f"input '{name}' has {len(buffer)} bytes of contents; "
            f"{datatype} {list(dims)} needs {expected}"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(dims)
