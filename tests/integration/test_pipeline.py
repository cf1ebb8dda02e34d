"""Pipelines over a real registry in this process: steps wired by name run in order, each
wiring mistake is a FAILED version with its reason, and a step model's reload is picked up."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from inferencehub.config import WorkerSettings
from inferencehub.protocol.tensors import tensor_from_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.repository import scan_model
from tests.model_builders import scale_model

pytestmark = pytest.mark.timeout(60)

# x -> scale (times 1, 2, 3, 4) -> top 2 of the scaled row.
PIPELINE = """
[pipeline]
inputs = [{ name = "x", datatype = "FP32", shape = [1, 4] }]
outputs = [
  { name = "best", datatype = "FP32", shape = [1, 2] },
  { name = "where", datatype = "INT64", shape = [1, 2] },
]

[[pipeline.steps]]
name = "scale it"
model = "scale"
inputs = { x = "x" }
outputs = { y = "scaled" }

[[pipeline.steps]]
op = "top_k"
inputs = { scores = "scaled" }
outputs = { values = "best", indices = "where" }
params = { k = 2 }
"""


def write_pipeline(root: Path, text: str, name: str = "pipe") -> None:
    (root / name / "1").mkdir(parents=True, exist_ok=True)
    (root / name / "model.toml").write_text(text)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[ModelRegistry]:
    root = tmp_path / "models"
    scale_model(root / "scale" / "1" / "model.onnx", [1, 2, 3, 4])
    write_pipeline(root, PIPELINE)
    hub = ModelRegistry(root, WorkerSettings(inference_threads=2, intra_op_threads=1))
    await hub.load_all()
    yield hub
    await hub.close()


def request(x: list[float]) -> pb.PredictRequest:
    tensor = tensor_from_numpy("x", np.array([x], np.float32))
    return pb.PredictRequest(model_name="pipe", inputs=[tensor])


async def predict(hub: ModelRegistry, x: list[float]) -> tuple[dict[str, np.ndarray], pb.Timing]:
    answer = await hub.get("pipe", "").submit(request(x), 10.0, time.perf_counter_ns())
    return dict(answer.outputs), answer.timing


def state(hub: ModelRegistry, name: str = "pipe") -> pb.ModelVersion:
    return hub.model_info(name).versions[0]


async def test_steps_run_in_order_and_report_their_time(registry: ModelRegistry) -> None:
    info = state(registry)
    assert info.state == pb.ModelVersion.READY and info.provider == "pipeline"
    assert [s.name for s in info.inputs] == ["x"] and [s.name for s in info.outputs] == [
        "best",
        "where",
    ]
    outputs, timing = await predict(registry, [5, 1, 1, 1])
    assert outputs["best"].tolist() == [[5.0, 4.0]]  # 5x1, then 1x4
    assert outputs["where"].tolist() == [[0, 3]]
    assert [(s.name, s.items) for s in timing.steps] == [("scale it", 1), ("top_k", 0)]
    assert all(s.ms >= 0 for s in timing.steps)


async def test_a_reloaded_step_model_serves_the_next_request(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    scale_model(tmp_path / "models" / "scale" / "1" / "model.onnx", [10, 1, 1, 1])
    entry = scan_model(tmp_path / "models" / "scale")
    assert entry is not None
    await registry.reload(entry, {"1"})
    outputs, _ = await predict(registry, [1, 1, 1, 1])
    assert outputs["best"].tolist() == [[10.0, 1.0]]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (('model = "scale"', 'model = "nothing"'), "'nothing' is not found; models: scale"),
        (('op = "top_k"', 'op = "top_kk"'), "top_kk"),
        (('scores = "scaled"', 'scores = "scald"'), "reads scald, which no earlier step writes"),
        (("params = { k = 2 }", "params = { kk = 2 }"), "kk"),
        (('inputs = { x = "x" }', 'inputs = { z = "x" }'), "model scale takes inputs x"),
        (('outputs = { y = "scaled" }', 'outputs = { q = "scaled" }'), "maps outputs q"),
        (('name = "where"', 'name = "there"'), "output(s) there are written by no step"),
        (('model = "scale"', 'model = "scale"\nparams = { a = 1 }'), "params belong to op steps"),
    ],
)
async def test_wiring_mistakes_fail_the_version_with_the_reason(
    tmp_path: Path, change: tuple[str, str], reason: str
) -> None:
    root = tmp_path / "models"
    scale_model(root / "scale" / "1" / "model.onnx", [1, 2, 3, 4])
    assert change[0] in PIPELINE
    write_pipeline(root, PIPELINE.replace(change[0], change[1], 1))
    hub = ModelRegistry(root, WorkerSettings(inference_threads=2, intra_op_threads=1))
    try:
        await hub.load_all()
        version = state(hub)
        assert version.state == pb.ModelVersion.FAILED, version
        assert reason in version.error, version.error
        assert state(hub, "scale").state == pb.ModelVersion.READY  # the rest still serves
    finally:
        await hub.close()


async def test_a_pipeline_cannot_be_a_step_of_a_pipeline(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    write_pipeline(root, PIPELINE.replace('model = "scale"', 'model = "pipe"', 1), name="outer")
    entry = scan_model(root / "outer")
    assert entry is not None
    await registry.reload(entry, None)
    failed = state(registry, "outer")
    assert failed.state == pb.ModelVersion.FAILED and "is a pipeline" in failed.error
