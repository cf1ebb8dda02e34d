"""Build the benchmark model repository: a tiny MLP and the onnx package's light CNN graphs.

The MLP measures pure serving overhead (microseconds of compute); SqueezeNet and ResNet-50 are
real architectures with constant weights, shipped inside the `onnx` wheel, so the benchmark
needs no download. The CNN graphs get a symbolic batch dimension so servers can batch them.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
BATCH_DIM = "N"
IR_VERSION = 8  # ONNX 1.10+: understood by every ONNX Runtime release this project supports


@dataclass(frozen=True)
class BenchModel:
    """A served model and the one batch-1 input the load generators send."""

    name: str
    input_name: str
    shape: tuple[int, ...]  # without the batch dimension

    @property
    def batch1_shape(self) -> tuple[int, ...]:
        return (1, *self.shape)


MODELS: dict[str, BenchModel] = {
    "mlp": BenchModel("mlp", "x", (64,)),
    "squeezenet": BenchModel("squeezenet", "data_0", (3, 224, 224)),
    "resnet50": BenchModel("resnet50", "gpu_0/data_0", (3, 224, 224)),
}


def build_mlp(seed: int = 0) -> onnx.ModelProto:
    """x: float32[N,64] -> 64x128 -> ReLU -> 128x64 -> ReLU -> 64x16 -> y."""
    rng = np.random.default_rng(seed)
    sizes = [64, 128, 64, 16]
    nodes, inits = [], []
    current = "x"
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weight = rng.normal(0, fan_in**-0.5, (fan_in, fan_out)).astype(np.float32)
        inits += [
            numpy_helper.from_array(weight, f"w{i}"),
            numpy_helper.from_array(np.zeros(fan_out, np.float32), f"b{i}"),
        ]
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        gemm_out = out if out == "y" else f"g{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [gemm_out]))
        if out != "y":
            nodes.append(helper.make_node("Relu", [gemm_out], [out]))
        current = out
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH_DIM, sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [BATCH_DIM, sizes[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def dynamic_batch(source: Path) -> onnx.ModelProto:
    """Load a light CNN graph and make its batch dimension symbolic.

    The light graphs list every initializer as a graph input (IR 3 style) and ResNet-50
    flattens with a Reshape to a constant [1, 2048], which pins batch 1; both are rewritten.
    The opset (9) is kept: upgrading would change Softmax and Dropout semantics.
    """
    model = onnx.load(source)
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    real_inputs = [value for value in graph.input if value.name not in inits]
    del graph.input[:]
    graph.input.extend(real_inputs)
    for value in [*graph.input, *graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = BATCH_DIM
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            target = numpy_helper.to_array(inits[node.input[1]]).copy()
            if target.ndim == 1 and target.size >= 2 and target[0] == 1:
                target[0] = -1
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(target, node.input[1]))
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    del graph.value_info[:]
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def check_batches(path: Path, model: BenchModel) -> None:
    """ORT must run batch 1 and 8, and batch 8 must equal eight batch-1 runs."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((8, *model.shape), dtype=np.float32)
    (batched,) = session.run(None, {model.input_name: x})
    (single,) = session.run(None, {model.input_name: x[:1]})
    if batched.shape[0] != 8 or not np.all(np.isfinite(batched)):
        raise RuntimeError(f"{model.name}: batch 8 gave {batched.shape}, finite check failed")
    if not np.allclose(batched[:1], single, rtol=1e-3, atol=1e-5):
        raise RuntimeError(f"{model.name}: batch 8 row 0 differs from the batch-1 run")


def build_repository(target: Path, efficientnet: bool = True) -> Path:
    """Write target/{mlp,squeezenet,resnet50}/1/model.onnx (+ a copy of models/efficientnet)."""
    built = {
        "mlp": build_mlp(),
        "squeezenet": dynamic_batch(LIGHT / "light_squeezenet.onnx"),
        "resnet50": dynamic_batch(LIGHT / "light_resnet50.onnx"),
    }
    for name, proto in built.items():
        path = target / name / "1" / "model.onnx"
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, path)
        check_batches(path, MODELS[name])
    if efficientnet:
        shutil.copytree(ROOT / "models" / "efficientnet", target / "efficientnet")
    return target


def sample(model: BenchModel, seed: int = 0) -> np.ndarray:
    """One batch-1 input with U[0,1) values (random bytes give NaNs; zeros give denormals)."""
    return np.random.default_rng(seed).random(model.batch1_shape, dtype=np.float32)


def write_perf_analyzer_input(model: BenchModel, path: Path, seed: int = 0) -> Path:
    """perf_analyzer --input-data file: one U[0,1) tensor, shape without the batch dim."""
    values = sample(model, seed).ravel()
    content = [round(float(v), 6) for v in values]
    entry = {model.input_name: {"content": content, "shape": list(model.shape)}}
    path.write_text(json.dumps({"data": [entry]}))
    return path
