"""The bundled EfficientNet-Lite classifier gives true answers on real photos, offline."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from tests.hub import Hub, running_hub

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CAT_CLASSES = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(ROOT / "models", tmp_path_factory.mktemp("logs")) as hub:
        yield hub


def classify(hub: Hub, photo: str, version: str) -> list[dict]:
    reply = httpx.post(
        f"{hub.http_url}/v1/models/efficientnet/versions/{version}/predict",
        content=(ROOT / "examples" / photo).read_bytes(),
        headers={"content-type": "image/jpeg"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["version"] == version
    (top,) = reply.json()["classifications"]
    return top


@pytest.mark.parametrize("version", ["1", "2"])
def test_cat_photo_is_a_cat(bundled: Hub, version: str) -> None:
    top = classify(bundled, "cat.jpg", version)
    assert len(top) == 5
    assert top[0]["label"] in CAT_CLASSES
    assert sum(c["score"] for c in top[:3] if c["label"] in CAT_CLASSES) > 0.8


@pytest.mark.parametrize("version", ["1", "2"])
def test_coffee_photo_is_espresso(bundled: Hub, version: str) -> None:
    top = classify(bundled, "coffee.jpg", version)
    assert top[0]["label"] == "espresso"
    assert top[0]["score"] > 0.8


def test_versions_have_their_own_input_sizes(bundled: Hub) -> None:
    model = httpx.get(f"{bundled.http_url}/v1/models/efficientnet").json()
    sizes = {v["version"]: (v["image"]["height"], v["image"]["width"]) for v in model["versions"]}
    assert sizes == {"1": (224, 224), "2": (260, 260)}
    assert model["default_version"] == "2"


def test_quick_start_predict_command(bundled: Hub) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferencehub",
            "predict",
            "examples/cat.jpg",
            "--model",
            "efficientnet",
            "--version",
            "2",
            "--url",
            bundled.http_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "efficientnet version 2" in result.stdout
    assert "Egyptian cat" in result.stdout
    assert "tabby" in result.stdout


def v2_classify(hub: Hub, photos: list[str], count: int) -> tuple[list[list[str]], np.ndarray]:
    """The photos as BYTES over KServe v2: the top `count` class strings over HTTP (checked
    equal over gRPC) and the raw logits over gRPC."""
    images = np.array([(ROOT / "examples" / p).read_bytes() for p in photos], dtype=object)
    client = httpclient.InferenceServerClient(hub.http_url.removeprefix("http://"))
    tensor = httpclient.InferInput("images", [len(photos)], "BYTES")
    tensor.set_data_from_numpy(images)
    classes = client.infer(
        "efficientnet",
        [tensor],
        outputs=[httpclient.InferRequestedOutput("logits", binary_data=False, class_count=count)],
    ).as_numpy("logits")
    with grpc.insecure_channel(hub.grpc_target) as channel:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = v2.ModelInferRequest(
            model_name="efficientnet", raw_input_contents=[serialize_byte_tensor(images).item()]
        )
        request.inputs.add(name="images", datatype="BYTES", shape=[len(photos)])
        request.outputs.add(name="logits")
        reply = stub.ModelInfer(request, timeout=60)
        counted = v2.ModelInferRequest()
        counted.CopyFrom(request)
        counted.outputs[0].parameters["classification"].int64_param = count
        classes_grpc = stub.ModelInfer(counted, timeout=60)
    logits = np.frombuffer(reply.raw_output_contents[0], np.float32).reshape(len(photos), -1)
    from_grpc = deserialize_bytes_tensor(classes_grpc.raw_output_contents[0])
    assert list(classes_grpc.outputs[0].shape) == [len(photos), count]
    assert [s.decode() for s in from_grpc] == [s for row in classes for s in row]
    return [list(row) for row in classes], logits


def test_classification_extension_matches_the_top_k_of_v1(bundled: Hub) -> None:
    """class_count gives Triton's "score:index:label" strings: the same classes, in the same
    order, as /v1 predict's top-k, with the model's raw logits as scores (as Triton)."""
    photos = ["cat.jpg", "coffee.jpg"]
    rows, logits = v2_classify(bundled, photos, 3)
    assert len(rows) == 2 and all(len(row) == 3 for row in rows)  # k per batch item
    for photo, row, raw in zip(photos, rows, logits, strict=True):
        top = classify(bundled, photo, "2")[:3]
        fields = [s.split(":", 2) for s in row]
        assert [(int(i), label) for _, i, label in fields] == [
            (c["index"], c["label"]) for c in top
        ]
        for score, index, _ in fields:
            assert float(score) == pytest.approx(raw[int(index)], abs=1e-5)
    assert rows[0][0].split(":")[2] in CAT_CLASSES
