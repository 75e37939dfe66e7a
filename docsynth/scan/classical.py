"""The classical, non-learned page finder: the OpenCV recipe every scanner tutorial uses.

It is the baseline `docsynth evaluate --baseline classical` scores next to a learned model:

1. edges: the photo at 500 px, grey, blurred, Canny with thresholds from the median grey level,
   closed so broken page edges join; the largest contours whose polygon approximation
   (``approxPolyDP`` at 2% of the perimeter) has 4 points, is convex and covers at least 5% of
   the photo win. When no contour qualifies, Canny runs again with lower thresholds (a pale
   page on a pale table has weak edges), strictest first;
2. fallback, brightness: the page is usually the brightest large region, so an Otsu threshold
   (when the two classes differ by at least 25 grey levels), a morphological opening, the
   largest region (5-95% of the photo), its outline approximated with growing tolerance
   until 4 points remain (else its minimum-area rectangle);
3. otherwise "no document found".
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.geometry import order_corners, quad_area
from docsynth.kinds import Quad

WORK_SIZE = 500
MIN_AREA = 0.05  # share of the photo a page covers at least
MAX_AREA = 0.95  # a bright region filling the whole frame says nothing about a page's outline
MIN_CONTRAST = 25  # grey levels between the bright region and the rest


def find_page(image: np.ndarray) -> Quad:
    """The page quad in ``image`` (BGR) in pixel-edge coordinates, or a Quad with no corners."""
    h, w = image.shape[:2]
    scale = min(1.0, WORK_SIZE / max(h, w))
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    min_area = MIN_AREA * grey.size
    for finder, confidence in ((_from_edges, 0.9), (_from_brightness, 0.6)):
        pts = finder(grey, min_area)
        if pts is not None:
            # contour points are pixel indices of the small image -> edge coordinates of the photo
            corners = (pts.astype(np.float64) + 0.5) * (w / small.shape[1], h / small.shape[0])
            return Quad(order_corners(corners), confidence)
    return Quad(None, 0.0, "classical: no four-sided outline found")


CANNY_LEVELS = ((0.66, 1.33), (0.33, 0.66), (0.1, 0.3))  # x median grey level, strictest first


def _from_edges(grey: np.ndarray, min_area: float) -> np.ndarray | None:
    median = float(np.median(grey))
    for lo, hi in CANNY_LEVELS:
        edges = cv2.Canny(grey, int(lo * median), int(min(255, hi * median)))
        edges = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:10]:
            approx = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
            if len(approx) == 4 and cv2.isContourConvex(approx) and quad_area(approx[:, 0]) >= min_area:
                return approx[:, 0]
    return None


def _from_brightness(grey: np.ndarray, min_area: float) -> np.ndarray | None:
    level, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright, dark = grey[binary > 0], grey[binary == 0]
    if not len(bright) or not len(dark) or bright.mean() - dark.mean() < MIN_CONTRAST:
        return None  # no bright region stands out: a blank frame, not a page
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((7, 7), np.uint8))
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    region = cv2.convexHull(max(contours, key=cv2.contourArea))
    if not min_area <= cv2.contourArea(region) <= MAX_AREA * grey.size:
        return None
    perimeter = cv2.arcLength(region, True)
    for eps in (0.02, 0.03, 0.05, 0.08, 0.12):
        approx = cv2.approxPolyDP(region, eps * perimeter, True)
        if len(approx) == 4:
            return approx[:, 0]
        if len(approx) < 4:
            break
    return cv2.boxPoints(cv2.minAreaRect(region))
