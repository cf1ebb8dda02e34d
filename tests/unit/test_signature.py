"""Signatures read from real ONNX Runtime sessions, the batch rule, and synthetic feeds for a
session (the probe's and `measure`'s input)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.signature import batchable, session_feeds, tensor_specs
from tests.model_builders import int_model, reshape_model, string_model


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def spec(name: str, shape: list[int]) -> pb.TensorSpec:
    return pb.TensorSpec(name=name, datatype="FP32", shape=shape)


def test_specs_use_v2_datatypes_and_minus_one_for_symbolic_dims(tmp_path: Path) -> None:
    ints = session(int_model(tmp_path / "i.onnx"))
    assert [(s.name, s.datatype, list(s.shape)) for s in tensor_specs(ints.get_outputs())] == [
        ("out", "INT64", [-1, 2]),
        ("flag", "BOOL", [-1, 2]),
    ]


def test_only_a_leading_dynamic_dim_everywhere_makes_a_batch() -> None:
    assert batchable([spec("x", [-1, 4])], [spec("y", [-1])])
    assert not batchable([spec("x", [-1, 4])], [spec("y", [4])])
    assert not batchable([spec("x", [])], [spec("y", [-1])])


def test_session_feeds_fit_the_session(tmp_path: Path) -> None:
    ints = session(int_model(tmp_path / "i.onnx"))
    feeds = session_feeds(ints)
    assert feeds is not None
    assert {k: (v.shape, v.dtype.name) for k, v in feeds.items()} == {"a": ((1, 2), "int64")}
    assert ints.run(None, feeds)[0].tolist() == [[1, 1]]
    reshape = session(reshape_model(tmp_path / "r.onnx"))
    assert [list(s.shape) for s in tensor_specs(reshape.get_outputs())] == [[-1, -1]]
    assert session_feeds(session(string_model(tmp_path / "s.onnx"))) is None
