"""The worker follows the model repository while serving: versions appear, are replaced (a
corrupt file never serves) and disappear under load; explicit load/unload works from the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.hub import Hub, running_hub, wait_for
from tests.model_builders import scale_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
ANSWERS = {"1": [1, 2, 3, 4], "2": [10, 20, 30, 40], "3": [100, 200, 300, 400]}


def place_atomically(source: Path, target: Path) -> None:
    """How docs/operations.md says to add a file: write beside, then rename into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, staging)
    os.replace(staging, target)


def predict(hub: Hub, version: str = "") -> httpx.Response:
    path = f"/v1/models/scale/versions/{version}/predict" if version else "/v1/models/scale/predict"
    return httpx.post(hub.http_url + path, json=BODY, timeout=10)


@pytest.fixture
def live_repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    scale_model(root / "scale" / "1" / "model.onnx", [1, 2, 3, 4])
    scale_model(root / "scale" / "2" / "model.onnx", [10, 20, 30, 40])
    return root


def test_versions_follow_the_repository_under_load(live_repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("[worker]\nrepository_poll_s = 0.2\n")
    staged = scale_model(tmp_path / "staged" / "model.onnx", [100, 200, 300, 400])
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage that is not a model")
    with running_hub(live_repo, tmp_path, "--config", str(config)) as hub:
        stop = threading.Event()
        problems: list[str] = []

        def client() -> None:
            while not stop.is_set():
                reply = predict(hub)
                body = reply.json()
                if reply.status_code != 200:
                    problems.append(f"{reply.status_code}: {body}")
                elif body["outputs"][0]["data"] != ANSWERS[body["version"]]:
                    problems.append(f"wrong answer from version {body['version']}")

        threads = [threading.Thread(target=client) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            # A new version appears and becomes the default.
            place_atomically(staged, live_repo / "scale" / "3" / "model.onnx")
            wait_for(lambda: predict(hub).json().get("version") == "3")
            # Version 2 is replaced by a corrupt file: the previous file keeps serving.
            place_atomically(corrupt, live_repo / "scale" / "2" / "model.onnx")
            wait_for(
                lambda: "reload failed" in str(httpx.get(f"{hub.http_url}/v1/models/scale").json())
            )
            reply = predict(hub, "2")
            assert reply.status_code == 200
            assert reply.json()["outputs"][0]["data"] == ANSWERS["2"]
            # Version 1 is removed: drained, then gone.
            shutil.rmtree(live_repo / "scale" / "1")
            wait_for(lambda: predict(hub, "1").status_code == 404)
            wait_for(
                lambda: (
                    "1"
                    not in {
                        v["version"]
                        for v in httpx.get(f"{hub.http_url}/v1/models/scale").json()["versions"]
                    }
                )
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
        assert problems == []
        versions = {
            v["version"]: v for v in httpx.get(f"{hub.http_url}/v1/models/scale").json()["versions"]
        }
        assert set(versions) == {"2", "3"}
        assert versions["2"]["state"] == "READY"


def test_cli_unloads_and_loads_a_model(live_repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text("[worker]\nrepository_poll_s = 0\n")  # explicit control only
    with running_hub(live_repo, tmp_path, "--config", str(config)) as hub:
        cli = [sys.executable, "-m", "inferencehub", "models"]
        unloaded = subprocess.run(
            [*cli, "unload", "scale", "--url", hub.http_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unloaded.returncode == 0, unloaded.stderr
        assert predict(hub).status_code == 409
        scale_model(live_repo / "scale" / "4" / "model.onnx", [4, 4, 4, 4])
        loaded = subprocess.run(
            [*cli, "load", "scale", "--json", "--url", hub.http_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert '"4"' in loaded.stdout
        assert predict(hub).json()["version"] == "4"
        missing = subprocess.run(
            [*cli, "load", "absent", "--url", hub.http_url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert missing.returncode == 1
        assert "the repository has no model 'absent'" in missing.stderr
