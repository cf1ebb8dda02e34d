"""Built-in pipeline operations on small hand-computed cases (OCR steps, threshold, top-k, NMS)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from inferencehub.errors import ConfigError, InvalidRequestError
from inferencehub.worker.ops_geometry import (
    Rect,
    connected_regions,
    dilate_2x2,
    min_area_rect,
    order_clockwise,
    reading_order,
)
from inferencehub.worker.ops_text import unclip
from inferencehub.worker.pipeline_ops import BUILT_INS, OpContext, Run, built_in

Tensors = dict[str, np.ndarray]


def build(op: str, params: Mapping[str, Any] | None = None, folder: Path = Path(".")) -> Run:
    return built_in(op).build(params or {}, OpContext(folder=folder, max_image_pixels=10**7))


def encoded(image: Image.Image, fmt: str = "PNG", **save: Any) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    data = np.empty(1, dtype=object)
    data[0] = buffer.getvalue()
    return data


def sorted_points(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return sorted(points, key=lambda p: (p[1], p[0]))


def same_corners(actual: np.ndarray, expected: np.ndarray, tolerance: float) -> bool:
    """Equal as sets of corners, whatever the starting corner."""
    return all(np.min(np.abs(actual - p).max(axis=1)) <= tolerance for p in expected)


# the registry and params ---------------------------------------------------------------------


def test_registry_lists_the_ops_and_refuses_unknown_ones() -> None:
    assert set(BUILT_INS) == {
        "decode_image",
        "resize_normalize",
        "db_boxes",
        "crop_regions",
        "ctc_greedy",
        "threshold",
        "top_k",
        "nms",
    }
    assert built_in("db_boxes").outputs == ("boxes", "scores")
    assert built_in("threshold").variadic
    with pytest.raises(ConfigError, match=r"unknown op 'db_box'.*db_boxes"):
        built_in("db_box")


@pytest.mark.parametrize(
    ("op", "params", "match"),
    [
        ("db_boxes", {"treshold": 0.3}, r"op db_boxes: unknown param 'treshold'.*thresh"),
        ("db_boxes", {"thresh": "high"}, r"op db_boxes: param 'thresh': .*number"),
        ("db_boxes", {"box_thresh": 1.5}, r"op db_boxes: param 'box_thresh': .*less than"),
        ("resize_normalize", {"limit_type": "long"}, r"param 'limit_type': .*'min' or 'max'"),
        ("resize_normalize", {"std": [1, 0, 1]}, r"param 'std.1': .*greater than 0"),
        ("crop_regions", {"hieght": 32}, r"op crop_regions: unknown param 'hieght'"),
        ("decode_image", {"color": "HSV"}, r"op decode_image: param 'color'"),
        ("top_k", {"k": 0}, r"op top_k: param 'k'"),
        ("nms", {"iou": 0.5}, r"op nms: unknown param 'iou'.*iou_threshold"),
        ("threshold", {"minimum": 0.5}, r"op threshold: unknown param 'minimum'"),
        ("ctc_greedy", {}, r"op ctc_greedy: param 'characters': Field required"),
    ],
)
def test_bad_params_name_the_op_and_the_key(op: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build(op, params)


# geometry ------------------------------------------------------------------------------------


def region_pixels(mask: np.ndarray) -> set[frozenset[tuple[int, int]]]:
    regions = connected_regions(mask)
    found = set()
    for region in range(regions.count):
        runs = regions.order[regions.offsets[region] : regions.offsets[region + 1]]
        found.add(
            frozenset(
                (int(regions.rows[run]), x)
                for run in runs
                for x in range(int(regions.starts[run]), int(regions.ends[run]) + 1)
            )
        )
    return found


def flood_fill_regions(mask: np.ndarray) -> set[frozenset[tuple[int, int]]]:
    """8-connected regions pixel by pixel: the slow, obvious answer."""
    seen: set[tuple[int, int]] = set()
    found = set()
    for start in zip(*np.nonzero(mask), strict=True):
        start = (int(start[0]), int(start[1]))
        if start in seen:
            continue
        stack, region = [start], set()
        seen.add(start)
        while stack:
            y, x = stack.pop()
            region.add((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if (
                        0 <= ny < mask.shape[0]
                        and 0 <= nx < mask.shape[1]
                        and mask[ny, nx]
                        and (ny, nx) not in seen
                    ):
                        seen.add((ny, nx))
                        stack.append((ny, nx))
        found.add(frozenset(region))
    return found


def test_diagonal_neighbours_are_one_region_and_a_gap_makes_two() -> None:
    mask = np.zeros((6, 8), bool)
    mask[0, 0:2] = True
    mask[1, 2] = True  # touches (0, 1) diagonally
    mask[2, 3:5] = True
    mask[4, 6:8] = True  # one empty row away: separate
    assert region_pixels(mask) == {
        frozenset({(0, 0), (0, 1), (1, 2), (2, 3), (2, 4)}),
        frozenset({(4, 6), (4, 7)}),
    }


def test_u_and_spiral_shapes_merge_into_one_region() -> None:
    u_shape = np.zeros((6, 7), bool)
    u_shape[0:5, 0] = u_shape[0:5, 6] = u_shape[5, :] = True
    assert connected_regions(u_shape).count == 1
    spiral = np.zeros((9, 9), bool)
    spiral[0, :] = spiral[:, 8] = spiral[8, :] = spiral[2:9, 0] = True
    spiral[2, 0:7] = spiral[2:7, 6] = spiral[6, 2:7] = spiral[4:7, 2] = True
    assert connected_regions(spiral).count == 1


def test_regions_match_a_flood_fill_on_random_maps() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        mask = rng.random((25, 30)) < 0.45
        assert region_pixels(mask) == flood_fill_regions(mask)
    assert connected_regions(np.zeros((4, 4), bool)).count == 0


def test_regions_are_numbered_in_raster_order_with_bounds() -> None:
    mask = np.zeros((10, 10), bool)
    mask[5:9, 1:4] = True
    mask[1:3, 6:10] = True
    regions = connected_regions(mask)
    x_span, y_span = regions.bounds()
    assert x_span.tolist() == [3, 2]
    assert y_span.tolist() == [1, 3]
    assert regions.outline(0) == [(6, 1), (9, 1), (6, 2), (9, 2)]


def test_dilation_grows_one_pixel_right_and_down() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True
    assert np.argwhere(dilate_2x2(mask)).tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]


def test_min_area_rect_of_a_rotated_rectangle_is_that_rectangle() -> None:
    angle = math.radians(30)
    u = np.array([math.cos(angle), math.sin(angle)])
    v = np.array([-u[1], u[0]])
    corners = np.array([[0, 0], 10 * u, 10 * u + 4 * v, 4 * v]) + np.array([5.0, 7.0])
    inside = [tuple(corners[0] + a * u + b * v) for a, b in [(3, 1), (7, 2), (5, 3)]]
    rect = min_area_rect(sorted_points([tuple(p) for p in corners] + inside))
    assert sorted([rect.width, rect.height]) == pytest.approx([4, 10])
    assert same_corners(rect.corners(), corners, 1e-9)


def test_min_area_rect_of_a_triangle_and_of_degenerate_sets() -> None:
    # the base-aligned 10x2 rectangle (20) beats one along a slanted side (about 34.5)
    rect = min_area_rect(sorted_points([(0.0, 0.0), (10.0, 0.0), (5.0, 2.0)]))
    assert rect.width * rect.height == pytest.approx(20)
    assert same_corners(rect.corners(), np.array([[0, 0], [10, 0], [10, 2], [0, 2]]), 1e-9)
    # cv2.minAreaRect([[0,0],[9,0],[9,3],[0,3]]) == ((4.5, 1.5), (3, 9), -90)
    rect = min_area_rect(sorted_points([(0.0, 0.0), (9.0, 0.0), (9.0, 3.0), (0.0, 3.0)]))
    assert (rect.cx, rect.cy) == pytest.approx((4.5, 1.5))
    assert sorted([rect.width, rect.height]) == pytest.approx([3, 9])
    line = min_area_rect([(0.0, 0.0), (3.0, 4.0)])
    assert (line.short_side, max(line.width, line.height)) == pytest.approx((0, 5))
    assert min_area_rect([(2.0, 2.0), (2.0, 2.0)]).short_side == 0


def test_unclip_grows_a_10x4_box_by_2d() -> None:
    rect = min_area_rect(sorted_points([(10.0, 20.0), (20.0, 20.0), (20.0, 24.0), (10.0, 24.0)]))
    # d = area * ratio / perimeter = 40 * 1.4 / 28 = 2.0
    grown = unclip(rect, 1.4)
    assert sorted([grown.width, grown.height]) == pytest.approx([8, 14])
    assert same_corners(grown.corners(), np.array([[8, 18], [22, 18], [22, 26], [8, 26]]), 1e-9)
    exact = Rect(0.0, 0.0, 0.6, 0.8, 10.0, 4.0).grown(1.3)
    assert (exact.width, exact.height) == pytest.approx((12.6, 6.6))


def test_corners_are_ordered_clockwise_from_top_left() -> None:
    box = np.array([[10.0, 20.0], [10.0, 5.0], [40.0, 6.0], [40.0, 21.0]])  # counter-clockwise
    assert order_clockwise(box).tolist() == [[10, 5], [40, 6], [40, 21], [10, 20]]
    diamond = np.array([[0.0, 5.0], [5.0, 10.0], [10.0, 5.0], [5.0, 0.0]])
    assert order_clockwise(diamond).tolist() == [[5, 0], [10, 5], [5, 10], [0, 5]]


def test_reading_order_puts_boxes_of_one_line_left_to_right() -> None:
    top_left = np.array([[300.0, 52.0], [10.0, 50.0], [20.0, 58.0], [10.0, 100.0]])
    # (10, 50) first; (300, 52) and (20, 58) are on its line (dy < 10): by x
    assert reading_order(top_left, 10) == [1, 2, 0, 3]


# db_boxes ------------------------------------------------------------------------------------


def two_rectangles() -> np.ndarray:
    probability = np.zeros((100, 100), np.float32)
    probability[20:28, 10:50] = 0.9  # pixel centres x 10..49, y 20..27
    rotated = Image.new("L", (100, 100), 0)
    c, u, v = np.array([70.0, 70.0]), np.array([1, 1]) / math.sqrt(2), np.array([-1, 1]) / 2**0.5
    polygon = [tuple(c + a * 20 * u + b * 5 * v) for a, b in [(-1, -1), (1, -1), (1, 1), (-1, 1)]]
    ImageDraw.Draw(rotated).polygon(polygon, fill=255)
    probability[np.asarray(rotated) > 0] = 0.8
    return probability


def test_db_boxes_finds_an_upright_and_a_45_degree_rectangle() -> None:
    run = build("db_boxes")
    out = run({"probability": two_rectangles()[None, None], "size": np.array([100, 100])})
    boxes, scores = out["boxes"], out["scores"]
    assert boxes.shape == (2, 4, 2) and boxes.dtype == np.float32
    # 39 x 7 between pixel centres; d = 39 * 7 * 1.4 / 92 = 4.15, on the integer grid: 4
    assert boxes[0].tolist() == [[6, 16], [53, 16], [53, 31], [6, 31]]
    assert scores[0] == pytest.approx(0.9)
    # the rotated one: about 40 x 10, grown by d ~ 5.6 on each side
    u, v = np.array([1, 1]) / math.sqrt(2), np.array([-1, 1]) / math.sqrt(2)
    expected = [70 + a * 25.6 * u + b * 10.6 * v for a, b in [(-1, -1), (1, -1), (1, 1), (-1, 1)]]
    assert same_corners(boxes[1], np.array(expected), 1.5)
    assert boxes[1, 0].tolist() == [float(x) for x in np.round(boxes[1, 0])]
    assert boxes[1, 0, 1] == boxes[1, :, 1].min()  # the top corner first on a 45-degree tie
    assert 0.7 < scores[1] <= 0.8


def test_db_boxes_scales_to_the_original_image_and_clips() -> None:
    probability = np.zeros((50, 50), np.float32)
    probability[0:6, 30:50] = 0.9
    out = build("db_boxes")({"probability": probability, "size": np.array([100, 200])})
    # x 30..49 and y 0..5, d = 19 * 5 * 1.4 / 48 = 2.77 -> 27..52, -3..8; x4 and x2, clipped
    assert out["boxes"].tolist() == [[[108, 0], [199, 0], [199, 16], [108, 16]]]


def test_db_boxes_drops_small_faint_and_excess_regions() -> None:
    probability = np.zeros((60, 60), np.float32)
    probability[5:7, 5:30] = 0.9  # 1 px between pixel centres: below min_size 3
    probability[20:30, 5:30] = 0.3  # above thresh 0.2, mean below box_thresh 0.4
    probability[40:50, 5:30] = 0.5
    probability[52:58, 40:50] = np.nan  # never text, never a crash
    feed = {"probability": probability, "size": np.array([60, 60])}
    out = build("db_boxes")(feed)
    assert out["scores"].tolist() == pytest.approx([0.5])
    assert build("db_boxes", {"box_thresh": 0.25})(feed)["scores"].tolist() == pytest.approx(
        [0.3, 0.5]
    )
    # max_candidates counts from the bottom, as OpenCV lists contours
    few = build("db_boxes", {"box_thresh": 0.25, "max_candidates": 1})(feed)
    assert few["scores"].tolist() == pytest.approx([0.5])
    empty = build("db_boxes")({"probability": np.zeros((8, 8)), "size": np.array([8, 8])})
    assert empty["boxes"].shape == (0, 4, 2) and empty["scores"].shape == (0,)


def test_db_boxes_dilation_joins_regions_one_pixel_apart() -> None:
    probability = np.zeros((40, 60), np.float32)
    probability[10:20, 5:25] = probability[10:20, 26:45] = 0.9
    feed = {"probability": probability, "size": np.array([40, 60])}
    assert len(build("db_boxes")(feed)["boxes"]) == 2
    assert len(build("db_boxes", {"dilation": True})(feed)["boxes"]) == 1


def test_db_boxes_refuses_bad_tensors() -> None:
    run = build("db_boxes")
    with pytest.raises(InvalidRequestError, match="probability must be"):
        run({"probability": np.zeros((2, 1, 8, 8), np.float32), "size": np.array([8, 8])})
    with pytest.raises(InvalidRequestError, match="size must be"):
        run({"probability": np.zeros((8, 8), np.float32), "size": np.array([8])})


# crop_regions --------------------------------------------------------------------------------


def test_crop_cuts_the_box_resizes_normalises_and_pads() -> None:
    image = np.full((100, 200, 3), 128, np.uint8)
    image[20:40, 50:130] = (10, 200, 30)  # 80 x 20
    boxes = np.array([[[50, 20], [130, 20], [130, 40], [50, 40]]], np.float32)
    crops = build("crop_regions")({"image": image, "boxes": boxes})["crops"]
    assert crops.shape == (1, 3, 48, 320)  # ratio 4 -> 192 wide, padded to 320 / 48 * 48
    colour = (np.array([10, 200, 30]) / 255 - 0.5) / 0.5
    assert np.allclose(crops[0, :, :, :192], colour[:, None, None], atol=1e-6)
    assert not crops[0, :, :, 192:].any()
    wide = np.array([[[0, 0], [100, 0], [100, 10], [0, 10]]], np.float32)  # ratio 10
    batch = build("crop_regions")({"image": image, "boxes": np.concatenate([boxes, wide])})
    assert batch["crops"].shape == (2, 3, 48, 480)
    assert not batch["crops"][0, :, :, 192:].any()


def test_tall_crops_are_turned_counter_clockwise() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[10:40, 40:60] = (255, 0, 0)  # top half of a 20 x 60 box
    image[40:70, 40:60] = (0, 0, 255)
    boxes = np.array([[[40, 10], [60, 10], [60, 70], [40, 70]]], np.float32)
    crops = build("crop_regions", {"mean": [0, 0, 0], "std": [1, 1, 1]})(
        {"image": image, "boxes": boxes}
    )["crops"]
    # 60 x 20 after turning: ratio 3 -> 144 wide; the top of the box is now on the left
    assert crops.shape == (1, 3, 48, 320)
    assert crops[0, :, 24, :60].tolist() == [[1.0] * 60, [0.0] * 60, [0.0] * 60]
    assert crops[0, :, 24, 84:144].tolist() == [[0.0] * 60, [0.0] * 60, [1.0] * 60]


def test_crop_of_no_boxes_and_of_bad_boxes() -> None:
    run = build("crop_regions", {"height": 32, "min_width": 100})
    image = np.zeros((10, 10, 3), np.uint8)
    empty = run({"image": image, "boxes": np.zeros((0, 4, 2), np.float32)})["crops"]
    assert empty.shape == (0, 3, 32, 100)
    with pytest.raises(InvalidRequestError, match=r"boxes must be finite \[K, 4, 2\]"):
        run({"image": image, "boxes": np.zeros((2, 3, 2), np.float32)})
    with pytest.raises(InvalidRequestError, match=r"image must be uint8 \[H, W, 3\]"):
        run({"image": np.zeros((10, 10), np.uint8), "boxes": np.zeros((0, 4, 2))})


# ctc_greedy ----------------------------------------------------------------------------------


@pytest.fixture
def characters(tmp_path: Path) -> Path:
    version = tmp_path / "ocr" / "1"
    version.mkdir(parents=True)
    (tmp_path / "ocr" / "chars.txt").write_bytes(b"a\r\nb\r\n")  # in the model folder
    return version


def sequence(classes: list[int], confidence: list[float], count: int) -> np.ndarray:
    steps = np.full((1, len(classes), count), 0.01, np.float32)
    for t, (index, p) in enumerate(zip(classes, confidence, strict=True)):
        steps[0, t, index] = p
    return steps


def test_ctc_merges_repeats_and_drops_blanks(characters: Path) -> None:
    run = build("ctc_greedy", {"characters": "chars.txt"}, characters)
    # classes: 0 blank, 1 a, 2 b, 3 space; "aa-b-bb" -> "abb" from the first of each run
    probabilities = sequence([1, 1, 0, 2, 0, 2, 2], [0.9, 0.5, 0.8, 0.6, 0.7, 0.3, 0.95], 4)
    out = run({"probabilities": probabilities})
    assert out["text"].tolist() == ["abb"]
    assert out["scores"][0] == pytest.approx((0.9 + 0.6 + 0.3) / 3)
    spaced = run({"probabilities": sequence([1, 3, 2], [0.9, 0.9, 0.9], 4)})
    assert spaced["text"].tolist() == ["a b"]
    blank = run({"probabilities": sequence([0, 0], [0.9, 0.9], 4)})
    assert blank["text"].tolist() == [""] and blank["scores"].tolist() == [0.0]
    none = run({"probabilities": np.zeros((0, 0, 0), np.float32)})
    assert none["text"].shape == (0,) and none["scores"].dtype == np.float32


def test_ctc_checks_the_class_count_and_the_blank_position(characters: Path) -> None:
    run = build("ctc_greedy", {"characters": "chars.txt", "space": False}, characters)
    with pytest.raises(InvalidRequestError, match=r"gives 4 classes.*makes 3"):
        run({"probabilities": np.zeros((1, 5, 4), np.float32)})
    last = build("ctc_greedy", {"characters": "chars.txt", "blank": 3}, characters)
    # blank last: 0 a, 1 b, 2 space, 3 blank
    assert last({"probabilities": sequence([0, 3, 2, 1], [0.9] * 4, 4)})["text"].tolist() == ["a b"]


def test_ctc_characters_file_must_exist_inside_the_model(characters: Path) -> None:
    with pytest.raises(ConfigError, match=r"param 'characters': file nope\.txt is in neither"):
        build("ctc_greedy", {"characters": "nope.txt"}, characters)
    with pytest.raises(ConfigError, match="inside the model folder"):
        build("ctc_greedy", {"characters": "../../etc/passwd"}, characters)


# threshold, top_k, nms -----------------------------------------------------------------------


def test_threshold_keeps_rows_with_their_boxes_and_texts() -> None:
    run = build("threshold", {"min": 0.5})
    texts = np.array(["a", "b", "c"], dtype=object)
    out = run(
        {
            "scores": np.array([0.9, 0.2, 0.5], np.float32),
            "boxes": np.arange(24, dtype=np.float32).reshape(3, 4, 2),
            "text": texts,
        }
    )
    assert out["scores"].tolist() == pytest.approx([0.9, 0.5])
    assert out["text"].tolist() == ["a", "c"]
    assert out["boxes"][:, 0, 0].tolist() == [0, 16]
    with pytest.raises(InvalidRequestError, match="text has shape"):
        run({"scores": np.ones(2, np.float32), "text": texts})


def test_top_k_breaks_ties_by_lower_index_and_can_softmax() -> None:
    scores = np.array([[0.1, 0.7, 0.7, 0.2], [4.0, 1.0, 2.0, 3.0]], np.float32)
    out = build("top_k", {"k": 2})({"scores": scores})
    assert out["indices"].tolist() == [[1, 2], [0, 3]]
    assert out["indices"].dtype == np.int64
    assert np.allclose(out["values"], [[0.7, 0.7], [4.0, 3.0]])
    soft = build("top_k", {"k": 9, "softmax": True})({"scores": np.log([[1.0, 3.0]])})
    assert soft["indices"].tolist() == [[1, 0]]
    assert np.allclose(soft["values"], [[0.75, 0.25]])


def test_nms_suppresses_overlaps_above_the_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    # IoU(0, 1) = 90 / 110 = 0.82; box 2 overlaps neither
    out = build("nms")({"boxes": boxes, "scores": scores})
    assert out["indices"].tolist() == [1, 2]
    assert out["boxes"].tolist() == [[1, 0, 11, 10], [20, 20, 30, 30]]
    assert out["scores"].tolist() == pytest.approx([0.9, 0.7])
    loose = build("nms", {"iou_threshold": 0.85})({"boxes": boxes, "scores": scores})
    assert loose["indices"].tolist() == [1, 0, 2]
    capped = build("nms", {"iou_threshold": 0.85, "max_detections": 1, "score_threshold": 0.95})
    assert capped({"boxes": boxes, "scores": scores})["indices"].tolist() == []


# decode_image and resize_normalize -----------------------------------------------------------


def test_decode_image_gives_bgr_by_default_and_its_size() -> None:
    image = Image.new("RGB", (5, 3), (10, 20, 30))
    out = build("decode_image")({"image": encoded(image)})
    assert out["image"].shape == (3, 5, 3) and out["image"][0, 0].tolist() == [30, 20, 10]
    assert out["size"].tolist() == [3, 5] and out["size"].dtype == np.int64
    rgb = build("decode_image", {"color": "RGB"})({"image": encoded(image)})
    assert rgb["image"][0, 0].tolist() == [10, 20, 30]


def test_decode_image_follows_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encoded(Image.new("RGB", (40, 20), "white"), "JPEG", exif=exif.tobytes())
    assert build("decode_image")({"image": data})["size"].tolist() == [40, 20]


def test_decode_image_refuses_garbage_and_several_images() -> None:
    run = build("decode_image")
    garbage = np.empty(1, dtype=object)
    garbage[0] = b"definitely not an image"
    with pytest.raises(InvalidRequestError, match="could not decode image"):
        run({"image": garbage})
    with pytest.raises(InvalidRequestError, match="one encoded image per request; got 2"):
        run({"image": np.array([b"a", b"b"], dtype=object)})


def test_resize_normalize_sizes_like_the_detector_reference() -> None:
    image = np.full((50, 100, 3), 51, np.uint8)
    # limit "min": the short side 50 -> 736, the long one 1472 (both multiples of 32)
    tensor = build("resize_normalize")({"image": image})["tensor"]
    assert tensor.shape == (1, 3, 736, 1472) and tensor.dtype == np.float32
    expected = (0.2 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert np.allclose(tensor[0, :, 0, 0], expected, atol=1e-5)
    shrink = build("resize_normalize", {"limit_type": "max", "limit_side_len": 64})
    assert shrink({"image": np.zeros((300, 200, 3), np.uint8)})["tensor"].shape == (1, 3, 64, 32)
    fixed = build("resize_normalize", {"size": [16, 24], "mean": [0, 0, 0], "std": [1, 1, 1]})
    assert fixed({"image": image})["tensor"].shape == (1, 3, 16, 24)


def test_bilinear_resize_matches_opencv_and_the_limit_holds() -> None:
    row = np.zeros((1, 2, 3), np.uint8)
    row[0, 1] = 100
    run = build("resize_normalize", {"size": [1, 4], "mean": [0, 0, 0], "std": [1, 1, 1]})
    # cv2.resize(row, (4, 1)) with INTER_LINEAR: 0, 25, 75, 100
    values = run({"image": row})["tensor"][0, 0, 0] * 255
    assert np.allclose(values, [0, 25, 75, 100], atol=1)
    with pytest.raises(InvalidRequestError, match="pixel limit"):
        build("resize_normalize")({"image": np.zeros((1, 20000, 3), np.uint8)})
