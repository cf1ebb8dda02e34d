"""The classification extension's strings, on a real session (Triton's "score:index:label")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferencehub.errors import InvalidRequestError
from inferencehub.worker.layout import Layout
from inferencehub.worker.onnx_model import OnnxModel
from inferencehub.worker.repository import ModelConfig
from tests.model_builders import scale_model, string_model


def load(path: Path, labels: list[str] | None, max_batch_size: int | None = None) -> OnnxModel:
    config = ModelConfig(max_batch_size=max_batch_size)
    layout = Layout(instances=1, threads=1)
    return OnnxModel("m", "1", path, config, labels, layout=layout, max_image_pixels=1_000_000)


def test_top_k_per_batch_item_with_labels(tmp_path: Path) -> None:
    model = load(scale_model(tmp_path / "m.onnx", [1, 1, 1, 1]), ["a", "b", "c", "d"])
    scores = np.array([[0.1, 2.5, -1.0, 2.0], [3.0, 0.0, 0.5, 1.0]], np.float32)
    top = model.top_classes("y", scores, 2)
    assert top.shape == (2, 2)
    assert top.tolist() == [[b"2.500000:1:b", b"2.000000:3:d"], [b"3.000000:0:a", b"1.000000:3:d"]]
    assert model.top_classes("y", scores, 10).shape == (2, 4)  # k beyond the classes: all


def test_without_labels_or_batching_the_strings_are_score_and_index(tmp_path: Path) -> None:
    model = load(scale_model(tmp_path / "m.onnx", [1, 1, 1, 1]), None, max_batch_size=0)
    top = model.top_classes("y", np.array([[1.0, 4.0], [3.0, 2.0]], np.float32), 3)
    assert top.tolist() == [b"4.000000:1", b"3.000000:2", b"2.000000:3"]  # over the whole output


def test_strings_cannot_be_classified(tmp_path: Path) -> None:
    model = load(string_model(tmp_path / "s.onnx"), None)
    with pytest.raises(InvalidRequestError, match="output 't' holds object values"):
        model.top_classes("t", np.array(["x"], dtype=object), 1)
