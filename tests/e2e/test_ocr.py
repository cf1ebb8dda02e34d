"""The bundled OCR pipeline end to end: rendered text read back exactly over HTTP and gRPC, one
hop per request whatever the steps, the CLI's table, JSON and --annotate, and bad images."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from inferencehub.client import ClientError, connect
from tests.hub import Hub, running_hub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BUNDLED = Path(__file__).resolve().parents[2] / "models"
OCR_MODELS = ("ocr", "ocr-det", "ocr-rec")


def rendered(lines: list[str], size: int = 40) -> bytes:
    """Large, clean black-on-white text: what the OCR must read exactly."""
    font = ImageFont.load_default(size=size)
    image = Image.new("RGB", (900, 80 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((40, 40 + 70 * index), line, fill="black", font=font)
    encoded = io.BytesIO()
    image.save(encoded, "PNG")
    return encoded.getvalue()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("ocr-models")
    for name in OCR_MODELS:
        shutil.copytree(BUNDLED / name, root / name)
    with running_hub(root, tmp_path_factory.mktemp("ocr-logs")) as running:
        yield running


def read(hub: Hub, image: bytes) -> httpx.Response:
    return httpx.post(
        f"{hub.http_url}/v1/models/ocr/predict",
        content=image,
        headers={"content-type": "image/png"},
        timeout=60,
    )


def outputs(reply: httpx.Response) -> dict[str, list]:
    return {o["name"]: o["data"] for o in reply.json()["outputs"]}


def hop_requests(hub: Hub) -> float:
    metrics = httpx.get(f"{hub.http_url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("inferencehub_hop_requests_total{")
    )


def test_rendered_lines_are_read_exactly_in_order_over_http(hub: Hub) -> None:
    reply = read(hub, rendered(["Lot: A-1234", "TOTAL 12.50"]))
    assert reply.status_code == 200, reply.text
    found = outputs(reply)
    assert found["text"] == ["Lot: A-1234", "TOTAL 12.50"]
    assert all(score > 0.9 for score in found["scores"])
    assert len(found["boxes"]) == 2 * 4 * 2  # two boxes of four (x, y) corners
    steps = {step["name"]: step for step in reply.json()["steps"]}
    assert list(steps) == [
        "decode",
        "prepare",
        "detect",
        "regions",
        "crop",
        "recognize",
        "decode-text",
        "keep",
    ]
    assert steps["recognize"]["items"] == 2  # both lines through the recogniser as one batch


def test_grpc_reads_the_same_and_each_request_is_one_hop(hub: Hub, tmp_path: Path) -> None:
    image = tmp_path / "meter.png"
    image.write_bytes(rendered(["Meter 004217 kWh"]))
    before = hop_requests(hub)
    with connect(hub.grpc_url) as client:
        result = client.predict_image("ocr", image)
    texts = [t.decode() if isinstance(t, bytes) else t for t in result.outputs["text"].tolist()]
    assert texts == ["Meter 004217 kWh"]
    assert [name for name, _ in result.steps][-1] == "keep"
    assert hop_requests(hub) - before == 1  # eight steps, one request to the worker


def test_the_pipeline_is_served_like_any_model(hub: Hub) -> None:
    metadata = httpx.get(f"{hub.http_url}/v2/models/ocr", timeout=10).json()
    assert metadata["platform"] == "ensemble"
    assert [t["name"] for t in metadata["inputs"]] == ["image"]
    assert [t["name"] for t in metadata["outputs"]] == ["text", "scores", "boxes"]
    listing = httpx.get(f"{hub.http_url}/v1/models/ocr", timeout=10).json()
    assert listing["versions"][0]["state"] == "READY"
    assert "warm-up on zeros failed" not in hub.output()  # ocr-det warms on a real size


def test_bad_images_get_a_clean_400_and_the_worker_stays(hub: Hub, tmp_path: Path) -> None:
    worker = hub.children()["worker"]
    refused = read(hub, b"this is not an image")
    assert refused.status_code == 400
    assert "could not decode image" in refused.json()["error"]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with connect(hub.grpc_url) as client, pytest.raises(ClientError) as error:
        client.predict_image("ocr", bad)
    assert error.value.status == "INVALID_ARGUMENT"
    # A tensor too small for the detector's downsampling: the caller's input, a 400 not a 500.
    tiny = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3, 8, 8], "data": [0] * 192}]}
    too_small = httpx.post(f"{hub.http_url}/v1/models/ocr-det/predict", json=tiny, timeout=30)
    assert too_small.status_code == 400, too_small.text
    assert "could not run on these inputs" in too_small.json()["error"]
    assert hub.children()["worker"] == worker
    assert read(hub, rendered(["STILL HERE"])).status_code == 200


def test_cli_prints_rows_json_and_writes_an_annotated_image(hub: Hub, tmp_path: Path) -> None:
    image = tmp_path / "label.png"
    image.write_bytes(rendered(["INFERENCE HUB 2026"]))
    annotated = tmp_path / "out.png"
    command = [sys.executable, "-m", "inferencehub", "predict", str(image), "--model", "ocr"]
    url = ["--url", hub.http_url]
    table = subprocess.run([*command, *url], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    assert "INFERENCE HUB 2026" in table.stdout and "confidence" in table.stdout
    as_json = subprocess.run(
        [*command, *url, "--json", "--annotate", str(annotated)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert as_json.returncode == 0, as_json.stderr
    lines = json.loads(as_json.stdout)["lines"]
    assert [line["text"] for line in lines] == ["INFERENCE HUB 2026"]
    assert len(lines[0]["box"]) == 4
    with Image.open(annotated) as drawn, Image.open(image) as original:
        drawn.verify()
        assert drawn.size == original.size
    with Image.open(annotated) as drawn:
        assert drawn.convert("RGB").getpixel(tuple(map(int, lines[0]["box"][0]))) != (
            255,
            255,
            255,
        )  # the box is drawn where the text was found
