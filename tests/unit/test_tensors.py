"""Raw-bytes tensors and JSON tensors round-trip every datatype exactly."""

from __future__ import annotations

import numpy as np
import pytest

from inferencehub.errors import InvalidRequestError
from inferencehub.protocol.datatypes import NUMPY_BY_DATATYPE, datatype_of
from inferencehub.protocol.json_codec import tensor_from_json, tensor_to_json
from inferencehub.protocol.tensors import (
    decode_bytes_elements,
    encode_bytes_elements,
    tensor_from_numpy,
    tensor_to_numpy,
)


@pytest.mark.parametrize("datatype", sorted(NUMPY_BY_DATATYPE))
def test_numeric_tensors_round_trip(datatype: str) -> None:
    dtype = NUMPY_BY_DATATYPE[datatype]
    array = (np.arange(6) % 2).astype(dtype).reshape(2, 3)
    tensor = tensor_from_numpy("t", array)
    assert tensor.datatype == datatype
    assert list(tensor.shape) == [2, 3]
    back = tensor_to_numpy(tensor)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, array)


def test_big_endian_arrays_are_sent_little_endian() -> None:
    array = np.array([1.5, -2.0], dtype=">f4")
    assert tensor_from_numpy("t", array).contents == np.array([1.5, -2.0], "<f4").tobytes()


def test_bytes_elements_use_length_prefixes() -> None:
    encoded = encode_bytes_elements([b"ab", b""])
    assert encoded == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"
    assert decode_bytes_elements(encoded, 2) == [b"ab", b""]


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (b"\x05\x00\x00\x00ab", "declares 5 bytes, 2 remain"),
        (b"\x01\x00", "length prefix is cut off"),
    ],
)
def test_truncated_bytes_are_rejected(contents: bytes, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        decode_bytes_elements(contents)


def test_bytes_count_must_match_shape() -> None:
    with pytest.raises(InvalidRequestError, match="holds 1 elements, its shape says 2"):
        decode_bytes_elements(encode_bytes_elements([b"x"]), 2)


def test_contents_must_match_shape() -> None:
    tensor = tensor_from_numpy("t", np.zeros((2, 2), np.float32))
    tensor.shape[:] = [2, 3]
    with pytest.raises(InvalidRequestError, match=r"16 bytes of contents; FP32 \[2, 3\] needs 24"):
        tensor_to_numpy(tensor)


def test_string_arrays_are_bytes_tensors() -> None:
    array = np.array(["héllo", "x"])
    assert datatype_of(array) == "BYTES"
    back = tensor_to_numpy(tensor_from_numpy("s", array))
    assert back.tolist() == ["héllo".encode(), b"x"]


def test_json_tensor_from_nested_data() -> None:
    tensor = tensor_from_json(
        0, {"name": "x", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}
    )
    np.testing.assert_array_equal(tensor_to_numpy(tensor), [[1, 2], [3, 4]])


def test_json_float32_round_trips_exactly() -> None:
    values = np.random.default_rng(0).normal(size=16).astype(np.float32)
    import orjson

    text = orjson.dumps(
        tensor_to_json(tensor_from_numpy("y", values)), option=orjson.OPT_SERIALIZE_NUMPY
    )
    parsed = orjson.loads(text)
    back = tensor_from_json(0, {**parsed, "name": "y"})
    assert tensor_to_numpy(back).tobytes() == values.tobytes()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "x"}, "must be an object with 'name', 'datatype', 'shape' and 'data'"),
        ({"name": "x", "datatype": "FP32", "shape": [-1], "data": []}, "non-negative ints"),
        ({"name": "x", "datatype": "FP32", "shape": [2], "data": ["a", "b"]}, "list of FP32"),
        ({"name": "x", "datatype": "BYTES", "shape": [1], "data": [5]}, "list of strings"),
        ({"name": "x", "datatype": "UINT8", "shape": [1], "data": [300]}, "list of UINT8"),
    ],
)
def test_bad_json_tensors_name_the_problem(item: dict, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        tensor_from_json(0, item)
