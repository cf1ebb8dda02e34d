"""Tiny ONNX models for the KServe v2 client tests (tritonclient, perf_analyzer).

Built with onnx.helper like tests/model_builders.py; no downloads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.model_builders import build_repository, save_model, scale_model

# KServe v2 datatype -> ONNX element type. BYTES is an ONNX string tensor.
ONNX_TYPES = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}
DATATYPES = list(ONNX_TYPES)
WIDTH = 3  # every identity tensor is [N, 3]


def identity_model(path: Path, datatypes: list[str], single: bool) -> Path:
    """Identity per datatype, [N, 3] each.

    single=True (one datatype): INPUT0 -> OUTPUT0. Otherwise in_<dt> -> out_<dt> for each.
    """
    inputs, outputs, nodes = [], [], []
    for dt in datatypes:
        name_in, name_out = ("INPUT0", "OUTPUT0") if single else (f"in_{dt}", f"out_{dt}")
        inputs.append(helper.make_tensor_value_info(name_in, ONNX_TYPES[dt], ["N", WIDTH]))
        outputs.append(helper.make_tensor_value_info(name_out, ONNX_TYPES[dt], ["N", WIDTH]))
        nodes.append(helper.make_node("Identity", [name_in], [name_out]))
    graph = helper.make_graph(nodes, "identity", inputs, outputs)
    return save_model(graph, path)


def fixed_model(path: Path) -> Path:
    """y = x + 1 for float32 x of the fixed shape [2, 3] (no batch dimension)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    one = numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "fixed", [x], [y], [one]
    )
    return save_model(graph, path)


def mlp_model(path: Path, features: int = 16, hidden: int = 32, classes: int = 4) -> Path:
    """A small deterministic MLP: x FP32 [N, features] -> Relu(x W1 + b1) W2 + b2 -> y."""
    rng = np.random.default_rng(7)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])
    init = [
        numpy_helper.from_array(rng.normal(size=(features, hidden)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(hidden,)).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(size=(hidden, classes)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(size=(classes,)).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "mlp", [x], [y], init)
    return save_model(graph, path)


def identity_model_name(datatype: str) -> str:
    return f"id_{datatype.lower()}"


def build_kserve_repository(root: Path) -> Path:
    """tests/model_builders' repository plus identity, fixed-shape, spare and MLP models."""
    build_repository(root)
    for dt in DATATYPES:
        identity_model(root / identity_model_name(dt) / "1" / "model.onnx", [dt], single=True)
    identity_model(root / "identity_all" / "1" / "model.onnx", DATATYPES, single=False)
    fixed_model(root / "fixed" / "1" / "model.onnx")
    # Unloaded and loaded again by the repository checks (one per protocol).
    scale_model(root / "spare_http" / "1" / "model.onnx", [1.0, 2.0, 3.0, 4.0])
    scale_model(root / "spare_grpc" / "1" / "model.onnx", [1.0, 2.0, 3.0, 4.0])
    mlp_model(root / "mlp" / "1" / "model.onnx")
    return root


def add_late_model(root: Path) -> Path:
    """A model folder created after the server started; only an explicit load serves it."""
    return scale_model(root / "late" / "1" / "model.onnx", [5.0, 6.0, 7.0, 8.0])
