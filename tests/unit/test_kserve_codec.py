"""KServe v2 <-> inferencehub.v1 conversions: raw and typed contents, binary extension, config."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from inferencehub.errors import InvalidRequestError
from inferencehub.gateway.kserve_rest import infer_response, parse_infer_request
from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.protocol import kserve_codec as codec
from inferencehub.protocol.tensors import (
    array_from_buffer,
    encode_bytes_elements,
    tensor_from_numpy,
)
from inferencehub.v1 import inference_pb2 as pb

VERSION = pb.ModelVersion(
    version="3",
    state=pb.ModelVersion.READY,
    max_batch_size=64,
    instances=2,
    dynamic_batching=pb.DynamicBatching(max_queue_delay_us=500, preferred_batch_sizes=[8]),
    inputs=[pb.TensorSpec(name="images", datatype="FP32", shape=[-1, 3, 8, 8])],
    outputs=[pb.TensorSpec(name="names", datatype="BYTES", shape=[-1, 1])],
    image=pb.ImageInput(input="images", layout="NCHW"),
)
MODEL = pb.ModelInfo(
    name="m",
    default_version="3",
    versions=[pb.ModelVersion(version="1", state=pb.ModelVersion.FAILED, error="bad"), VERSION],
)


def infer_input(
    name: str, datatype: str, shape: list[int]
) -> v2.ModelInferRequest.InferInputTensor:
    return v2.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)


def test_raw_input_contents_pass_through_unchanged() -> None:
    raw = np.arange(4, dtype=np.float32).tobytes()
    request = v2.ModelInferRequest(
        model_name="m",
        model_version="2",
        id="abc",
        inputs=[infer_input("x", "FP32", [1, 4])],
        raw_input_contents=[raw],
        outputs=[v2.ModelInferRequest.InferRequestedOutputTensor(name="y")],
    )
    request.parameters["priority"].int64_param = 3
    predict, payloads = codec.predict_request_from_grpc(request)
    assert payloads == [raw]
    assert predict.inputs[0].contents == b""  # the bytes travel beside the message
    assert (predict.model_name, predict.version, predict.request_id) == ("m", "2", "abc")
    assert list(predict.outputs) == ["y"]
    assert predict.parameters["priority"] == "3"


@pytest.mark.parametrize(
    ("datatype", "field", "values"),
    [
        ("INT8", "int_contents", [-1, 2]),
        ("UINT16", "uint_contents", [1, 65535]),
        ("INT64", "int64_contents", [-(2**40), 7]),
        ("BOOL", "bool_contents", [True, False]),
        ("FP64", "fp64_contents", [0.5, -2.25]),
        ("UINT64", "uint64_contents", [2**63, 1]),
    ],
)
def test_typed_contents_become_raw_bytes(datatype: str, field: str, values: list) -> None:
    tensor = infer_input("x", datatype, [2])
    getattr(tensor.contents, field).extend(values)
    predict, payloads = codec.predict_request_from_grpc(v2.ModelInferRequest(inputs=[tensor]))
    tensor = predict.inputs[0]
    assert array_from_buffer("x", tensor.datatype, tensor.shape, payloads[0]).tolist() == values


def test_typed_bytes_contents_use_length_prefixes() -> None:
    tensor = infer_input("s", "BYTES", [2])
    tensor.contents.bytes_contents.extend([b"ab", b"c"])
    _, payloads = codec.predict_request_from_grpc(v2.ModelInferRequest(inputs=[tensor]))
    assert payloads == [encode_bytes_elements([b"ab", b"c"])]


def test_fp16_cannot_use_typed_contents() -> None:
    with pytest.raises(InvalidRequestError, match="FP16 cannot travel in 'contents'"):
        codec.predict_request_from_grpc(
            v2.ModelInferRequest(inputs=[infer_input("h", "FP16", [1])])
        )


def test_value_out_of_range_for_small_ints_is_invalid() -> None:
    tensor = infer_input("x", "UINT8", [1])
    tensor.contents.uint_contents.append(300)
    with pytest.raises(InvalidRequestError, match="does not fit UINT8"):
        codec.predict_request_from_grpc(v2.ModelInferRequest(inputs=[tensor]))


def test_raw_contents_must_cover_every_input() -> None:
    request = v2.ModelInferRequest(
        inputs=[infer_input("a", "FP32", [1]), infer_input("b", "FP32", [1])],
        raw_input_contents=[b"\0" * 4],
    )
    with pytest.raises(InvalidRequestError, match="1 entries for 2 inputs"):
        codec.predict_request_from_grpc(request)


def test_config_drops_the_batch_dim_and_uses_triton_type_names() -> None:
    config = codec.model_config(MODEL, VERSION)
    assert config["max_batch_size"] == 64
    assert config["input"] == [
        {"name": "images", "data_type": "TYPE_FP32", "format": "FORMAT_NCHW", "dims": [3, 8, 8]}
    ]
    assert config["output"] == [{"name": "names", "data_type": "TYPE_STRING", "dims": [1]}]
    assert config["instance_group"][0]["count"] == 2
    assert config["dynamic_batching"] == {
        "preferred_batch_size": [8],
        "max_queue_delay_microseconds": 500,
    }
    grpc_config = codec.model_config_to_grpc(config).config
    assert grpc_config.dynamic_batching.max_queue_delay_microseconds == 500
    assert grpc_config.input[0].data_type == v2.TYPE_FP32
    assert list(grpc_config.output[0].dims) == [1]


def test_metadata_lists_ready_versions_only() -> None:
    assert codec.model_metadata(MODEL, VERSION)["versions"] == ["3"]


def test_repository_index_reports_unavailable_with_reason() -> None:
    index = codec.repository_index([MODEL], ready_only=False)
    assert index == [
        {"name": "m", "version": "1", "state": "UNAVAILABLE", "reason": "bad"},
        {"name": "m", "version": "3", "state": "READY"},
    ]
    assert codec.repository_index([MODEL], ready_only=True) == [index[1]]


def binary_body(header: dict, *chunks: bytes) -> tuple[bytes, str]:
    json_part = orjson.dumps(header)
    return json_part + b"".join(chunks), str(len(json_part))


def test_binary_extension_inputs_are_sliced_in_order() -> None:
    a, b = np.ones((1, 2), np.float32), np.arange(3, dtype=np.int64)
    body, length = binary_body(
        {
            "id": "r1",
            "inputs": [
                {
                    "name": "a",
                    "datatype": "FP32",
                    "shape": [1, 2],
                    "parameters": {"binary_data_size": a.nbytes},
                },
                {"name": "j", "datatype": "INT32", "shape": [2], "data": [5, 6]},
                {
                    "name": "b",
                    "datatype": "INT64",
                    "shape": [3],
                    "parameters": {"binary_data_size": b.nbytes},
                },
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        },
        a.tobytes(),
        b.tobytes(),
    )
    request, payloads, binary_outputs, default = parse_infer_request(body, length, "m", "")
    assert [t.name for t in request.inputs] == ["a", "j", "b"]
    assert bytes(payloads[0]) == a.tobytes()
    assert array_from_buffer("j", "INT32", [2], payloads[1]).tolist() == [5, 6]
    assert bytes(payloads[2]) == b.tobytes()
    assert request.request_id == "r1"
    assert binary_outputs == {"y": True}
    assert default is False


@pytest.mark.parametrize(
    ("header", "tail", "length", "message"),
    [
        (
            {
                "inputs": [
                    {
                        "name": "a",
                        "datatype": "FP32",
                        "shape": [1],
                        "parameters": {"binary_data_size": 8},
                    }
                ]
            },
            b"\0" * 4,
            None,
            "binary_data_size 8 runs past the 4 bytes",
        ),
        ({"inputs": []}, b"\0" * 4, None, "4 bytes of binary data follow"),
        ({"inputs": []}, b"", "999", "must be a positive byte count"),
        (
            {"inputs": [], "outputs": [{"name": "y", "parameters": {"classification": "3"}}]},
            b"",
            None,
            "output 'y': parameter 'classification' must be a non-negative integer",
        ),
        (
            {
                "inputs": [],
                "outputs": [
                    {
                        "name": "y",
                        "parameters": {
                            "classification": 3,
                            "shared_memory_region": "r",
                            "shared_memory_byte_size": 8,
                        },
                    }
                ],
            },
            b"",
            None,
            "a classification output cannot go to shared memory",
        ),
        (
            {"inputs": [], "outputs": [{"name": "y", "parameters": {"shared_memory_offset": 8}}]},
            b"",
            None,
            "shared_memory_offset given without shared_memory_region",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": [1],
                        "data": [1.0],
                        "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 4},
                    }
                ]
            },
            b"",
            None,
            "input 'x' is in shared memory and carries data too",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "datatype": "FP32",
                        "shape": [1],
                        "parameters": {"shared_memory_region": "r"},
                    }
                ]
            },
            b"",
            None,
            "shared memory needs shared_memory_region",
        ),
    ],
)
def test_binary_extension_errors(
    header: dict, tail: bytes, length: str | None, message: str
) -> None:
    body, real_length = binary_body(header, tail)
    with pytest.raises(InvalidRequestError, match=message):
        parse_infer_request(body, length or real_length, "m", "")


def test_infer_response_mixes_json_and_binary_outputs() -> None:
    y = np.array([[1.5, 2.5]], np.float32)
    z = np.array([b"hi"], dtype=object)
    response = pb.PredictResponse(
        model_name="m", version="2", outputs=[tensor_from_numpy("y", y), tensor_from_numpy("z", z)]
    )
    reply = infer_response(response, "r9", {"y": True}, binary_default=False)
    length = int(reply.headers["inference-header-content-length"])
    header = orjson.loads(reply.body[:length])
    assert header["id"] == "r9"
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert reply.body[length:] == y.tobytes()
    assert header["outputs"][1]["data"] == ["hi"]


def test_raw_and_typed_contents_cannot_mix() -> None:
    typed = infer_input("a", "INT64", [1])
    typed.contents.int64_contents.append(1)
    request = v2.ModelInferRequest(
        inputs=[typed, infer_input("b", "FP32", [1])], raw_input_contents=[b"\0" * 8, b"\0" * 4]
    )
    with pytest.raises(InvalidRequestError, match="raw_input_contents and typed contents"):
        codec.predict_request_from_grpc(request)


def test_values_in_the_wrong_typed_field_are_named() -> None:
    tensor = infer_input("x", "FP32", [2])
    tensor.contents.int_contents.extend([1, 2])
    with pytest.raises(
        InvalidRequestError,
        match=r"carries int_contents; its values belong in contents\.fp32_contents",
    ):
        codec.predict_request_from_grpc(v2.ModelInferRequest(inputs=[tensor]))
