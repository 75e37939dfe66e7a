"""Compositor `homography`: a page placed on a background by one random homography.

Options (all optional): ``size`` [width, height] of the output (default 480x640),
``landscape_p`` chance to swap to landscape, ``area`` [min, max] share of the frame the page
covers, ``rotation`` max in-plane degrees, ``perspective`` max corner jitter as a share of the
page size, ``keep_inside`` keep all corners in the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.config import SHARE, F
from docsynth.generate.pagemap import Homography, page_map
from docsynth.geometry import apply_homography, page_corners, to_center_homography
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Page, Sample
from docsynth.options import Options


def cover_crop(image: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Resize ``image`` to cover (width, height) and take a random crop of exactly that size."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    if scale < 0.5:  # shrink big photos with area averaging first; linear warps would alias
        f = 2 * scale
        image = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
        scale = max(width / w, height / h)
    nw, nh = max(width, int(np.ceil(w * scale))), max(height, int(np.ceil(h * scale)))
    x0 = int(rng.integers(0, nw - width + 1))
    y0 = int(rng.integers(0, nh - height + 1))
    # Crop first in source pixels, then resize only that window: same result, less work.
    sx0, sy0 = int(x0 / scale), int(y0 / scale)
    sx1, sy1 = min(w, int(np.ceil((x0 + width) / scale)) + 1), min(h, int(np.ceil((y0 + height) / scale)) + 1)
    window = image[sy0:sy1, sx0:sx1]
    m = np.array([[scale, 0, sx0 * scale - x0], [0, scale, sy0 * scale - y0]], dtype=np.float64)
    m[:, 2] += 0.5 * (scale - 1)  # pixel-centre convention
    return cv2.warpAffine(window, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def random_quad(rng: np.random.Generator, page_w: int, page_h: int, out_w: int, out_h: int,
                area: tuple[float, float], rotation: float, perspective: float,
                keep_inside: bool) -> np.ndarray:
    """Destination corners (TL, TR, BR, BL) of the page in the output frame."""
    for _ in range(20):
        target = rng.uniform(*area) * out_w * out_h
        scale = np.sqrt(target / (page_w * page_h))
        w, h = page_w * scale, page_h * scale
        quad = page_corners(w, h) - (w / 2, h / 2)
        quad += rng.uniform(-perspective, perspective, size=(4, 2)) * (w, h)
        theta = np.deg2rad(rng.uniform(-rotation, rotation))
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        quad = quad @ rot.T
        lo, hi = quad.min(axis=0), quad.max(axis=0)
        span = hi - lo
        if keep_inside and (span[0] > out_w or span[1] > out_h):
            continue
        if keep_inside:
            cx = rng.uniform(-lo[0], out_w - hi[0])
            cy = rng.uniform(-lo[1], out_h - hi[1])
        else:
            cx, cy = rng.uniform(0, out_w), rng.uniform(0, out_h)
        return quad + (cx, cy)
    # Could not fit: centre a smaller, unrotated page.
    s = 0.8 * min(out_w / page_w, out_h / page_h)
    w, h = page_w * s, page_h * s
    return page_corners(w, h) + ((out_w - w) / 2, (out_h - h) / 2)


def paste_page(page: Page, background: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp page and mask onto ``background`` so the page's corners land on ``quad``.

    Returns (image, mask, homography page->frame in edge coordinates)."""
    ph, pw = page.image.shape[:2]
    src = page.corners if page.corners is not None else page_corners(pw, ph)
    h_edge = cv2.getPerspectiveTransform(src.astype(np.float32), quad.astype(np.float32)).astype(np.float64)
    out_h, out_w = background.shape[:2]
    image = background.copy()
    mask = np.zeros((out_h, out_w), np.uint8)
    # Only the page's bounding box in the frame is warped and blended (same values as a
    # full-frame warp: the shifted homography samples the same source points).
    quad_pts = apply_homography(h_edge, page_corners(pw, ph))
    x0, y0 = np.maximum(np.floor(quad_pts.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(quad_pts.max(axis=0)).astype(int) + 1, (out_w, out_h))
    if x1 <= x0 or y1 <= y0:
        return image, mask, h_edge
    rgba = cv2.cvtColor(page.image, cv2.COLOR_BGR2BGRA)  # one warp for colour and mask keeps them aligned
    rgba[..., 3] = page.mask
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    warped = cv2.warpPerspective(rgba, to_center_homography(shift @ h_edge), (x1 - x0, y1 - y0),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = warped[..., 3:4].astype(np.float32) * (1 / 255)
    roi = image[y0:y1, x0:x1]
    roi[:] = (warped[..., :3] * alpha + roi * (1 - alpha)).astype(np.uint8)
    mask[y0:y1, x0:x1] = np.where(warped[..., 3] >= 128, 255, 0).astype(np.uint8)
    return image, mask, h_edge


class HomographyCompositor:
    name = "homography"
    description = "random perspective, scale, rotation and placement of the page on a background"
    options = {
        "size": F(list, [480, 640], "[width, height] of the output"),
        "landscape_p": F(float, 0.25, "chance to swap to landscape", **SHARE),
        "area": F(list, [0.2, 0.7], "[min, max] share of the frame the page covers"),
        "rotation": F(float, 20.0, "max in-plane rotation, degrees", low=0, high=180),
        "perspective": F(float, 0.1, "max corner jitter as a share of the page size", **SHARE),
        "keep_inside": F(bool, True, "keep all corners in the frame"),
    }

    def compose(self, page: Page, background: np.ndarray, rng: np.random.Generator,
                options: Options) -> Sample:
        out_w, out_h = (int(v) for v in options.size)
        if rng.random() < options.landscape_p:
            out_w, out_h = out_h, out_w
        bg = cover_crop(background, out_w, out_h, rng)
        ph, pw = page.image.shape[:2]
        quad = random_quad(rng, pw, ph, out_w, out_h, tuple(options.area), float(options.rotation),
                           float(options.perspective), options.keep_inside)
        image, mask, h_edge = paste_page(page, bg, quad)
        src = page.corners if page.corners is not None else page_corners(pw, ph)
        corners = apply_homography(h_edge, src)
        return Sample(image=image, mask=mask, corners=corners,
                      geometry=page_map(page, Homography(h_edge, name="homography")))


@hookimpl
def register_compositors(register):
    register(HomographyCompositor())
