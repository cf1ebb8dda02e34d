"""Bounded memory (real ONNX Runtime in this process, RSS from the OS): a large run hands its
arena back when it ends, and a load beyond [worker] max_memory_mb fails with the reason while
the other models keep serving."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from inferencehub.config import WorkerSettings
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker import onnx_model
from inferencehub.worker.memory import release_free_memory, rss_mb
from inferencehub.worker.registry import ModelRegistry
from tests.model_builders import UNTUNED, heavy_model, save_model, scale_model

WIDE = 1 << 18  # a row is 1 MiB of float32


def wide_model(path: Path) -> Path:
    """y = max((x * 2 + 1) * 3) over each row of x float32 [N, 2^18]: every intermediate is a
    batch-sized tensor in ONNX Runtime's CPU arena, the output is small (like a classifier's:
    an output still held when the run ends stays in the arena)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    consts = [
        numpy_helper.from_array(np.array(v, np.float32), name)
        for name, v in (("a", 2), ("b", 1), ("c", 3))
    ]
    nodes = [
        helper.make_node("Mul", ["x", "a"], ["t1"]),
        helper.make_node("Add", ["t1", "b"], ["t2"]),
        helper.make_node("Mul", ["t2", "c"], ["t3"]),
        helper.make_node("ReduceMax", ["t3"], ["y"], axes=[1], keepdims=1),
    ]
    return save_model(helper.make_graph(nodes, "wide", [x], [y], consts), path)


async def loaded(root: Path, settings: WorkerSettings) -> ModelRegistry:
    registry = ModelRegistry(root, settings)
    await registry.load_all()
    return registry


@pytest.mark.parametrize("shrinks", [True, False])
async def test_a_large_run_gives_its_arena_back(
    tmp_path: Path, shrinks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 64 through three 64 MiB intermediates: with shrinking the worker ends within
    40 MiB of where it started; without (the control) the arena keeps well over 100 MiB."""
    if not shrinks:
        monkeypatch.setattr(onnx_model, "SHRINK_MIN_INPUT_BYTES", 1 << 62)
    wide_model(tmp_path / "models" / "wide" / "1" / "model.onnx")
    (tmp_path / "models" / "wide" / "model.toml").write_text(UNTUNED)
    registry = await loaded(tmp_path / "models", WorkerSettings(intra_op_threads=1))
    try:
        model = registry.get("wide", "1").model
        model.run(0, [{"x": np.ones((1, WIDE), np.float32)}], [])  # the arena's first chunk
        gc.collect()
        release_free_memory()
        idle = rss_mb()
        x = np.ones((64, WIDE), np.float32)
        run = model.run(0, [{"x": x}], [])
        assert float(run.items[0].outputs[0][1][63, 0]) == 9.0
        del x, run
        gc.collect()
        release_free_memory()
        grown = rss_mb() - idle
        if shrinks:
            assert grown < 40, f"{grown:.0f} MiB kept after a large run"
        else:
            assert grown > 100, f"only {grown:.0f} MiB kept: the control shows nothing"
    finally:
        await registry.close()


async def test_a_load_over_the_memory_budget_fails_clearly_and_the_rest_serve(
    tmp_path: Path,
) -> None:
    root = tmp_path / "models"
    scale_model(root / "small" / "1" / "model.onnx", [1.0, 2.0, 3.0, 4.0])
    heavy_model(root / "zheavy" / "1" / "model.onnx", 8192)  # 256 MiB of weights, loads last
    for name in ("small", "zheavy"):
        (root / name / "model.toml").write_text(UNTUNED)
    gc.collect()
    release_free_memory()
    budget = int(rss_mb()) + 120  # room for the small model, not for 256 MiB more
    registry = await loaded(root, WorkerSettings(max_memory_mb=budget, intra_op_threads=1))
    try:
        (heavy,) = registry.model_info("zheavy").versions
        assert heavy.state == pb.ModelVersion.FAILED
        assert f"over [worker] max_memory_mb = {budget}" in heavy.error
        assert "needs about" in heavy.error
        assert rss_mb() < budget  # its sessions are gone, not kept beside the error
        (small,) = registry.model_info("small").versions
        assert small.state == pb.ModelVersion.READY
        run = registry.get("small", "1").model.run(0, [{"x": np.ones((1, 4), np.float32)}], [])
        np.testing.assert_array_equal(run.items[0].outputs[0][1], [[1, 2, 3, 4]])
    finally:
        await registry.close()


async def test_without_a_budget_the_same_load_serves(tmp_path: Path) -> None:
    root = tmp_path / "models"
    heavy_model(root / "heavy" / "1" / "model.onnx", 2048)
    (root / "heavy" / "model.toml").write_text(UNTUNED)
    registry = await loaded(root, WorkerSettings(intra_op_threads=1))
    try:
        (heavy,) = registry.model_info("heavy").versions
        assert heavy.state == pb.ModelVersion.READY, heavy.error
        run = registry.get("heavy", "1").model.run(0, [{"x": np.ones((1, 2048), np.float32)}], [])
        np.testing.assert_allclose(run.items[0].outputs[0][1][0, :3], [2.048] * 3, rtol=1e-4)
    finally:
        await registry.close()
