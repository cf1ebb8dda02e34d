"""Execution providers on the real appliance (CPU-only machine): the provider really in use is
what metadata and the CLI report, per-model overrides apply, strict refuses what it cannot
have, fallback says why, and `measure` records its timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.hub import running_hub
from tests.model_builders import scale_model

pytestmark = pytest.mark.e2e


def test_providers_per_model_on_a_cpu_machine(tmp_path: Path) -> None:
    root = tmp_path / "models"
    for name, toml in {
        "plain": "",
        "strict": 'provider = "cuda"\nprovider_policy = "strict"\n',
        "fallback": 'provider = "cuda"\n',
        "measured": 'provider = "measure"\n',
    }.items():
        scale_model(root / name / "1" / "model.onnx", [1, 2, 3, 4])
        (root / name / "model.toml").write_text(toml)
    with running_hub(root, tmp_path, "--provider", "cpu", "--provider-policy", "fallback") as hub:
        models = {
            m["name"]: m["versions"][0]
            for m in httpx.get(f"{hub.http_url}/v1/models", timeout=10).json()["models"]
        }
        assert models["plain"]["state"] == "READY"
        assert models["plain"]["provider"] == "CPUExecutionProvider"
        assert "provider_notes" not in models["plain"]
        assert models["strict"]["state"] == "FAILED"
        assert "provider 'cuda' (strict)" in models["strict"]["error"]
        assert "CUDAExecutionProvider is not in this onnxruntime build" in models["strict"]["error"]
        assert models["fallback"]["state"] == "READY"
        assert models["fallback"]["provider"] == "CPUExecutionProvider"
        assert (
            "CUDAExecutionProvider is not in this onnxruntime build"
            in (models["fallback"]["provider_notes"][0])
        )
        assert set(models["measured"]["provider_timings_ms"]) == {"CPUExecutionProvider"}
        assert models["measured"]["provider_timings_ms"]["CPUExecutionProvider"] > 0
        reply = httpx.post(
            f"{hub.http_url}/v1/models/fallback/predict",
            json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]},
        )
        assert reply.json()["outputs"][0]["data"] == [1, 2, 3, 4]
        shown = subprocess.run(
            [sys.executable, "-m", "inferencehub", "models", "--json", "--url", hub.http_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        listed = json.loads(shown.stdout)["models"]
        assert {m["name"]: m["versions"][0]["provider"] for m in listed}["fallback"] == (
            "CPUExecutionProvider"
        )
        assert "fell back" in hub.output() or "not in this onnxruntime build" in hub.output()
