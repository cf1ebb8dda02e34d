"""The real appliance answers over HTTP, gRPC and the CLI: exact results, clear errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from inferencehub.protocol.tensors import encode_bytes_elements, tensor_from_numpy, tensor_to_numpy
from inferencehub.runtime import usable_cores
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from inferencehub.worker.tuning import Constraints, candidate_layouts
from tests.hub import Hub

pytestmark = pytest.mark.e2e


def direct_run(repository: Path, model: str, version: str, feeds: dict[str, np.ndarray]) -> list:
    session = ort.InferenceSession(str(repository / model / version / "model.onnx"))
    return session.run(None, feeds)


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (20, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stub(hub: Hub):
    with grpc.insecure_channel(hub.grpc_target) as channel:
        yield inference_pb2_grpc.InferenceServiceStub(channel)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferencehub", *args], capture_output=True, text=True, timeout=60
    )


# --- predict: results equal ONNX Runtime called directly --------------------------------------


def test_http_json_predict_is_bit_identical_to_onnxruntime(hub: Hub, repository: Path) -> None:
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [3, 4], "data": x.reshape(-1).tolist()}
        ]
    }
    reply = httpx.post(f"{hub.http_url}/v1/models/scale/versions/1/predict", json=body)
    assert reply.status_code == 200, reply.text
    output = reply.json()["outputs"][0]
    got = np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    (expected,) = direct_run(repository, "scale", "1", {"x": x})
    assert got.tobytes() == expected.tobytes()
    assert reply.headers["x-model-version"] == "1"


def test_grpc_predict_is_bit_identical_to_onnxruntime(stub, repository: Path) -> None:
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    reply = stub.Predict(
        pb.PredictRequest(model_name="scale", version="2", inputs=[tensor_from_numpy("x", x)]),
        timeout=10,
    )
    (expected,) = direct_run(repository, "scale", "2", {"x": x})
    assert reply.version == "2"
    assert reply.outputs[0].contents == expected.tobytes()
    assert reply.request_id  # the gateway names every request


def test_integer_and_bool_outputs_round_trip(stub) -> None:
    a = np.array([[-1, 0], [5, 9]], dtype=np.int64)
    reply = stub.Predict(
        pb.PredictRequest(model_name="ints", inputs=[tensor_from_numpy("a", a)]), timeout=10
    )
    outputs = {t.name: tensor_to_numpy(t) for t in reply.outputs}
    np.testing.assert_array_equal(outputs["out"], a + 1)
    np.testing.assert_array_equal(outputs["flag"], a > 0)
    assert reply.outputs[1].datatype == "BOOL"


def test_requested_outputs_subset(stub) -> None:
    a = np.ones((1, 2), dtype=np.int64)
    reply = stub.Predict(
        pb.PredictRequest(model_name="ints", inputs=[tensor_from_numpy("a", a)], outputs=["flag"]),
        timeout=10,
    )
    assert [t.name for t in reply.outputs] == ["flag"]


def test_default_version_is_latest_and_explicit_version_wins(hub: Hub) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
    latest = httpx.post(f"{hub.http_url}/v1/models/scale/predict", json=body).json()
    pinned = httpx.post(f"{hub.http_url}/v1/models/scale/versions/1/predict", json=body).json()
    assert latest["version"] == "2"
    assert latest["outputs"][0]["data"] == [10, 20, 30, 40]
    assert pinned["version"] == "1"
    assert pinned["outputs"][0]["data"] == [1, 2, 3, 4]


def test_image_predict_over_http_classifies_with_labels(hub: Hub) -> None:
    reply = httpx.post(
        f"{hub.http_url}/v1/models/classifier/predict",
        content=png_bytes((0, 0, 255)),
        headers={"content-type": "image/png"},
    )
    assert reply.status_code == 200, reply.text
    (top,) = reply.json()["classifications"]
    assert len(top) == 2
    assert {c["label"] for c in top} <= {"red", "green", "blue"}
    assert top[0]["score"] >= top[1]["score"]


def test_image_batch_over_grpc_matches_direct_preprocessing(stub, repository: Path) -> None:
    images = [png_bytes((255, 0, 0)), png_bytes((0, 255, 0), (7, 30))]
    tensor = pb.Tensor(
        name="images", datatype="BYTES", shape=[2], contents=encode_bytes_elements(images)
    )
    reply = stub.Predict(pb.PredictRequest(model_name="classifier", inputs=[tensor]), timeout=10)
    # A solid colour survives crop and resize exactly: pixels are (c - 127.5) / 127.5.
    expected_input = np.stack(
        [
            np.broadcast_to(((np.array(c, np.float32) - 127.5) / 127.5)[:, None, None], (3, 8, 8))
            for c in ((255, 0, 0), (0, 255, 0))
        ]
    ).astype(np.float32)
    (logits,) = direct_run(repository, "classifier", "1", {"images": expected_input})
    np.testing.assert_allclose(tensor_to_numpy(reply.outputs[0]), logits, rtol=1e-6)
    assert len(reply.classifications) == 2
    for row, scores in zip(reply.classifications, logits, strict=True):
        assert row.classes[0].index == int(np.argmax(scores))


def test_cli_predict_image_prints_labels_and_version(hub: Hub, tmp_path: Path) -> None:
    image = tmp_path / "blue.png"
    image.write_bytes(png_bytes((0, 0, 255)))
    result = cli("predict", str(image), "--model", "classifier", "--url", hub.http_url)
    assert result.returncode == 0, result.stderr
    assert "classifier version 1" in result.stdout
    assert any(label in result.stdout for label in ("red", "green", "blue"))


def test_cli_predict_npy_input_json_over_grpc(hub: Hub, tmp_path: Path, repository: Path) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(tmp_path / "x.npy", x)
    result = cli(
        "predict",
        "--model",
        "scale",
        "--version",
        "1",
        "--input",
        f"x={tmp_path / 'x.npy'}",
        "--json",
        "--url",
        hub.grpc_url,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (expected,) = direct_run(repository, "scale", "1", {"x": x})
    assert payload["version"] == "1"
    assert payload["outputs"]["y"]["data"] == expected.reshape(-1).tolist()


def test_cli_models_lists_versions_states_and_broken_model(hub: Hub) -> None:
    result = cli("models", "--json", "--url", hub.http_url)
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m for m in json.loads(result.stdout)["models"]}
    assert [v["version"] for v in models["scale"]["versions"]] == ["1", "2"]
    assert models["scale"]["default_version"] == "2"
    scale_v1 = models["scale"]["versions"][0]
    assert scale_v1["provider"] == "CPUExecutionProvider"
    assert scale_v1["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    broken = models["broken"]["versions"][0]
    assert broken["state"] == "FAILED"
    assert "cannot load model.onnx" in broken["error"]
    table = cli("models", "--url", hub.http_url)
    assert "FAILED" in table.stdout
    assert "scale" in table.stdout


def test_cli_models_show_tells_the_measured_layout(hub: Hub) -> None:
    """Versions load tuned (tuning = "auto" is the default): the layout each serves with is
    the fastest one measured, and `models show` says so."""
    shown = json.loads(cli("models", "show", "scale", "--json", "--url", hub.http_url).stdout)
    (model,) = shown["models"]
    for version in model["versions"]:
        tuning = version["tuning"]
        assert tuning["source"] == "measured", tuning
        layouts = [t for t in tuning["trials"] if t["batch"] == 1]
        tried = candidate_layouts(Constraints(cores=usable_cores()))
        assert [(t["instances"], t["intra_op_threads"]) for t in layouts] == [
            (c.instances, c.threads) for c in tried
        ]
        fastest = max(layouts, key=lambda t: t["items_per_s"])
        assert version["instances"] == fastest["instances"]
        assert tuning["intra_op_threads"] == fastest["intra_op_threads"]
    table = cli("models", "show", "scale", "--url", hub.http_url)
    assert table.returncode == 0, table.stderr
    assert "execution layout" in table.stdout and "measured" in table.stdout
    assert "(fastest)" in table.stdout


# --- errors: clear, mapped, never a traceback -------------------------------------------------


def test_unknown_model_is_404_naming_the_models(hub: Hub, stub) -> None:
    reply = httpx.post(f"{hub.http_url}/v1/models/nope/predict", json={"inputs": []})
    assert reply.status_code == 404
    assert reply.json()["error"].startswith("Request for unknown model: 'nope' is not found")
    assert "scale" in reply.json()["error"]
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(pb.PredictRequest(model_name="nope"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_version_is_404_naming_the_versions(hub: Hub, stub) -> None:
    reply = httpx.post(f"{hub.http_url}/v1/models/scale/versions/7/predict", json={"inputs": []})
    assert reply.status_code == 404
    assert reply.json()["error"] == "model 'scale' has no version '7'; versions: 1, 2"
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(pb.PredictRequest(model_name="scale", version="7"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "versions: 1, 2" in err.value.details()


@pytest.mark.parametrize(
    ("tensor", "needle"),
    [
        (
            {"name": "z", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]},
            "input 'z' is not an input of this model; expected: x FP32 [-1, 4]",
        ),
        (
            {"name": "x", "datatype": "INT32", "shape": [1, 4], "data": [0, 0, 0, 0]},
            "input 'x' has datatype INT32; expected FP32 [-1, 4]",
        ),
        (
            {"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [0, 0, 0]},
            "input 'x' has shape [1, 3]; expected FP32 [-1, 4]",
        ),
        (
            {"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0, 0]},
            "input 'x' has 2 elements; shape [1, 4] needs 4",
        ),
        (
            {"name": "x", "datatype": "FP99", "shape": [1, 4], "data": [0, 0, 0, 0]},
            "unknown datatype 'FP99'",
        ),
    ],
)
def test_bad_inputs_are_400_naming_the_signature(hub: Hub, tensor: dict, needle: str) -> None:
    reply = httpx.post(f"{hub.http_url}/v1/models/scale/predict", json={"inputs": [tensor]})
    assert reply.status_code == 400
    assert needle in reply.json()["error"]


def test_bad_inputs_over_grpc_are_invalid_argument(stub) -> None:
    wrong = pb.Tensor(name="x", datatype="FP32", shape=[1, 4], contents=b"\0" * 15)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(pb.PredictRequest(model_name="scale", inputs=[wrong]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "carries 15 bytes; FP32 [1, 4] needs 16" in err.value.details()


def test_missing_input_is_400(hub: Hub) -> None:
    reply = httpx.post(f"{hub.http_url}/v1/models/scale/predict", json={"inputs": []})
    assert reply.status_code == 400
    assert "missing input(s) x" in reply.json()["error"]


def test_malformed_json_is_400(hub: Hub) -> None:
    reply = httpx.post(
        f"{hub.http_url}/v1/models/scale/predict",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 400
    assert "not valid JSON" in reply.json()["error"]


def test_not_an_image_is_400_could_not_decode(hub: Hub, stub) -> None:
    reply = httpx.post(
        f"{hub.http_url}/v1/models/classifier/predict",
        content=b"plain text",
        headers={"content-type": "image/jpeg"},
    )
    assert reply.status_code == 400
    assert "could not decode image" in reply.json()["error"]
    tensor = pb.Tensor(
        name="images",
        datatype="BYTES",
        shape=[1],
        contents=encode_bytes_elements([b"GIF89a-garbage"]),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(pb.PredictRequest(model_name="classifier", inputs=[tensor]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not decode image" in err.value.details()


def test_image_to_a_model_without_preprocessing_is_400(hub: Hub) -> None:
    reply = httpx.post(
        f"{hub.http_url}/v1/models/scale/predict",
        content=png_bytes((1, 2, 3)),
        headers={"content-type": "image/png"},
    )
    assert reply.status_code == 400
    assert "takes no images" in reply.json()["error"]


def test_broken_model_predict_says_why_and_others_still_serve(hub: Hub) -> None:
    reply = httpx.post(f"{hub.http_url}/v1/models/broken/predict", json={"inputs": []})
    assert reply.status_code == 409
    assert "failed to load" in reply.json()["error"]
    assert httpx.get(f"{hub.http_url}/v2/health/ready").status_code == 200


def test_unknown_route_is_json_404(hub: Hub) -> None:
    reply = httpx.get(f"{hub.http_url}/v1/nothing-here")
    assert reply.status_code == 404
    assert reply.json() == {"error": "Not Found"}


def test_cli_reports_server_errors_in_one_line(hub: Hub, tmp_path: Path) -> None:
    image = tmp_path / "notes.jpg"
    image.write_text("not an image")
    result = cli("predict", str(image), "--model", "classifier", "--url", hub.http_url)
    assert result.returncode == 1
    assert "could not decode image" in result.stderr
    assert "Traceback" not in result.stderr
