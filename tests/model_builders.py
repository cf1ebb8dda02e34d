"""Tiny ONNX models for tests, built with onnx.helper (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # NOTE: keep <= what the installed onnxruntime accepts


def save_model(graph: onnx.GraphProto, path: Path) -> Path:
    """Check and write a graph with the opset and IR version every test model uses."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def scale_model(path: Path, factors: list[float]) -> Path:
    """y = x * factors, float32 [N, len(factors)]."""
    width = len(factors)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])
    w = numpy_helper.from_array(np.asarray(factors, dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "scale", [x], [y], [w])
    return save_model(graph, path)


def int_model(path: Path) -> Path:
    """out = a + 1 for int64 a [N, 2], plus `flag` = a > 0 (BOOL)."""
    a = helper.make_tensor_value_info("a", TensorProto.INT64, ["N", 2])
    out = helper.make_tensor_value_info("out", TensorProto.INT64, ["N", 2])
    flag = helper.make_tensor_value_info("flag", TensorProto.BOOL, ["N", 2])
    one = numpy_helper.from_array(np.array(1, dtype=np.int64), "one")
    zero = numpy_helper.from_array(np.array(0, dtype=np.int64), "zero")
    nodes = [
        helper.make_node("Add", ["a", "one"], ["out"]),
        helper.make_node("Greater", ["a", "zero"], ["flag"]),
    ]
    graph = helper.make_graph(nodes, "ints", [a], [out, flag], [one, zero])
    return save_model(graph, path)


def image_classifier(path: Path, size: int = 8, classes: int = 3) -> Path:
    """A deterministic 'classifier': mean colour per channel -> linear -> logits [N, classes]."""
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])
    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(size=(3, classes)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([-1, 3], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "classifier", [images], [logits], [weights, shape])
    return save_model(graph, path)


def _counting_body(acc_shape: list[int] | None) -> onnx.GraphProto:
    """A Loop body that adds 1 to its carried tensor: run time grows with the trip count."""
    one = helper.make_tensor("one_f", TensorProto.FLOAT, acc_shape or [], [1.0])
    return helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Constant", [], ["one"], value=one),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, acc_shape),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, acc_shape),
        ],
    )


def slow_model(path: Path) -> Path:
    """y = x + iterations (float32 [1]) by a Loop, so its run time grows with `iterations`."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    n = helper.make_tensor_value_info("iterations", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    body = _counting_body([1])
    true = numpy_helper.from_array(np.array(True), "true")
    loop = helper.make_node("Loop", ["iterations", "true", "x"], ["y"], body=body)
    graph = helper.make_graph([loop], "slow", [x, n], [y], [true])
    return save_model(graph, path)


CLASSIFIER_TOML = """
[preprocess]
input = "images"
crop_padding = 0
resample = "bilinear"
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]

[postprocess]
softmax = true
top_k = 2
labels = "labels.txt"
"""


def build_repository(root: Path) -> Path:
    """The repository the e2e tests serve: versions, types, images, a broken and a slow model."""
    scale_model(root / "scale" / "1" / "model.onnx", [1.0, 2.0, 3.0, 4.0])
    scale_model(root / "scale" / "2" / "model.onnx", [10.0, 20.0, 30.0, 40.0])
    int_model(root / "ints" / "1" / "model.onnx")
    image_classifier(root / "classifier" / "1" / "model.onnx")
    (root / "classifier" / "model.toml").write_text(CLASSIFIER_TOML)
    (root / "classifier" / "labels.txt").write_text("red\ngreen\nblue\n")
    broken = root / "broken" / "1" / "model.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"this is not an onnx file")
    slow_model(root / "slow" / "1" / "model.onnx")
    return root


# Tests of batching, deadlines and instances need the layout they wrote, not one measured (and
# measuring a slow model would cost its whole tuning budget at every load).
UNTUNED = 'tuning = "off"\n'


def slow_batch_model(path: Path, iterations: int) -> Path:
    """y = x + iterations for x float32 [N, M]: batchable, with a fixed cost per run (a Loop).
    Its model.toml (written unless there is one) turns tuning off: see UNTUNED."""
    config = path.parent.parent / "model.toml"
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(UNTUNED)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "M"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])
    body = _counting_body(None)
    count = numpy_helper.from_array(np.array(iterations, dtype=np.int64), "count")
    true = numpy_helper.from_array(np.array(True), "true")
    loop = helper.make_node("Loop", ["count", "true", "x"], ["y"], body=body)
    graph = helper.make_graph([loop], "slow_batch", [x], [y], [count, true])
    return save_model(graph, path)


def reshape_model(path: Path) -> Path:
    """y = Reshape(x, shape): a shape that does not fit x makes the session throw at run time."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["A", "B"])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape", [x, shape], [y]
    )
    return save_model(graph, path)


def string_model(path: Path) -> Path:
    """t = Identity(s) for a string tensor s [N]: no synthetic warm-up input exists for it."""
    s = helper.make_tensor_value_info("s", TensorProto.STRING, ["N"])
    t = helper.make_tensor_value_info("t", TensorProto.STRING, ["N"])
    graph = helper.make_graph([helper.make_node("Identity", ["s"], ["t"])], "strings", [s], [t])
    return save_model(graph, path)


def heavy_model(path: Path, side: int) -> Path:
    """y = x @ W with W float32 [side, side] made by ConstantOfShape: a tiny file whose session
    holds side^2 x 4 bytes (the light_* bench models are built the same way)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", side])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", side])
    shape = numpy_helper.from_array(np.array([side, side], np.int64), "shape")
    fill = helper.make_tensor("fill", TensorProto.FLOAT, [1], [0.001])
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["w"], value=fill),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    return save_model(helper.make_graph(nodes, "heavy", [x], [y], [shape]), path)


def triton_simple_model(
    path: Path, strings: bool = False, element: int = TensorProto.INT32
) -> Path:
    """The signature of Triton's `simple` example model (`simple_string` with strings=True,
    `simple_int8` with element=INT8): INPUT0, INPUT1 [N, 16] -> OUTPUT0 = INPUT0 + INPUT1,
    OUTPUT1 = INPUT0 - INPUT1, of `element` or BYTES holding decimal integers."""
    kind = TensorProto.STRING if strings else element
    inputs = [helper.make_tensor_value_info(n, kind, ["N", 16]) for n in ("INPUT0", "INPUT1")]
    outputs = [helper.make_tensor_value_info(n, kind, ["N", 16]) for n in ("OUTPUT0", "OUTPUT1")]
    if not strings:
        nodes = [
            helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
            helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"]),
        ]
    else:
        nodes = [
            helper.make_node("Cast", ["INPUT0"], ["a"], to=TensorProto.INT32),
            helper.make_node("Cast", ["INPUT1"], ["b"], to=TensorProto.INT32),
            helper.make_node("Add", ["a", "b"], ["sum"]),
            helper.make_node("Sub", ["a", "b"], ["difference"]),
            helper.make_node("Cast", ["sum"], ["OUTPUT0"], to=TensorProto.STRING),
            helper.make_node("Cast", ["difference"], ["OUTPUT1"], to=TensorProto.STRING),
        ]
    graph = helper.make_graph(nodes, "simple", inputs, outputs)
    return save_model(graph, path)


def triton_identity_model(path: Path) -> Path:
    """The signature of Triton's `simple_identity`: BYTES INPUT0 [N, M] -> OUTPUT0."""
    dims: list[str | int] = ["N", "M"]
    source = helper.make_tensor_value_info("INPUT0", TensorProto.STRING, dims)
    copy = helper.make_tensor_value_info("OUTPUT0", TensorProto.STRING, dims)
    node = helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])
    return save_model(helper.make_graph([node], "simple_identity", [source], [copy]), path)
