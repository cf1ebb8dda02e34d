"""A gate before traffic: golden inputs with expected outputs, and warm-up runs.

A version folder may hold `golden/*.npz` files (`np.savez`): arrays named `input.NAME` (every
model input) and `output.NAME` (the expected outputs to compare; at least one), and optionally
scalar `rtol` / `atol` overriding model.toml's `[golden]` for that file. A freshly built version
runs each file on every session before it becomes routable; any mismatch, or a file that cannot
be read, makes the load fail with a reason. Without golden files every session is warmed with
one synthetic input instead, so the first real request does not pay ONNX Runtime's first-run
allocations; a synthetic warm-up that fails is only logged, since zeros need not be valid input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from inferencehub.errors import ConfigError, first_line
from inferencehub.protocol.datatypes import BYTES, NUMPY_BY_DATATYPE, datatype_of
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.repository import GoldenConfig
from inferencehub.worker.signature import synthetic_feeds

logger = logging.getLogger(__name__)

GOLDEN_DIR = "golden"
INPUT_PREFIX = "input."
OUTPUT_PREFIX = "output."
TOLERANCE_KEYS = ("rtol", "atol")
WARM_UP_INNER_DIMS = 32


class GatedVersion(Protocol):
    """What the gate needs of a freshly built version (OnnxModel is one); a protocol, so that
    this module does not import onnx_model, which imports it."""

    @property
    def name(self) -> str: ...
    @property
    def inputs(self) -> Sequence[pb.TensorSpec]: ...
    @property
    def outputs(self) -> Sequence[pb.TensorSpec]: ...
    @property
    def info(self) -> pb.ModelVersion: ...
    def run_feeds(self, instance: int, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class GoldenCase:
    """One golden file: what to feed, what must come out, and how close is close enough."""

    label: str  # "golden/cat.npz", as errors name it
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    rtol: float
    atol: float


def golden_files(version_dir: Path) -> list[Path]:
    """The version's golden files, in name order (none if there is no golden/ folder)."""
    return sorted(p for p in (version_dir / GOLDEN_DIR).glob("*.npz") if p.is_file())


def load_case(path: Path, config: GoldenConfig) -> GoldenCase:
    """Read one golden file; never unpickles anything.

    Raises:
        ConfigError: the file cannot be read, holds objects, or breaks the key convention.
    """
    label = f"{GOLDEN_DIR}/{path.name}"
    try:
        with path.open("rb") as file:
            magic = file.read(2)
    except OSError as exc:
        raise ConfigError(f"{label} cannot be read: {exc.strerror}") from None
    # NOTE: np.load reports any non-zip file as "pickled data"; say what is really wrong.
    if magic != b"PK":
        raise ConfigError(f"{label} is not an .npz archive (write it with np.savez)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:  # numpy and zipfile raise many types for damaged archives
        if "allow_pickle" in str(exc):
            raise ConfigError(
                f"{label} holds object arrays, which are never unpickled; save numeric, bool "
                "or string arrays"
            ) from None
        raise ConfigError(f"{label} cannot be read: {first_line(exc)}") from None
    inputs: dict[str, np.ndarray] = {}
    outputs: dict[str, np.ndarray] = {}
    unknown = []
    for key, array in arrays.items():
        if key.startswith(INPUT_PREFIX):
            inputs[key.removeprefix(INPUT_PREFIX)] = array
        elif key.startswith(OUTPUT_PREFIX):
            outputs[key.removeprefix(OUTPUT_PREFIX)] = array
        elif key not in TOLERANCE_KEYS:
            unknown.append(key)
    if unknown:
        raise ConfigError(
            f"{label} has unknown arrays {sorted(unknown)}; expected input.NAME, output.NAME, "
            "rtol, atol"
        )
    if not inputs or not outputs:
        raise ConfigError(
            f"{label} needs at least one input.NAME and one output.NAME array; it has "
            f"{sorted(arrays) or 'none'}"
        )
    rtol = _tolerance(label, arrays, "rtol", config.rtol)
    atol = _tolerance(label, arrays, "atol", config.atol)
    return GoldenCase(label, inputs, outputs, rtol, atol)


def _tolerance(label: str, arrays: dict[str, np.ndarray], key: str, default: float) -> float:
    if key not in arrays:
        return default
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in "iuf" or not np.isfinite(value) or value < 0:
        raise ConfigError(
            f"{label}: '{key}' must be a non-negative scalar, not {value.dtype} {value.shape}"
        )
    return float(value)


def feeds_for(
    case: GoldenCase, inputs: Sequence[pb.TensorSpec], outputs: Sequence[pb.TensorSpec]
) -> dict[str, np.ndarray]:
    """The case's inputs as ONNX Runtime feeds, checked against the model's signature first so
    that a wrong file is named as such rather than reported in ONNX Runtime's words.

    Raises:
        ConfigError: a missing or unknown input or output, or an input of the wrong type/shape.
    """
    specs = {s.name: s for s in inputs}
    output_names = sorted(s.name for s in outputs)
    if extra := sorted(set(case.inputs) - set(specs)):
        raise ConfigError(f"{case.label} has input '{extra[0]}'; model inputs: {sorted(specs)}")
    if missing := sorted(set(specs) - set(case.inputs)):
        raise ConfigError(f"{case.label} lacks input '{missing[0]}' (add input.{missing[0]})")
    if extra := sorted(set(case.outputs) - set(output_names)):
        raise ConfigError(f"{case.label} has output '{extra[0]}'; model outputs: {output_names}")
    feeds = {}
    for name, array in case.inputs.items():
        spec = specs[name]
        try:
            datatype = datatype_of(array)
        except ValueError:
            datatype = str(array.dtype)
        if datatype != spec.datatype:
            raise ConfigError(
                f"{case.label} input '{name}' is {array.dtype}; the model takes {spec.datatype}"
            )
        if len(array.shape) != len(spec.shape) or any(
            d >= 0 and d != n for d, n in zip(spec.shape, array.shape, strict=True)
        ):
            raise ConfigError(
                f"{case.label} input '{name}' has shape {array.shape}; the model takes "
                f"{list(spec.shape)} (-1 = any)"
            )
        feeds[name] = (
            _strings(array)
            if datatype == BYTES
            else array.astype(NUMPY_BY_DATATYPE[datatype], copy=False)
        )
    return feeds


def compare(name: str, actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> str:
    """Why an output does not match its expected value ("" if it does).

    Floats match as np.allclose (|actual - expected| <= atol + rtol * |expected|, NaN equal to
    NaN); integers, booleans and strings must be equal; shape and dtype must be the same.
    """
    if expected.dtype.kind in "US" or actual.dtype.kind in "OUS":
        if expected.dtype.kind not in "US" or actual.dtype.kind not in "OUS":
            return f"output '{name}' is {actual.dtype}; the file expects {expected.dtype}"
        actual, expected = _strings(actual).astype(str), _strings(expected).astype(str)
    elif actual.dtype != expected.dtype:
        return f"output '{name}' is {actual.dtype}; the file expects {expected.dtype}"
    if actual.shape != expected.shape:
        return f"output '{name}' has shape {actual.shape}; the file expects {expected.shape}"
    if expected.dtype.kind in "fc":
        wide = np.complex128 if expected.dtype.kind == "c" else np.float64
        got, want = actual.astype(wide), expected.astype(wide)
        bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        if not bad.any():
            return ""
        diff = np.abs(got - want)
        worst = np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0)
        index = _index(int(np.argmax(worst)), expected.shape)
        return (
            f"output '{name}' differs: max abs diff {diff[index]:.3g} > atol {atol:g} + rtol "
            f"{rtol:g}*|expected| at index {index} (got {got[index]:.6g}, expected "
            f"{want[index]:.6g}; {int(bad.sum())} of {bad.size} elements differ)"
        )
    bad = actual != expected
    if not bad.any():
        return ""
    index = _index(int(np.argmax(bad)), expected.shape)
    return (
        f"output '{name}' differs at index {index}: got {actual[index].item()!r}, expected "
        f"{expected[index].item()!r} ({int(bad.sum())} of {bad.size} elements differ)"
    )


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def _strings(array: np.ndarray) -> np.ndarray:
    """Text as the str objects ONNX Runtime's string tensors hold (bytes decoded as UTF-8)."""
    flat = [e.decode(errors="replace") if isinstance(e, bytes) else str(e) for e in array.flat]
    return np.array(flat, dtype=object).reshape(array.shape)


def check_golden(model: GatedVersion, version_dir: Path, config: GoldenConfig) -> str | None:
    """Gate a freshly built version: its golden files must match on every session; without any,
    warm it with synthetic input. Blocking (call it on the pool).

    Returns:
        Why the version must not serve, or None.
    """
    files = golden_files(version_dir)
    if not files:
        if config.required:
            return (
                f"golden check failed: no {GOLDEN_DIR}/*.npz files, and model.toml [golden] "
                "required = true"
            )
        warm_up(model)
        return None
    try:
        for path in files:
            case = load_case(path, config)
            feeds = feeds_for(case, model.inputs, model.outputs)
            for instance in range(model.info.instances):
                try:
                    results = model.run_feeds(instance, feeds)
                except Exception as exc:  # ONNX Runtime raises many types
                    raise ConfigError(
                        f"{case.label}: the model failed on its inputs: {first_line(exc)}"
                    ) from None
                for name, expected in case.outputs.items():
                    problem = compare(
                        name, np.asarray(results[name]), expected, case.rtol, case.atol
                    )
                    if problem:
                        raise ConfigError(f"{case.label} {problem}")
    except ConfigError as exc:
        return f"golden check failed: {exc.message}"
    logger.info(
        "%s version %s matches its %d golden file(s)", model.name, model.info.version, len(files)
    )
    return None


def warm_up(model: GatedVersion) -> None:
    """Run one synthetic input on every session; a failure is logged, never fatal."""
    # NOTE: convolutional nets with dynamic image sizes downsample several times; 1x1 is too
    # small for them (PP-OCR's detector fails on it), 32 is what their sizes are multiples of.
    feeds = synthetic_feeds(model.inputs, inner_dims=WARM_UP_INNER_DIMS)
    if feeds is None:
        logger.info(
            "%s version %s: no warm-up (an input takes strings)", model.name, model.info.version
        )
        return
    for instance in range(model.info.instances):
        try:
            model.run_feeds(instance, feeds)
        except Exception as exc:  # zeros need not be a valid input; serving decides
            logger.warning(
                "%s version %s: warm-up on zeros failed (it still loads): %s",
                model.name,
                model.info.version,
                first_line(exc),
            )
            return
