"""Version routing on the real appliance: a 90/10 split, labels, sticky routing keys, and the
version that served each request in every response (HTTP header and body, gRPC fields)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from inferencehub.kserve import grpc_predict_v2_pb2 as v2
from inferencehub.kserve import grpc_predict_v2_pb2_grpc
from tests.hub import Hub, running_hub
from tests.model_builders import scale_model

pytestmark = pytest.mark.e2e

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
ROUTING = """
[routing]
labels = { stable = 1, canary = 2 }
split = { "1" = 90, "2" = 10 }
"""


@pytest.fixture(scope="module")
def split_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("split")
    scale_model(root / "models" / "resnet" / "1" / "model.onnx", [1, 1, 1, 1])
    scale_model(root / "models" / "resnet" / "2" / "model.onnx", [2, 2, 2, 2])
    (root / "models" / "resnet" / "model.toml").write_text(ROUTING)
    with running_hub(root / "models", root) as hub:
        yield hub


def test_split_without_a_key_holds_its_proportion(split_hub: Hub) -> None:
    n = 400
    with httpx.Client(base_url=split_hub.http_url) as client:
        served = []
        for _ in range(n):
            reply = client.post("/v1/models/resnet/predict", json=BODY)
            expected = {"1": [1, 1, 1, 1], "2": [2, 2, 2, 2]}[reply.headers["x-model-version"]]
            assert reply.json()["outputs"][0]["data"] == expected
            served.append(reply.headers["x-model-version"])
    assert abs(served.count("2") - n * 0.1) <= 5 * math.sqrt(n * 0.1 * 0.9)


def test_labels_pick_their_version(split_hub: Hub) -> None:
    for label, version in (("stable", "1"), ("canary", "2")):
        reply = httpx.post(
            f"{split_hub.http_url}/v2/models/resnet/versions/{label}/infer", json=BODY
        )
        assert reply.json()["model_version"] == version


def test_a_routing_key_always_lands_on_the_same_version(split_hub: Hub) -> None:
    with httpx.Client(base_url=split_hub.http_url) as client:
        for user in ("user-1", "user-2", "user-3", "user-42"):
            seen = {
                client.post(
                    "/v1/models/resnet/predict", json=BODY, headers={"x-routing-key": user}
                ).headers["x-model-version"]
                for _ in range(10)
            }
            assert len(seen) == 1
    with grpc.insecure_channel(split_hub.grpc_target) as channel:
        stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = v2.ModelInferRequest(
            model_name="resnet",
            inputs=[v2.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])],
            raw_input_contents=[np.ones((1, 4), np.float32).tobytes()],
        )
        versions = {
            stub.ModelInfer(
                request, timeout=10, metadata=(("x-routing-key", "user-42"),)
            ).model_version
            for _ in range(10)
        }
        assert len(versions) == 1


def test_routing_is_listed(split_hub: Hub) -> None:
    routing = httpx.get(f"{split_hub.http_url}/v1/models/resnet").json()["routing"]
    assert routing == {
        "labels": {"stable": "1", "canary": "2"},
        "split": {"1": 90.0, "2": 10.0},
        "sticky": True,
    }


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferencehub", *args], capture_output=True, text=True, timeout=60
    )


def restarted(hub: Hub) -> bool:
    status = httpx.get(f"{hub.http_url}/v1/status", timeout=5).json()
    worker = next(p for p in status["supervisor"]["processes"] if p["role"] == "worker")
    return worker["restarts"] == 1 and worker["state"] == "running"


def test_routing_changes_live_persist_and_reset(tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "m" / "1" / "model.onnx", [1, 1, 1, 1])
    scale_model(root / "m" / "2" / "model.onnx", [2, 2, 2, 2])
    with running_hub(root, tmp_path) as hub:
        url = ["--url", hub.http_url]

        def served_by(key: str) -> str:
            reply = httpx.post(
                f"{hub.http_url}/v1/models/m/predict", json=BODY, headers={"x-routing-key": key}
            )
            return reply.headers["x-model-version"]

        assert {served_by(f"u{i}") for i in range(20)} == {"2"}  # default: latest
        changed = run_cli("route", "m", "1=50", "2=50", "--label", "canary=2", "--json", *url)
        assert changed.returncode == 0, changed.stderr
        assert json.loads(changed.stdout)["routing"]["split"] == {"1": 50.0, "2": 50.0}
        assert {served_by(f"u{i}") for i in range(40)} == {"1", "2"}
        refused = run_cli("route", "m", "3=100", *url)
        assert refused.returncode == 1
        assert "names version '3', which is not ready" in refused.stderr
        assert {served_by(f"u{i}") for i in range(40)} == {"1", "2"}  # the old policy stays
        # The live policy survives a worker restart.
        os.kill(hub.children()["worker"], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the restarted worker answers
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.post(f"{hub.http_url}/v1/models/m/predict", json=BODY, timeout=5)
                if reply.status_code == 200 and restarted(hub):
                    break
            time.sleep(0.2)
        assert httpx.get(f"{hub.http_url}/v1/models/m").json()["routing"]["split"] == {
            "1": 50.0,
            "2": 50.0,
        }
        promoted = run_cli("route", "m", "--promote", "1", "--json", *url)
        assert promoted.returncode == 0, promoted.stderr
        assert json.loads(promoted.stdout)["routing"]["labels"] == {"canary": "2", "stable": "1"}
        assert {served_by(f"u{i}") for i in range(20)} == {"1"}
        shown = run_cli("route", "m", *url)
        assert "stable" in shown.stdout and "served" in shown.stdout
        reset = run_cli("route", "m", "--reset", "--json", *url)
        assert json.loads(reset.stdout)["routing"]["split"] == {}
        assert {served_by(f"u{i}") for i in range(20)} == {"2"}
