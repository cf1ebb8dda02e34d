"""The KServe v2 API of the real appliance, driven with our own v2 stubs and plain HTTP.

Triton's own clients (tritonclient, perf_analyzer) are exercised in test_kserve_clients.py and
test_perf_analyzer.py, in their own processes.
"""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from PIL import Image

from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from inferencehub.protocol.tensors import encode_bytes_elements
from tests.hub import Hub

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def channel(hub: Hub):
    with grpc.insecure_channel(hub.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel):
    return grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)


def direct(repository: Path, model: str, version: str, feeds: dict) -> list:
    return ort.InferenceSession(str(repository / model / version / "model.onnx")).run(None, feeds)


def test_grpc_infer_raw_contents_is_bit_identical(stub, repository: Path) -> None:
    x = np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32)
    reply = stub.ModelInfer(
        v2.ModelInferRequest(
            model_name="scale",
            model_version="1",
            id="req-7",
            inputs=[v2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[3, 4])],
            raw_input_contents=[x.tobytes()],
        ),
        timeout=10,
    )
    (expected,) = direct(repository, "scale", "1", {"x": x})
    assert reply.raw_output_contents[0] == expected.tobytes()
    assert (reply.model_name, reply.model_version, reply.id) == ("scale", "1", "req-7")
    assert list(reply.outputs[0].shape) == [3, 4]


def test_grpc_infer_typed_contents(stub) -> None:
    tensor = v2.ModelInferRequest.InferInputTensor(name="a", datatype="INT64", shape=[1, 2])
    tensor.contents.int64_contents.extend([-5, 7])
    reply = stub.ModelInfer(
        v2.ModelInferRequest(
            model_name="ints",
            inputs=[tensor],
            outputs=[v2.ModelInferRequest.InferRequestedOutputTensor(name="out")],
        ),
        timeout=10,
    )
    assert [o.name for o in reply.outputs] == ["out"]
    assert np.frombuffer(reply.raw_output_contents[0], np.int64).tolist() == [-4, 8]


def test_grpc_errors_use_canonical_codes(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelMetadata(v2.ModelMetadataRequest(name="scale", version="9"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "versions: 1, 2" in err.value.details()
    bad = v2.ModelInferRequest(
        model_name="scale",
        inputs=[v2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])],
        raw_input_contents=[b"\0" * 12],
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.ModelInfer(bad, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "carries 12 bytes; FP32 [1, 4] needs 16" in err.value.details()
    assert stub.ModelReady(v2.ModelReadyRequest(name="nope"), timeout=10).ready is False
    assert stub.ModelReady(v2.ModelReadyRequest(name="broken"), timeout=10).ready is False
    assert stub.ModelReady(v2.ModelReadyRequest(name="scale", version="1"), timeout=10).ready


def test_batch_larger_than_max_batch_size_is_refused(hub: Hub) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [65, 4], "data": [0.0] * 260}]}
    reply = httpx.post(f"{hub.http_url}/v2/models/scale/infer", json=body)
    assert reply.status_code == 400
    assert "batch size 65; this model takes at most 64" in reply.json()["error"]


def test_http_v2_image_bytes_through_binary_extension(hub: Hub) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (9, 9), (200, 10, 10)).save(buffer, format="PNG")
    data = encode_bytes_elements([buffer.getvalue()])
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(data)},
                }
            ]
        }
    )
    reply = httpx.post(
        f"{hub.http_url}/v2/models/classifier/versions/1/infer",
        content=header + data,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert reply.status_code == 200, reply.text
    (output,) = reply.json()["outputs"]
    assert (output["name"], output["shape"]) == ("logits", [1, 3])


def test_http_gzip_request_body(hub: Hub) -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
    )
    reply = httpx.post(
        f"{hub.http_url}/v2/models/scale/versions/1/infer",
        content=gzip.compress(body),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["data"] == [1, 2, 3, 4]
    bomb = gzip.compress(b" " * (80 * 1024 * 1024))  # 80 MiB of spaces, ~80 KiB on the wire
    reply = httpx.post(
        f"{hub.http_url}/v2/models/scale/infer", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert reply.status_code == 413


def test_http_statistics_count_inferences(hub: Hub) -> None:
    def count() -> int:
        stats = httpx.get(f"{hub.http_url}/v2/models/ints/versions/1/stats").json()
        return stats["model_stats"][0]["inference_count"]

    before = count()
    body = {"inputs": [{"name": "a", "datatype": "INT64", "shape": [3, 2], "data": [0] * 6}]}
    assert httpx.post(f"{hub.http_url}/v2/models/ints/infer", json=body).status_code == 200
    assert count() == before + 3


def test_unload_and_load_over_http_and_grpc(hub: Hub, stub) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]}
    assert httpx.post(f"{hub.http_url}/v2/repository/models/scale/unload").status_code == 200
    refused = httpx.post(f"{hub.http_url}/v2/models/scale/infer", json=body)
    assert refused.status_code == 409
    assert "unloaded" in refused.json()["error"]
    index = httpx.post(f"{hub.http_url}/v2/repository/index", json={}).json()
    assert {"name": "scale", "version": "2", "state": "UNAVAILABLE", "reason": "unloaded"} in index
    stub.RepositoryModelLoad(v2.RepositoryModelLoadRequest(model_name="scale"), timeout=30)
    assert httpx.post(f"{hub.http_url}/v2/models/scale/infer", json=body).status_code == 200
    with pytest.raises(grpc.RpcError) as err:
        stub.RepositoryModelLoad(v2.RepositoryModelLoadRequest(model_name="absent"), timeout=30)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_unknown_model_is_named_in_tritons_words_on_both_protocols(hub: Hub, stub) -> None:
    """Triton's example clients check that the message starts this way."""
    prefix = "Request for unknown model: 'absent' is not found"
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]}
    for reply in (
        httpx.post(f"{hub.http_url}/v2/models/absent/infer", json=body),
        httpx.get(f"{hub.http_url}/v2/models/absent"),
    ):
        assert reply.status_code == 404
        assert reply.json()["error"].startswith(prefix), reply.json()
        assert "scale" in reply.json()["error"]  # the models that exist still follow
    request = v2.ModelInferRequest(model_name="absent")
    for call in (
        lambda: stub.ModelInfer(request, timeout=10),
        lambda: stub.ModelMetadata(v2.ModelMetadataRequest(name="absent"), timeout=10),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert (err.value.details() or "").startswith(prefix)


def test_reflection_lists_every_service(channel) -> None:
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {
        "inference.GRPCInferenceService",
        "inferencehub.v1.InferenceService",
        "grpc.health.v1.Health",
    } <= services


def test_openapi_document_is_served(hub: Hub) -> None:
    document = httpx.get(f"{hub.http_url}/openapi.json").json()
    assert "/v2/models/{name}/infer" in document["paths"]


def test_timeout_parameter_bounds_the_request(hub: Hub) -> None:
    body = {
        "parameters": {"timeout": 200_000},  # microseconds, as tritonclient sends it
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [1], "data": [0.0]},
            {"name": "iterations", "datatype": "INT64", "shape": [], "data": 5_000_000},
        ],
    }
    started = time.monotonic()
    reply = httpx.post(f"{hub.http_url}/v2/models/slow/infer", json=body, timeout=30)
    assert reply.status_code == 504
    assert "deadline" in reply.json()["error"]
    assert time.monotonic() - started < 2.0  # answered at its deadline, not after the compute
    bad = {**body, "parameters": {"timeout": "soon"}}
    reply = httpx.post(f"{hub.http_url}/v2/models/slow/infer", json=bad, timeout=30)
    assert reply.status_code == 400
    assert "positive number of microseconds" in reply.json()["error"]
