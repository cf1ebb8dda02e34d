"""Plane geometry for text detection in numpy: connected regions of a binary map, convex hulls,
minimum-area rectangles and corner order.

These stand in for OpenCV's findContours, minAreaRect and boxPoints, which the reference OCR
post-processing uses and the appliance does not ship.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def dilate_2x2(mask: np.ndarray) -> np.ndarray:
    """OpenCV's dilate with a 2x2 kernel of ones (anchor at (1, 1)): a pixel is set when it or
    its upper, left or upper-left neighbour is, so regions grow one pixel right and down."""
    down = mask.copy()
    down[1:, :] |= mask[:-1, :]
    out = down.copy()
    out[:, 1:] |= down[:, :-1]
    return out


@dataclass(frozen=True)
class Regions:
    """The 8-connected regions of a binary map as horizontal runs of set pixels.

    Run i covers row `rows[i]`, columns `starts[i]`..`ends[i]` (inclusive). Regions are
    numbered in raster order of their first pixel; `order[offsets[r]:offsets[r + 1]]` are the
    runs of region r, top to bottom.
    """

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    order: np.ndarray
    offsets: np.ndarray

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Each region's bounding-box extent in pixel centres: (width - 1, height - 1)."""
        if self.count == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty
        heads = self.offsets[:-1]
        rows, starts, ends = self.rows[self.order], self.starts[self.order], self.ends[self.order]
        x_span = np.maximum.reduceat(ends, heads) - np.minimum.reduceat(starts, heads)
        y_span = np.maximum.reduceat(rows, heads) - rows[heads]
        return x_span, y_span

    def outline(self, region: int) -> list[tuple[float, float]]:
        """The leftmost and rightmost pixel (x, y) of each of the region's rows, top to bottom
        (left first in a row): all its convex hull can need, already sorted by (y, x)."""
        runs = self.order[self.offsets[region] : self.offsets[region + 1]]
        rows = self.rows[runs]
        heads = np.flatnonzero(np.diff(rows, prepend=-1))
        left = np.minimum.reduceat(self.starts[runs], heads).tolist()
        right = np.maximum.reduceat(self.ends[runs], heads).tolist()
        points: list[tuple[float, float]] = []
        for y, x0, x1 in zip(rows[heads].tolist(), left, right, strict=True):
            points.append((x0, y))
            if x1 != x0:
                points.append((x1, y))
        return points


def connected_regions(mask: np.ndarray) -> Regions:
    """Label the 8-connected regions of a 2-D boolean map.

    Works on runs, not pixels: runs come from one vectorised diff per row, runs of consecutive
    rows that overlap or touch diagonally are joined, and a union-find over runs (vectorised
    hooking and pointer jumping) merges them, so the cost follows the number of runs.
    """
    height, width = mask.shape
    padded = np.zeros((height, width + 2), bool)
    padded[:, 1:-1] = mask
    # Set and clear transitions alternate along each padded row: starts, then ends + 1.
    changes = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    rows, starts = np.divmod(changes[0::2], width + 1)
    ends = changes[1::2] - rows * (width + 1) - 1
    count = len(rows)
    if count == 0:
        empty = np.zeros(0, np.int64)
        return Regions(empty, empty, empty, empty, np.zeros(1, np.int64))
    # Keys order runs by (row, column); rows are `stride` apart so no run of another row falls
    # between the bounds below.
    stride = width + 2
    start_keys = rows * stride + starts
    end_keys = rows * stride + ends
    above = (rows - 1) * stride
    first = np.searchsorted(end_keys, above + starts - 1, side="left")
    last = np.searchsorted(start_keys, above + ends + 1, side="right")
    links = np.maximum(last - first, 0)
    below = np.repeat(np.arange(count), links)
    within = np.arange(int(links.sum())) - np.repeat(np.cumsum(links) - links, links)
    upper = np.repeat(first, links) + within
    roots = _union(count, upper, below)
    _, labels = np.unique(roots, return_inverse=True)
    order = np.argsort(labels, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(labels))])
    return Regions(rows, starts, ends, order, offsets)


def _union(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each node's root (its component's smallest index) for the edges left[i]-right[i]."""
    parent = np.arange(count)
    while True:
        a, b = parent[left], parent[right]
        low = np.minimum(a, b)
        hooked = parent.copy()
        np.minimum.at(hooked, a, low)
        np.minimum.at(hooked, b, low)
        while True:  # pointer jumping until every node points at a root
            jumped = hooked[hooked]
            if np.array_equal(jumped, hooked):
                break
            hooked = jumped
        if np.array_equal(hooked, parent):
            return parent
        parent = hooked


def convex_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull's vertices (Andrew's monotone chain) of points sorted by (y, x) or by
    (x, y), duplicates allowed; collinear points are left out."""
    if len(points) <= 2:
        return list(dict.fromkeys(points))

    def chain(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for px, py in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (py - ay) - (by - ay) * (px - ax) > 0:
                    break
                out.pop()
            out.append((px, py))
        return out

    return list(dict.fromkeys(chain(points)[:-1] + chain(points[::-1])[:-1]))


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle: centre, unit axis `u` (its `width` runs along u, its `height` along
    the perpendicular (-u_y, u_x))."""

    cx: float
    cy: float
    ux: float
    uy: float
    width: float
    height: float

    @property
    def short_side(self) -> float:
        return min(self.width, self.height)

    def corners(self) -> np.ndarray:
        """[4, 2] in cyclic order."""
        wx, wy = self.ux * self.width / 2, self.uy * self.width / 2
        hx, hy = -self.uy * self.height / 2, self.ux * self.height / 2
        cx, cy = self.cx, self.cy
        return np.array(
            [
                (cx - wx - hx, cy - wy - hy),
                (cx + wx - hx, cy + wy - hy),
                (cx + wx + hx, cy + wy + hy),
                (cx - wx + hx, cy - wy + hy),
            ]
        )

    def grown(self, distance: float) -> Rect:
        """The rectangle with every side pushed out by `distance`."""
        return Rect(
            self.cx,
            self.cy,
            self.ux,
            self.uy,
            self.width + 2 * distance,
            self.height + 2 * distance,
        )


def min_area_rect(points: list[tuple[float, float]]) -> Rect:
    """The smallest-area rectangle around points sorted by (y, x) (rotating calipers: one side
    lies on a convex hull edge), as cv2.minAreaRect gives up to float rounding."""
    hull = np.asarray(convex_hull(points), np.float64)
    count = len(hull)
    if count == 1:
        return Rect(float(hull[0, 0]), float(hull[0, 1]), 1.0, 0.0, 0.0, 0.0)
    edges = np.concatenate([hull[1:], hull[:1]]) - hull
    u = edges / np.hypot(edges[:, 0], edges[:, 1])[:, None]
    axes = np.concatenate([u, u[:, ::-1] * (-1.0, 1.0)])  # each edge's u, then v = (-uy, ux)
    projections = hull @ axes.T
    lows, highs = projections.min(axis=0), projections.max(axis=0)
    spans = highs - lows
    best = int(np.argmin(spans[:count] * spans[count:]))
    ux, uy = float(u[best, 0]), float(u[best, 1])
    s_mid = float(lows[best] + highs[best]) / 2
    t_mid = float(lows[count + best] + highs[count + best]) / 2
    return Rect(
        ux * s_mid - uy * t_mid,
        uy * s_mid + ux * t_mid,
        ux,
        uy,
        float(spans[best]),
        float(spans[count + best]),
    )


def order_clockwise(quad: np.ndarray) -> np.ndarray:
    """A quadrilateral's corners clockwise on screen (y down) from the top-left one: the corner
    with the smallest x + y, as the reference orders boxes (on a tie, the upper one)."""
    points = quad.tolist()
    twice_area = sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
    )
    if twice_area < 0:
        points.reverse()
    first = min(range(4), key=lambda i: (points[i][0] + points[i][1], points[i][1]))
    return np.array(points[first:] + points[:first], dtype=quad.dtype)


def reading_order(top_left: np.ndarray, tolerance: float) -> list[int]:
    """Indices of boxes in reading order, by their top-left corners: sorted by (y, x), then a
    box moves before its predecessors on the same line (|dy| < tolerance) that start right of
    it, as the reference's sorted_boxes does."""
    order = sorted(range(len(top_left)), key=lambda i: (top_left[i, 1], top_left[i, 0]))
    for i in range(len(order) - 1):
        j = i
        while j >= 0:
            here, after = top_left[order[j]], top_left[order[j + 1]]
            if abs(after[1] - here[1]) < tolerance and after[0] < here[0]:
                order[j], order[j + 1] = order[j + 1], order[j]
                j -= 1
            else:
                break
    return order


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    score_threshold: float,
    max_detections: int,
) -> np.ndarray:
    """Greedy non-maximum suppression of [N, 4] (x1, y1, x2, y2) boxes: the rows kept, best
    first (on equal scores the lower row first); a box overlapping a kept one by IoU above
    `iou_threshold` goes, and so does one scoring below `score_threshold`."""
    x1, y1, x2, y2 = boxes.T.astype(np.float64)
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    candidates = np.flatnonzero(scores >= score_threshold)
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
    kept: list[int] = []
    while len(candidates) and len(kept) < max_detections:
        best, rest = candidates[0], candidates[1:]
        kept.append(int(best))
        width = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        height = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        overlap = np.maximum(width, 0) * np.maximum(height, 0)
        union = areas[best] + areas[rest] - overlap
        iou = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        candidates = rest[iou <= iou_threshold]
    return np.asarray(kept, np.int64)
