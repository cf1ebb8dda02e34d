"""Check a PredictRequest against a model version's signature (pure; gateway and worker)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from inferencehub.errors import InvalidRequestError, ModelNotFoundError, ModelNotReadyError
from inferencehub.protocol.datatypes import BYTES, NUMPY_BY_DATATYPE
from inferencehub.protocol.tensors import element_count
from inferencehub.v1 import inference_pb2 as pb


def describe_signature(version: pb.ModelVersion) -> str:
    """Human-readable inputs of a version, for error messages: `x FP32 [-1, 4]`."""
    parts = []
    for spec in version.inputs:
        text = f"{spec.name} {spec.datatype} {list(spec.shape)}"
        if version.image.input == spec.name:
            text += " (or BYTES [N]: encoded images)"
        parts.append(text)
    return ", ".join(parts) or "no inputs"


def pick_version(routing: pb.RoutingPolicy, routing_key: str, model_name: str) -> str:
    """A version from the weighted split: by hash of the routing key when sticky, else random.

    The same key and split always give the same version; a key's position on [0, 1) does not
    depend on the other versions, so growing a canary moves only the keys that must move.
    """
    weights = sorted(((v, w) for v, w in routing.weights.items() if w > 0), key=lambda i: int(i[0]))
    total = sum(w for _, w in weights)
    if routing.sticky and routing_key:
        digest = hashlib.sha256(f"{model_name}\0{routing_key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * total
    else:
        point = random.random() * total  # noqa: S311 - traffic splitting, not security
    for version, weight in weights:
        if point < weight:
            return version
        point -= weight
    return weights[-1][0]


def resolve_version(model: pb.ModelInfo, requested: str, routing_key: str = "") -> pb.ModelVersion:
    """Pick the version a request names: a number, a label, or "" (the routing policy).

    Raises:
        ModelNotFoundError: no such version; the message names those that exist.
        ModelNotReadyError: the version exists but failed to load.
    """
    wanted = model.routing.labels.get(requested, requested)
    if not wanted and any(w > 0 for w in model.routing.weights.values()):
        wanted = pick_version(model.routing, routing_key, model.name)
    wanted = wanted or model.default_version
    if not wanted:
        reasons = "; ".join(f"version {v.version}: {v.error}" for v in model.versions)
        raise ModelNotReadyError(f"model '{model.name}' failed to load ({reasons})")
    for version in model.versions:
        if version.version == wanted:
            if version.state == pb.ModelVersion.UNLOADED:
                raise ModelNotReadyError(
                    f"model '{model.name}' is unloaded; load it with "
                    f"POST /v2/repository/models/{model.name}/load"
                )
            if version.state != pb.ModelVersion.READY:
                raise ModelNotReadyError(
                    f"model '{model.name}' version {wanted} failed to load: {version.error}"
                )
            return version
    existing = ", ".join(v.version for v in model.versions) or "none"
    if model.routing.labels:
        existing += f" (labels: {', '.join(sorted(model.routing.labels))})"
    raise ModelNotFoundError(
        f"model '{model.name}' has no version '{wanted}'; versions: {existing}"
    )


def missing_model_error(name: str, known: Sequence[str]) -> ModelNotFoundError:
    """The error for an unknown model name, naming the models that exist."""
    return ModelNotFoundError(
        f"model '{name}' not found; models: {', '.join(sorted(known)) or 'none'}"
    )


def validate_predict(request: pb.PredictRequest, version: pb.ModelVersion) -> None:
    """Refuse a request whose inputs do not match the version's signature, before any compute.

    Raises:
        InvalidRequestError: names the expected signature.
    """
    expected = {spec.name: spec for spec in version.inputs}
    seen: set[str] = set()
    for tensor in request.inputs:
        spec = expected.get(tensor.name)
        if spec is None or tensor.name in seen:
            problem = "is given twice" if tensor.name in seen else "is not an input of this model"
            raise InvalidRequestError(
                f"input '{tensor.name}' {problem}; expected: {describe_signature(version)}"
            )
        seen.add(tensor.name)
        _check_tensor(tensor, spec, version)
    missing = [name for name in expected if name not in seen]
    if missing:
        raise InvalidRequestError(
            f"missing input(s) {', '.join(missing)}; expected: {describe_signature(version)}"
        )
    outputs = {spec.name for spec in version.outputs}
    for name in request.outputs:
        if name not in outputs:
            raise InvalidRequestError(
                f"requested output '{name}' does not exist; outputs: {', '.join(sorted(outputs))}"
            )


def _check_tensor(tensor: pb.Tensor, spec: pb.TensorSpec, version: pb.ModelVersion) -> None:
    shape = list(tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidRequestError(f"input '{tensor.name}' has a negative dimension: {shape}")
    if version.max_batch_size and shape and shape[0] > version.max_batch_size:
        raise InvalidRequestError(
            f"input '{tensor.name}' has batch size {shape[0]}; this model takes at most "
            f"{version.max_batch_size} (max_batch_size in model.toml)"
        )
    if tensor.datatype == BYTES and version.image.input == tensor.name:
        if len(shape) != 1 or shape[0] < 1:
            raise InvalidRequestError(
                f"input '{tensor.name}' as encoded images must have shape [N] with N >= 1, "
                f"got {shape}"
            )
        return
    signature = f"{spec.datatype} {list(spec.shape)}"
    if tensor.datatype != spec.datatype:
        raise InvalidRequestError(
            f"input '{tensor.name}' has datatype {tensor.datatype or '(none)'}; "
            f"expected {signature}"
        )
    if len(shape) != len(spec.shape) or any(
        want >= 0 and got != want for got, want in zip(shape, spec.shape, strict=True)
    ):
        raise InvalidRequestError(
            f"input '{tensor.name}' has shape {shape}; expected {signature} (-1 = any size)"
        )
    dtype = NUMPY_BY_DATATYPE.get(tensor.datatype)
    if dtype is not None:
        need = element_count(shape) * dtype.itemsize
        if len(tensor.contents) != need:
            raise InvalidRequestError(
                f"input '{tensor.name}' carries {len(tensor.contents)} bytes; "
                f"{tensor.datatype} {shape} needs {need}"
            )
