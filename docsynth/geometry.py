"""Quad geometry shared by compositors, exporters, scanning and evaluation.

Corners are in pixel-edge coordinates: the image spans [0, W] x [0, H] and pixel (row i,
column j) is the unit square whose centre is (j + 0.5, i + 0.5). OpenCV's warps use pixel
centres at integer coordinates, hence :func:`to_center_homography`.
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 8  # sub-pixel bits for cv2.fillPoly


def page_corners(width: float, height: float) -> np.ndarray:
    """Corners TL, TR, BR, BL of an upright page of this size."""
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)


def to_center_homography(h_edge: np.ndarray) -> np.ndarray:
    """Convert a homography between edge coordinates into one OpenCV's warps can use."""
    shift_in = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]], dtype=np.float64)
    shift_out = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]], dtype=np.float64)
    return shift_out @ h_edge @ shift_in


def apply_homography(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(pts, h).reshape(-1, 2)


def quad_mask(corners: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a quad (edge coordinates) into a 0/255 mask of ``shape`` (H, W).

    A pixel is page when at least half of its area is inside the quad: the polygon is drawn
    at 4x resolution and area-averaged, since cv2.fillPoly alone also fills every pixel the
    outline touches (an 80x60 quad would cover ~4,940 pixels instead of 4,800)."""
    ss = 4
    h, w = shape
    big = np.zeros((h * ss, w * ss), dtype=np.uint8)
    pts = np.asarray(corners, dtype=np.float64) * ss - 0.5
    cv2.fillPoly(big, [np.round(pts * (1 << _SHIFT)).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    coverage = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return np.where(coverage >= 128, 255, 0).astype(np.uint8)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(a, b).sum() / union)


def order_corners(points: np.ndarray) -> np.ndarray:
    """Order 4 points clockwise (y down) starting from the one nearest the top-left (min x+y)."""
    pts = np.asarray(points, dtype=np.float64).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise on screen because y points down
    start = int(np.argmin(pts.sum(axis=1)))
    return np.roll(pts, -start, axis=0)


def quad_area(corners: np.ndarray) -> float:
    x, y = np.asarray(corners, dtype=np.float64).T
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def is_inside(corners: np.ndarray, width: int, height: int) -> bool:
    c = np.asarray(corners)
    return bool((c[:, 0] >= 0).all() and (c[:, 0] <= width).all()
                and (c[:, 1] >= 0).all() and (c[:, 1] <= height).all())


# ---------------------------------------------------------------------------------------------
# Polygons
# ---------------------------------------------------------------------------------------------


def polygon_area(poly: np.ndarray) -> float:
    """Signed area (shoelace); positive when the vertices run clockwise on screen (y down)."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The z component of (a - o) x (b - o): positive when o, a, b turn clockwise on screen."""
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def segments_cross(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    """True when the closed segments p1p2 and q1q2 share a point."""
    d1, d2 = cross(q1, q2, p1), cross(q1, q2, p2)
    d3, d4 = cross(p1, p2, q1), cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True

    def on(a, b, c):  # c on segment ab, given collinear
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return ((d1 == 0 and on(q1, q2, p1)) or (d2 == 0 and on(q1, q2, p2))
            or (d3 == 0 and on(p1, p2, q1)) or (d4 == 0 and on(p1, p2, q2)))


def is_simple_quad(quad: np.ndarray) -> bool:
    """A proper quadrilateral: finite, non-zero area, opposite sides do not meet."""
    q = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
    if q.shape != (4, 2) or not np.isfinite(q).all() or abs(polygon_area(q)) < 1e-9:
        return False
    return not (segments_cross(q[0], q[1], q[2], q[3]) or segments_cross(q[1], q[2], q[3], q[0]))
