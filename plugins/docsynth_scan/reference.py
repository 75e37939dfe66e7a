"""Post-processor `reference`: the reference app's contour procedure, kept as a baseline.

As the reference scanner did it: the page map resized to 384x384, argmax (probability > 0.5),
padded by half its size on every side, Canny + 5x5 elliptic dilation, the largest contour,
``approxPolyDP`` at 2% of its perimeter, back to photo pixels; when a corner falls outside the
photo, the minimum-area rectangle around the points replaces them (the reference then padded
the photo so the warp could reach them; :func:`docsynth.scan.scanner.flatten` fills outside pixels with
black instead, the same result). Points are ordered TL, TR, BR, BL by the reference's rule
(min/max of x+y and y-x). It has no notion of "no page": any contour gives a quad.

Known weaknesses it keeps on purpose (it is the baseline): the dilated edge band puts the quad
about 2.5 cells of 384 outside the mask, and a contour that does not approximate to 4 points
gives whatever 4 of its points the ordering rule picks.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from docsynth.geometry import mask_iou, quad_mask
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Quad

SIZE = 384


def order_points_reference(points: np.ndarray) -> np.ndarray:
    """TL = min x+y, BR = max x+y, TR = min y-x, BL = max y-x (the reference's rule)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    s = pts.sum(1)
    diff = pts[:, 1] - pts[:, 0]
    return np.array([pts[np.argmin(s)], pts[np.argmin(diff)], pts[np.argmax(s)], pts[np.argmax(diff)]])


class ReferencePost:
    name = "reference"
    options: dict = {}  # the reference recipe has nothing to set
    description = "reference app: 384 px argmax, Canny + dilate, largest contour, approxPolyDP 2%"

    def find_quad(self, page_prob: np.ndarray, image: np.ndarray, options: dict[str, Any],
                  extra: dict[str, Any]) -> Quad:
        h, w = page_prob.shape
        small = cv2.resize(page_prob, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        mask = (small > 0.5).astype(np.uint8) * 255
        half = SIZE // 2
        padded = np.zeros((2 * SIZE, 2 * SIZE), np.uint8)
        padded[half:half + SIZE, half:half + SIZE] = mask
        edges = cv2.Canny(padded, 225, 255)
        edges = cv2.dilate(edges, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        if not contours:
            return Quad(None, 0.0, "reference: no page contour")
        page = max(contours, key=cv2.contourArea)
        approx = cv2.approxPolyDP(page, 0.02 * cv2.arcLength(page, True), True)[:, 0, :].astype(np.float64)
        if len(approx) < 4:
            return Quad(None, 0.0, f"reference: contour approximates to {len(approx)} points")
        # padded cell index -> photo pixel-edge coordinates (cell centre)
        pts = (approx - half + 0.5) * (w / SIZE, h / SIZE)
        if not ((pts >= 0).all() and (pts[:, 0] <= w).all() and (pts[:, 1] <= h).all()):
            pts = cv2.boxPoints(cv2.minAreaRect(pts.astype(np.float32).reshape(-1, 1, 2))).astype(np.float64)
        corners = order_points_reference(pts)
        # confidence: how well the quad matches the predicted page, at the 384 working size
        iou = mask_iou(quad_mask(corners * (SIZE / w, SIZE / h), (SIZE, SIZE)), mask)
        return Quad(corners, float(iou), "" if len(approx) == 4 else f"reference: {len(approx)}-point contour")


@hookimpl
def register_postprocessors(register):
    register(ReferencePost())
