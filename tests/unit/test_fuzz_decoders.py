"""Bounded fuzzing of every request decoder: whatever the bytes, the answer is a HubError with
a message (a 4xx) or a valid request, never another exception (a 500) or a hang."""

from __future__ import annotations

import io

import numpy as np
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inferencehub.errors import HubError
from inferencehub.gateway.kserve_rest import parse_infer_request
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.protocol import kserve_codec
from inferencehub.protocol.json_codec import tensor_from_json
from inferencehub.protocol.tensors import decode_bytes_elements, tensor_to_numpy
from inferencehub.protocol.validation import validate_predict
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.preprocess import decode_image

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATATYPES = ["BOOL", "UINT8", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES", "FP99", ""]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SIGNATURE = pb.ModelVersion(
    version="1",
    state=pb.ModelVersion.READY,
    max_batch_size=8,
    inputs=[pb.TensorSpec(name="x", datatype="FP32", shape=[-1, 4])],
    outputs=[pb.TensorSpec(name="y", datatype="FP32", shape=[-1, 4])],
)


def only_hub_errors(call, *args) -> None:
    try:
        call(*args)
    except HubError as exc:
        assert exc.message


@FUZZ
@given(st.binary(max_size=300), st.one_of(st.none(), st.text(max_size=6)))
def test_rest_infer_bodies(body: bytes, header_length: str | None) -> None:
    only_hub_errors(parse_infer_request, body, header_length, "m", "")


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["name", "datatype", "shape", "data", "parameters"]),
        json_values,
        max_size=5,
    )
)
def test_json_tensors(item: dict) -> None:
    only_hub_errors(tensor_from_json, 0, item)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_as_a_v2_grpc_request(data: bytes) -> None:
    try:
        request = v2.ModelInferRequest.FromString(data)
    except DecodeError:  # gRPC itself refuses what protobuf cannot parse
        return
    only_hub_errors(kserve_codec.predict_request_from_grpc, request)


@FUZZ
@given(st.sampled_from(DATATYPES), st.lists(st.integers(-3, 6), max_size=4), st.binary(max_size=64))
def test_raw_tensors_and_validation(datatype: str, shape: list[int], contents: bytes) -> None:
    tensor = pb.Tensor(name="x", datatype=datatype, shape=shape, contents=contents)
    only_hub_errors(validate_predict, pb.PredictRequest(inputs=[tensor]), SIGNATURE)
    only_hub_errors(tensor_to_numpy, tensor)
    only_hub_errors(decode_bytes_elements, contents)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@FUZZ
@given(st.integers(0, 600), st.binary(max_size=16))
def test_corrupt_images(cut: int, noise: bytes) -> None:
    data = _png(17, 9)
    only_hub_errors(decode_image, data[:cut] + noise, 10_000)


def test_valid_png_still_decodes() -> None:
    assert np.asarray(decode_image(_png(17, 9), 10_000)).shape == (9, 17, 3)
