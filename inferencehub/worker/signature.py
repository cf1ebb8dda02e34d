"""A model's signature as ONNX Runtime reports it, and synthetic input that fits it.

The bottom of the worker's model modules: the provider probe, the golden gate and OnnxModel
all read signatures and build synthetic feeds, so this imports none of them and they import
it (signature <- probe/providers/golden <- onnx_model <- registry).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from inferencehub.protocol.datatypes import NUMPY_BY_DATATYPE, datatype_from_ort
from inferencehub.v1 import inference_pb2 as pb


def tensor_spec(arg: ort.NodeArg) -> pb.TensorSpec:
    """One input or output (a session's NodeArg) as a spec; symbolic or unknown dims become -1."""
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or [])]
    return pb.TensorSpec(name=arg.name, datatype=datatype_from_ort(arg.type), shape=shape)


def tensor_specs(args: Sequence[ort.NodeArg]) -> list[pb.TensorSpec]:
    """`session.get_inputs()` or `get_outputs()` as specs."""
    return [tensor_spec(a) for a in args]


def batchable(inputs: Sequence[pb.TensorSpec], outputs: Sequence[pb.TensorSpec]) -> bool:
    """Whether every input and output starts with a dynamic dimension (the batch)."""
    return all(s.shape and s.shape[0] == -1 for s in (*inputs, *outputs))


def synthetic_feeds(
    inputs: Sequence[pb.TensorSpec], inner_dims: int = 1
) -> dict[str, np.ndarray] | None:
    """Zeros for every input, a dynamic batch (first) dim as 1 and other dynamic dims as
    `inner_dims`; None when an input takes strings or a type numpy cannot build (no meaningful
    synthetic value: warm-up is skipped)."""
    if any(s.datatype not in NUMPY_BY_DATATYPE for s in inputs):
        return None
    return {
        s.name: np.zeros(
            [d if d >= 0 else (1 if i == 0 else inner_dims) for i, d in enumerate(s.shape)],
            dtype=NUMPY_BY_DATATYPE[s.datatype],
        )
        for s in inputs
    }


def session_feeds(session: ort.InferenceSession) -> dict[str, np.ndarray] | None:
    """Synthetic feeds for an open session (None as for `synthetic_feeds`)."""
    return synthetic_feeds(tensor_specs(session.get_inputs()))
