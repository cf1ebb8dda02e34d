"""Check a PredictRequest against a model version's signature (pure; gateway and worker)."""

from __future__ import annotations

from collections.abc import Sequence

from inferencehub.errors import InvalidRequestError, ModelNotFoundError
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


def missing_model_error(name: str, known: Sequence[str]) -> ModelNotFoundError:
    """The error for an unknown model name, naming the models that exist. It starts as
    Triton's does: its clients (simple_http_infer_client.py among them) check the prefix."""
    return ModelNotFoundError(
        f"Request for unknown model: '{name}' is not found; models: "
        f"{', '.join(sorted(known)) or 'none'}"
    )


def validate_predict(
    request: pb.PredictRequest, version: pb.ModelVersion, sizes: Sequence[int] | None = None
) -> None:
    """Refuse a request whose inputs do not match the version's signature, before any compute.

    `sizes`: the byte length of each input when its bytes travel beside the message (the
    hop's arena), else each tensor's `contents` is measured.

    Raises:
        InvalidRequestError: names the expected signature.
    """
    SignatureCheck(version).check(request, sizes)


class SignatureCheck:
    """A version's signature compiled once, so each request costs a few lookups (the gateway
    and the worker check every request; see `validate_predict`)."""

    __slots__ = ("_inputs", "_outputs", "_specs", "version")

    def __init__(self, version: pb.ModelVersion) -> None:
        self.version = version
        self._inputs = {spec.name: spec for spec in version.inputs}
        self._outputs = frozenset(spec.name for spec in version.outputs)
        self._specs = {spec.name: (spec.datatype, tuple(spec.shape)) for spec in version.inputs}

    def check(self, request: pb.PredictRequest, sizes: Sequence[int] | None = None) -> None:
        """Raises InvalidRequestError naming the expected signature."""
        seen: set[str] = set()
        for index, tensor in enumerate(request.inputs):
            name = tensor.name
            spec = self._inputs.get(name)
            if spec is None or name in seen:
                problem = "is given twice" if name in seen else "is not an input of this model"
                raise InvalidRequestError(
                    f"input '{name}' {problem}; expected: {describe_signature(self.version)}"
                )
            seen.add(name)
            size = sizes[index] if sizes is not None else None
            _check_tensor(tensor, spec, self._specs[name], self.version, size)
        if len(seen) != len(self._inputs):
            missing = [name for name in self._inputs if name not in seen]
            raise InvalidRequestError(
                f"missing input(s) {', '.join(missing)}; "
                f"expected: {describe_signature(self.version)}"
            )
        for name in [*request.outputs, *request.output_options]:
            if name not in self._outputs:
                raise InvalidRequestError(
                    f"requested output '{name}' does not exist; "
                    f"outputs: {', '.join(sorted(self._outputs))}"
                )

    def output_bytes(self, request: pb.PredictRequest) -> int:
        """Bytes the request's numeric outputs will take where the signature fixes their size
        (every dim static, or the first one the batch size); BYTES outputs and outputs of
        other dynamic sizes are left out (they travel inline)."""
        wanted = set(request.outputs) or self._outputs
        if request.output_options:  # outputs into a client's region or as class strings
            wanted = wanted.difference(request.output_options)
        batch = request.inputs[0].shape[0] if request.inputs and request.inputs[0].shape else 1
        total = 0
        for spec in self.version.outputs:
            if spec.name not in wanted:
                continue
            dtype = NUMPY_BY_DATATYPE.get(spec.datatype)
            shape = list(spec.shape)
            if shape and shape[0] < 0 and self.version.max_batch_size:
                shape[0] = batch
            if dtype is None or any(d < 0 for d in shape):
                continue
            total += align_to(element_count(shape) * dtype.itemsize, OUTPUT_ALIGN)
        return total


# Outputs are laid out at this alignment (the hop arena's): output_bytes() counts the padding.
OUTPUT_ALIGN = 64


def align_to(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def _check_tensor(
    tensor: pb.Tensor,
    spec: pb.TensorSpec,
    expected: tuple[str, tuple[int, ...]],
    version: pb.ModelVersion,
    size: int | None,
) -> None:
    shape = tuple(tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidRequestError(f"input '{tensor.name}' has a negative dimension: {list(shape)}")
    if version.max_batch_size and shape and shape[0] > version.max_batch_size:
        raise InvalidRequestError(
            f"input '{tensor.name}' has batch size {shape[0]}; this model takes at most "
            f"{version.max_batch_size} (max_batch_size in model.toml)"
        )
    datatype = tensor.datatype
    if datatype == BYTES and version.image.input == tensor.name:
        if len(shape) != 1 or shape[0] < 1:
            raise InvalidRequestError(
                f"input '{tensor.name}' as encoded images must have shape [N] with N >= 1, "
                f"got {list(shape)}"
            )
        return
    want_type, want_shape = expected
    signature = f"{spec.datatype} {list(spec.shape)}"
    if datatype != want_type:
        raise InvalidRequestError(
            f"input '{tensor.name}' has datatype {datatype or '(none)'}; expected {signature}"
        )
    if len(shape) != len(want_shape) or any(
        want >= 0 and got != want for got, want in zip(shape, want_shape, strict=True)
    ):
        raise InvalidRequestError(
            f"input '{tensor.name}' has shape {list(shape)}; expected {signature} (-1 = any size)"
        )
    dtype = NUMPY_BY_DATATYPE.get(datatype)
    if dtype is not None:
        need = element_count(shape) * dtype.itemsize
        got = len(tensor.contents) if size is None else size
        if got != need:
            raise InvalidRequestError(
                f"input '{tensor.name}' carries {got} bytes; {datatype} {list(shape)} needs {need}"
            )
