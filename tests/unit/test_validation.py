"""Requests are checked against the signature before any compute, with messages that help."""

from __future__ import annotations

import numpy as np
import pytest

from inferencehub.errors import InvalidRequestError, ModelNotFoundError, ModelNotReadyError
from inferencehub.protocol.routing import resolve_version
from inferencehub.protocol.tensors import encode_bytes_elements, tensor_from_numpy
from inferencehub.protocol.validation import validate_predict
from inferencehub.v1 import inference_pb2 as pb

V1 = pb.ModelVersion(
    version="1",
    state=pb.ModelVersion.READY,
    inputs=[pb.TensorSpec(name="images", datatype="FP32", shape=[-1, 3, 4, 4])],
    outputs=[pb.TensorSpec(name="logits", datatype="FP32", shape=[-1, 2])],
    image=pb.ImageInput(input="images", height=4, width=4),
)
FAILED = pb.ModelVersion(version="3", state=pb.ModelVersion.FAILED, error="bad file")
MODEL = pb.ModelInfo(name="m", default_version="1", versions=[V1, FAILED])


def request(*tensors: pb.Tensor, outputs: tuple[str, ...] = ()) -> pb.PredictRequest:
    return pb.PredictRequest(model_name="m", inputs=list(tensors), outputs=list(outputs))


def test_empty_version_resolves_to_default() -> None:
    assert resolve_version(MODEL, "").version == "1"


def test_unknown_version_names_existing_ones() -> None:
    with pytest.raises(ModelNotFoundError, match="no version '2'; versions: 1, 3"):
        resolve_version(MODEL, "2")


def test_failed_version_says_why() -> None:
    with pytest.raises(ModelNotReadyError, match="version 3 failed to load: bad file"):
        resolve_version(MODEL, "3")


def test_valid_tensor_and_image_inputs_pass() -> None:
    validate_predict(request(tensor_from_numpy("images", np.zeros((2, 3, 4, 4), np.float32))), V1)
    images = pb.Tensor(
        name="images", datatype="BYTES", shape=[2], contents=encode_bytes_elements([b"a", b"b"])
    )
    validate_predict(request(images), V1)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            tensor_from_numpy("images", np.zeros((1, 3, 4, 5), np.float32)),
            r"has shape \[1, 3, 4, 5\]; expected FP32 \[-1, 3, 4, 4\]",
        ),
        (
            tensor_from_numpy("images", np.zeros((1, 3, 4, 4), np.float64)),
            "has datatype FP64; expected FP32",
        ),
        (
            tensor_from_numpy("other", np.zeros((1,), np.float32)),
            r"'other' is not an input of this model; expected: images FP32 \[-1, 3, 4, 4\] "
            r"\(or BYTES \[N\]: encoded images\)",
        ),
        (
            pb.Tensor(name="images", datatype="BYTES", shape=[1, 1], contents=b""),
            r"encoded images must have shape \[N\]",
        ),
    ],
)
def test_mismatches_name_the_expected_signature(tensor: pb.Tensor, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        validate_predict(request(tensor), V1)


def test_duplicate_input_is_rejected() -> None:
    t = tensor_from_numpy("images", np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(InvalidRequestError, match="is given twice"):
        validate_predict(request(t, t), V1)


def test_unknown_requested_output_is_rejected() -> None:
    t = tensor_from_numpy("images", np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(InvalidRequestError, match="requested output 'probs' does not exist"):
        validate_predict(request(t, outputs=("probs",)), V1)
