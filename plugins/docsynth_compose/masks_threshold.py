"""Mask strategy `threshold`: find the page inside a plain scanner (or desk) border.

For scans with visible margins around the sheet: Otsu's threshold separates the page from
the border, a closing fills the text holes, and the largest region becomes the page; corners
are fitted to its outline. Whether the page is the bright or the dark side is decided by the
image frame: the side that covers most of the outermost pixel ring is the border. When no
region covers at least ``min_area`` of the image the whole image is taken as the page (a scan
without border), so the strategy is safe to use on a whole source.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.geometry import page_corners, quad_mask
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Page
from docsynth_compose.masks_polygon import corners_from_mask


class ThresholdMask:
    name = "threshold"
    description = "page separated from a plain border by Otsu + largest contour (scans with margins)"
    min_area = 0.2  # smaller "pages" are taken as a failed split: whole image instead
    work_size = 512  # thresholding runs on a copy of at most this long side (speed, less noise)

    def make_mask(self, page: Page) -> Page:
        image = page.image
        h, w = image.shape[:2]
        scale = min(1.0, self.work_size / max(h, w))
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1 else image
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        gray = cv2.GaussianBlur(gray, (5, 5), 0)
        _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        ring = np.concatenate([binary[0], binary[-1], binary[:, 0], binary[:, -1]])
        if (ring > 0).mean() > 0.5:  # the border is the bright side: the page is dark
            binary = 255 - binary
        k = max(3, int(round(min(binary.shape) * 0.02)) | 1)
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        best = max(contours, key=cv2.contourArea) if contours else None
        if best is None or cv2.contourArea(best) < self.min_area * binary.size:
            return Page(image=image, mask=np.full((h, w), 255, np.uint8), corners=page_corners(w, h), words=page.words)
        region = np.zeros_like(binary)
        cv2.drawContours(region, [best], -1, 255, thickness=cv2.FILLED)
        corners = corners_from_mask(region)
        corners = corners * np.array([w / region.shape[1], h / region.shape[0]])
        # the mask is the fitted quad at full resolution: sheets are quadrilaterals, and the
        # quad is free of the threshold's ragged edge
        return Page(image=image, mask=quad_mask(corners, (h, w)), corners=corners, words=page.words)


@hookimpl
def register_mask_strategies(register):
    register(ThresholdMask())
