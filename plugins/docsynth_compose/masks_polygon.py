"""Mask strategy `polygon`: the page outline comes from the source's annotation.

For photographed pages (SmartDoc frames, annotated photos) where only part of the image is
the page. The source gives corners, a mask, or both (see the `folder` source's sidecar files):
corners alone are rasterised, a mask alone gets corners fitted to its outline, so prepared
pages always carry both and can be composited like scans.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.geometry import order_corners, quad_mask
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Page


def corners_from_mask(mask: np.ndarray) -> np.ndarray | None:
    """Four corners (pixel-edge coordinates) of the largest white region, or None if empty."""
    contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(contour)
    quad = None
    for frac in (0.01, 0.02, 0.04, 0.08):  # the smallest simplification that leaves 4 vertices
        approx = cv2.approxPolyDP(hull, frac * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            quad = approx.reshape(4, 2).astype(np.float64)
            break
    if quad is None:
        quad = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float64)
    # contour points are pixel indices of the outermost page pixels; their outer edges lie
    # half a pixel further out, which the centre-to-edge shift approximates
    centre = quad.mean(axis=0)
    quad = quad + 0.5 + 0.5 * np.sign(quad - centre)
    h, w = mask.shape[:2]
    quad[:, 0] = np.clip(quad[:, 0], 0, w)
    quad[:, 1] = np.clip(quad[:, 1], 0, h)
    return order_corners(quad)


class PolygonMask:
    name = "polygon"
    description = "page mask and corners from the source's annotation (corners, polygon or mask file)"

    def make_mask(self, page: Page) -> Page:
        h, w = page.image.shape[:2]
        corners = None if page.corners is None else np.asarray(page.corners, dtype=np.float64).reshape(4, 2)
        if page.mask is not None:
            mask = np.where(page.mask > 127, 255, 0).astype(np.uint8)
            if corners is None:
                corners = corners_from_mask(mask)
            if corners is None:
                raise DocsynthError("polygon mask: the page's mask is empty; fix its annotation")
            return Page(image=page.image, mask=mask, corners=corners, words=page.words)
        if corners is None:
            raise DocsynthError("polygon mask: this page has no outline annotation; use a source that provides "
                                "corners or masks (e.g. folder with <name>.json), or the fullpage/threshold strategy")
        return Page(image=page.image, mask=quad_mask(corners, (h, w)), corners=corners, words=page.words)


@hookimpl
def register_mask_strategies(register):
    register(PolygonMask())
