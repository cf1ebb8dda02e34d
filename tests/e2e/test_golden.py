"""The gate before traffic on the real appliance: a version whose golden outputs do not match
never becomes routable, and a hot swap to a file that fails them keeps the old file serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.test_hot_reload import place_atomically
from tests.hub import Hub, running_hub, wait_for
from tests.model_builders import scale_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}
EXPECTED = [[1.0, 2.0, 3.0, 4.0]]  # the golden output of x = ones for y = x * [1, 2, 3, 4]
MISMATCH = (
    "golden check failed: golden/ones.npz output 'y' differs: max abs diff 0.5 > atol 1e-05 "
    "+ rtol 0.0001*|expected| at index (0, 3)"
)


def write_golden(version_dir: Path, **arrays: Any) -> None:
    (version_dir / "golden").mkdir(parents=True, exist_ok=True)
    np.savez(
        version_dir / "golden" / "ones.npz",
        **{"input.x": np.ones((1, 4), np.float32), "output.y": np.array(EXPECTED, np.float32)},
        **arrays,
    )


def versions(hub: Hub, name: str) -> dict[str, dict[str, Any]]:
    info = httpx.get(f"{hub.http_url}/v1/models/{name}", timeout=10).json()
    return {v["version"]: v for v in info["versions"]}


def predict(hub: Hub, name: str, version: str = "") -> httpx.Response:
    path = (
        f"/v1/models/{name}/versions/{version}/predict" if version else f"/v1/models/{name}/predict"
    )
    return httpx.post(hub.http_url + path, json=BODY, timeout=10)


@pytest.fixture(scope="module")
def gated_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """gated: v1 matches its golden file, v2 (a regression) does not, v3's file is malformed."""
    root = tmp_path_factory.mktemp("golden")
    models = root / "models"
    write_golden(scale_model(models / "gated" / "1" / "model.onnx", [1, 2, 3, 4]).parent)
    write_golden(scale_model(models / "gated" / "2" / "model.onnx", [1, 2, 3, 4.5]).parent)
    v3 = scale_model(models / "gated" / "3" / "model.onnx", [1, 2, 3, 4]).parent
    write_golden(v3, note=np.array([{"pickled": True}], dtype=object))
    with running_hub(models, root) as hub:
        yield hub


def test_a_version_passing_its_golden_files_is_ready_and_serves(gated_hub: Hub) -> None:
    v1 = versions(gated_hub, "gated")["1"]
    assert v1["state"] == "READY" and "error" not in v1
    reply = predict(gated_hub, "gated")  # the default: the highest READY version
    assert reply.status_code == 200
    assert reply.headers["x-model-version"] == "1"
    assert reply.json()["outputs"][0]["data"] == [1, 2, 3, 4]
    ready = httpx.get(f"{gated_hub.http_url}/v2/models/gated/versions/1/ready", timeout=10)
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_a_version_failing_its_golden_file_is_never_routable(gated_hub: Hub) -> None:
    v2 = versions(gated_hub, "gated")["2"]
    assert v2["state"] == "FAILED"
    assert v2["error"].startswith(MISMATCH)
    ready = httpx.get(f"{gated_hub.http_url}/v2/models/gated/versions/2/ready", timeout=10)
    assert ready.status_code == 409
    reply = predict(gated_hub, "gated", "2")
    assert reply.status_code == 409
    assert "version 2 failed to load: golden check failed" in reply.json()["error"]
    for policy in ({"split": {"1": 50, "2": 50}}, {"labels": {"canary": "2"}}):
        refused = httpx.put(f"{gated_hub.http_url}/v1/models/gated/routing", json=policy)
        assert refused.status_code == 400, policy
        assert "names version '2', which is not ready" in refused.json()["error"]
    assert predict(gated_hub, "gated").headers["x-model-version"] == "1"  # nothing changed


def test_a_malformed_golden_file_fails_with_a_reason(gated_hub: Hub) -> None:
    v3 = versions(gated_hub, "gated")["3"]
    assert v3["state"] == "FAILED"
    assert v3["error"] == (
        "golden check failed: golden/ones.npz holds object arrays, which are never unpickled; "
        "save numeric, bool or string arrays"
    )


def test_a_hot_swap_failing_its_golden_file_keeps_the_old_file(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_golden(scale_model(models / "swap" / "1" / "model.onnx", [1, 2, 3, 4]).parent)
    regressed = scale_model(tmp_path / "staged" / "model.onnx", [1, 2, 3, 4.5])
    config = tmp_path / "hub.toml"
    config.write_text("[worker]\nrepository_poll_s = 0.2\n")
    with running_hub(models, tmp_path, "--config", str(config)) as hub:
        assert predict(hub, "swap").json()["outputs"][0]["data"] == [1, 2, 3, 4]
        place_atomically(regressed, models / "swap" / "1" / "model.onnx")
        wait_for(lambda: "error" in versions(hub, "swap")["1"])
        v1 = versions(hub, "swap")["1"]
        assert v1["state"] == "READY"
        assert v1["error"].startswith(f"reload failed, still serving the previous file: {MISMATCH}")
        for _ in range(5):
            reply = predict(hub, "swap")
            assert reply.status_code == 200
            assert reply.json()["outputs"][0]["data"] == [1, 2, 3, 4]  # not [1, 2, 3, 4.5]


def test_a_new_golden_file_re_checks_the_serving_version(tmp_path: Path) -> None:
    models = tmp_path / "models"
    v1 = scale_model(models / "watched" / "1" / "model.onnx", [1, 2, 3, 4.5]).parent
    config = tmp_path / "hub.toml"
    config.write_text("[worker]\nrepository_poll_s = 0.2\n")
    with running_hub(models, tmp_path, "--config", str(config)) as hub:
        assert "error" not in versions(hub, "watched")["1"]
        write_golden(v1)  # expects y[3] = 4, the model gives 4.5
        wait_for(lambda: "error" in versions(hub, "watched")["1"])
        assert MISMATCH in versions(hub, "watched")["1"]["error"]
        assert predict(hub, "watched").status_code == 200  # the serving sessions stay
