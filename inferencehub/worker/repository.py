"""The model repository on disk: models/NAME/VERSION/model.onnx plus an optional model.toml."""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferencehub.errors import ConfigError
from inferencehub.worker.pipeline_config import PipelineConfig

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CONFIG_FILE = "model.toml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreprocessConfig(_Strict):
    """How an encoded image becomes the model's input tensor (pixel values are 0-255)."""

    input: str | None = Field(None, description="Image input name; default: the only input.")
    color: Literal["RGB", "BGR", "L"] = "RGB"
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    size: tuple[int, int] | None = Field(
        None, description="(height, width); default: the input's static shape."
    )
    crop_padding: int | None = Field(
        None, ge=0, description="Centre-crop S/(S+p) of the short side before resizing."
    )
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = "bilinear"
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)


class PostprocessConfig(_Strict):
    """How outputs are presented: softmax and top-k with labels."""

    output: str | None = Field(None, description="Scores output; default: the first output.")
    softmax: bool = False
    top_k: int = Field(5, ge=1, le=1000)
    labels: str | None = Field(None, description="File beside model.toml, one label a line.")


class BatchingConfig(_Strict):
    """Dynamic batching of concurrent requests (models with a dynamic first dimension)."""

    enabled: bool = True
    max_queue_delay_us: int = Field(
        0,
        ge=0,
        le=10_000_000,
        description="Wait this long for more requests once an instance is free (0 = never).",
    )
    preferred_batch_sizes: tuple[int, ...] = Field(
        (), description="Stop waiting early once a batch reaches one of these sizes."
    )


class ShadowConfig(_Strict):
    """Mirror a fraction of the requests to a version whose answers are only recorded."""

    version: int
    fraction: float = Field(gt=0, le=1)


class RoutingConfig(_Strict):
    """Version routing for requests that name no version, or a label."""

    labels: dict[str, int] = Field(default_factory=dict, description="e.g. {stable = 1}")
    split: dict[str, float] = Field(
        default_factory=dict, description="Weights by version, e.g. {'1' = 90, '2' = 10}."
    )
    sticky: bool = True
    shadow: ShadowConfig | None = None


class GoldenConfig(_Strict):
    """The gate before traffic: golden/*.npz in a version folder must match before it serves."""

    rtol: float = Field(1e-4, ge=0, description="Relative tolerance (np.allclose).")
    atol: float = Field(1e-5, ge=0, description="Absolute tolerance (np.allclose).")
    required: bool = Field(
        False, description="A version without golden files fails to load instead of serving."
    )


class ModelConfig(_Strict):
    """The optional models/NAME/model.toml."""

    default_version: int | None = None
    max_batch_size: int | None = Field(
        None, ge=0, description="Largest batch accepted; default 64 for batchable models."
    )
    instances: int = Field(
        1, ge=1, le=64, description="ONNX Runtime sessions per version (set: not tuned)."
    )
    tuning: Literal["auto", "off"] = Field(
        "auto",
        description="auto: CPU versions measure their layout (instances x threads, batch cap) "
        "when they load, cached; off: model.toml's values and defaults as they are.",
    )
    provider: (
        Literal["auto", "measure", "tensorrt", "cuda", "coreml", "directml", "openvino", "cpu"]
        | None
    ) = Field(None, description="Execution provider for this model (default: the worker's).")
    provider_policy: Literal["fallback", "strict"] | None = Field(
        None, description="fallback or strict for this model (default: the worker's)."
    )
    max_queue_size: int = Field(
        128, ge=1, description="Queued requests per version before new ones get 429."
    )
    batching: BatchingConfig = BatchingConfig()
    routing: RoutingConfig = RoutingConfig()
    golden: GoldenConfig = GoldenConfig()
    preprocess: PreprocessConfig | None = None
    postprocess: PostprocessConfig | None = None
    pipeline: PipelineConfig | None = Field(
        None, description="Steps instead of a model.onnx per version (docs/pipelines.md)."
    )


@dataclass(frozen=True, slots=True)
class VersionEntry:
    version: str
    path: Path


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model folder as found on disk, before anything is loaded."""

    name: str
    directory: Path
    config: ModelConfig
    versions: list[VersionEntry] = field(default_factory=list)
    labels: list[str] | None = None
    error: str | None = None


def load_model_config(directory: Path) -> tuple[ModelConfig, list[str] | None]:
    """Read model.toml and its labels file, if any.

    Raises:
        ConfigError: invalid TOML, unknown keys, bad values or a missing labels file.
    """
    path = directory / CONFIG_FILE
    if not path.is_file():
        return ModelConfig(), None
    try:
        config = ModelConfig.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    labels = None
    if config.postprocess is not None and config.postprocess.labels:
        labels_path = directory / config.postprocess.labels
        try:
            labels = [line.strip() for line in labels_path.read_text().splitlines()]
        except OSError as exc:
            raise ConfigError(f"labels file {labels_path}: {exc.strerror}") from None
    return config, labels


def scan_model(directory: Path) -> ModelEntry | None:
    """One model folder with its versions; None if it is not a model (no version folders)."""
    if directory.name.startswith(".") or not directory.is_dir():
        return None
    if not _NAME.match(directory.name):
        logger.warning("skipping %s: model names use letters, digits, '_', '.', '-'", directory)
        return None
    versions = sorted(
        (
            VersionEntry(version=str(int(v.name)), path=v / MODEL_FILE)
            for v in directory.iterdir()
            if v.is_dir() and v.name.isascii() and v.name.isdigit()
        ),
        key=lambda e: int(e.version),
    )
    if not versions:
        logger.debug("skipping %s: no numbered version folders", directory)
        return None
    try:
        config, labels = load_model_config(directory)
    except ConfigError as exc:
        return ModelEntry(directory.name, directory, ModelConfig(), versions, error=exc.message)
    return ModelEntry(directory.name, directory, config, versions, labels)


def scan_repository(root: Path) -> list[ModelEntry]:
    """List every model and version folder under `root`; bad folders are reported, not fatal.

    Raises:
        ConfigError: `root` is not a directory.
    """
    if not root.is_dir():
        raise ConfigError(f"model repository {root} is not a directory")
    entries = (scan_model(directory) for directory in sorted(root.iterdir()))
    return [entry for entry in entries if entry is not None]
