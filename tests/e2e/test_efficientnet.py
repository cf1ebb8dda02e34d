"""The bundled EfficientNet-Lite classifier gives true answers on real photos, offline."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
