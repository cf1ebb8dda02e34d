"""KServe v2 datatype names <-> numpy dtypes (one table for every process)."""

from __future__ import annotations

from typing import Final

import numpy as np

# Fixed-size datatypes; BYTES is variable-length and handled by tensors.py.
NUMPY_BY_DATATYPE: Final[dict[str, np.dtype]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
BYTES: Final = "BYTES"
DATATYPES: Final[frozenset[str]] = frozenset({*NUMPY_BY_DATATYPE, BYTES})

# ONNX Runtime's type strings ("tensor(float)") -> v2 names.
_DATATYPE_BY_ORT: Final[dict[str, str]] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype name of a numpy array.

    Raises:
        ValueError: numpy dtype has no v2 equivalent.
    """
    if array.dtype.kind in "OSU":
        return BYTES
    little = array.dtype.newbyteorder("<")
    for name, dtype in NUMPY_BY_DATATYPE.items():
        if little == dtype:
            return name
    raise ValueError(f"numpy dtype {array.dtype} has no KServe v2 datatype")


def datatype_from_ort(ort_type: str) -> str:
    """The v2 datatype name for an ONNX Runtime type string; unknown types keep ORT's name."""
    return _DATATYPE_BY_ORT.get(ort_type, ort_type)
