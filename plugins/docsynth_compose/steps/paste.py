"""Putting a page into the frame: warp only the region it covers, from a page already shrunk
close to its size in the photo, and blend it with a soft contact shadow.

Two things make this fast without changing results:

- the page (with its mask as a 4th channel) is pre-shrunk (Gaussian pyramid) to a power of
  sqrt(2) no smaller than its size in the frame, and these levels are cached for the page
  object: a document's composites are consecutive, so each level is made once per document.
  Shrinking first also avoids the aliasing (moire in text) a linear warp makes when minifying.
- the warp writes only the bounding box of the page in the frame (the ROI), not the frame.

The homography ``h_edge`` always maps the ORIGINAL page's edge coordinates to the frame's, so
corners are exact whatever level is used.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import cv2
import numpy as np

from docsynth.geometry import apply_homography, page_corners, quad_area, to_center_homography
from docsynth.kinds import Page

from .paper import PageWarp

_CACHE: list[tuple[weakref.ref, dict[int, np.ndarray]]] = []  # (page image, levels), newest last
# Bytes of levels kept: the current document's page, the sheets made from it (turned, mirrored,
# plain; see the realistic compositor's ``_sheet``) and the previous document's, for pages of
# about 1000 x 700 px (the newest entry is always kept, whatever its size).
_CACHE_BYTES = 64 * 2**20


def page_rgba(page: Page, level: int) -> np.ndarray:
    """The page image with its mask as alpha, shrunk by sqrt(2)**level (cached per page image;
    the cache only saves time, the result is the same either way)."""
    levels = None
    for ref, lv in _CACHE:
        if ref() is page.image:
            levels = lv
            break
    if levels is None:
        mask = page.mask if page.mask is not None else np.full(page.image.shape[:2], 255, np.uint8)
        base = cv2.cvtColor(page.image, cv2.COLOR_BGR2BGRA)  # much faster than np.dstack
        base[..., 3] = mask
        levels = {0: base}
        _CACHE.append((weakref.ref(page.image), levels))
        _trim_cache()
    if level not in levels:
        if level == 1:  # 1/sqrt(2): linear is close enough to area averaging at this factor
            h, w = levels[0].shape[:2]
            levels[1] = cv2.resize(levels[0], (max(2, round(w / 2 ** 0.5)), max(2, round(h / 2 ** 0.5))),
                                   interpolation=cv2.INTER_LINEAR)
        else:  # half of two levels up, with a Gaussian pyramid step (filtered, no aliasing)
            levels[level] = cv2.pyrDown(page_rgba(page, level - 2))
    return levels[level]


def _trim_cache() -> None:
    """Drop the oldest pages' levels (and those of pages no longer alive) beyond ``_CACHE_BYTES``."""
    _CACHE[:] = [entry for entry in _CACHE if entry[0]() is not None]
    total = sum(level.nbytes for _, levels in _CACHE for level in levels.values())
    while total > _CACHE_BYTES and len(_CACHE) > 1:
        _, gone = _CACHE.pop(0)
        total -= sum(level.nbytes for level in gone.values())


def choose_level(page_w: int, page_h: int, quad_area: float) -> int:
    """The smallest level still at least as large as the page appears in the frame."""
    scale = np.sqrt(max(quad_area, 1.0) / (page_w * page_h))
    if scale >= 1:
        return 0
    return int(np.floor(-2 * np.log2(scale)))


@dataclass
class Warped:
    """A page warped into a region of the frame."""

    x0: int
    y0: int
    rgba: np.ndarray  # uint8 (h, w, 4): colour and alpha (the warped mask)
    bend: np.ndarray | None = None  # curl/fold: local bend angle per pixel (for shading)
    crease: np.ndarray | None = None  # fold: distance to the crease in page pixels


def outline(page_w: int, page_h: int, warp: PageWarp | None, n: int = 12) -> np.ndarray:
    """Points along the page border (page edge coordinates), warped when there is a warp."""
    c = page_corners(page_w, page_h)
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    pts = np.concatenate([c[k] + (c[(k + 1) % 4] - c[k]) * t for k in range(4)])
    return warp.forward(pts) if warp is not None else pts


def _pixel_centres(w: int, h: int) -> np.ndarray:
    """(h, w, 2) float32 (x + 0.5, y + 0.5) of every pixel of a w x h region."""
    xs = np.arange(w, dtype=np.float32) + 0.5
    ys = np.arange(h, dtype=np.float32) + 0.5
    return cv2.merge([np.broadcast_to(xs, (h, w)).copy(), np.broadcast_to(ys[:, None], (h, w)).copy()])


def warp_page(page: Page, h_edge: np.ndarray, out_w: int, out_h: int, warp: PageWarp | None = None,
              pad: int = 2) -> Warped | None:
    """Warp page + mask into the frame region they cover; None when the page is off-frame."""
    ph, pw = page.image.shape[:2]
    border = apply_homography(h_edge, outline(pw, ph, warp))
    lo = np.floor(border.min(axis=0)).astype(int) - pad
    hi = np.ceil(border.max(axis=0)).astype(int) + pad
    x0, y0 = max(0, lo[0]), max(0, lo[1])
    x1, y1 = min(out_w, hi[0]), min(out_h, hi[1])
    if x1 <= x0 or y1 <= y0:
        return None
    level = choose_level(pw, ph, quad_area(apply_homography(h_edge, page_corners(pw, ph))))
    src = page_rgba(page, level)
    sh, sw = src.shape[:2]
    to_level = np.diag([sw / pw, sh / ph, 1.0])
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    roi_w, roi_h = x1 - x0, y1 - y0
    if warp is None:
        h_roi = shift @ h_edge @ np.linalg.inv(to_level)
        out = cv2.warpPerspective(src, to_center_homography(h_roi), (roi_w, roi_h), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return Warped(x0, y0, out)
    # Non-planar page: every ROI pixel goes back through the homography into the warp's (s, t)
    # frame (one projective map, in OpenCV), through the paper's bend (a function of s), and
    # on to the page level's pixels (one affine map) for a single remap.
    plane_to_st = warp.to_st()
    st = cv2.perspectiveTransform(_pixel_centres(roi_w, roi_h), plane_to_st @ np.linalg.inv(shift @ h_edge))
    s2, t2 = cv2.split(st)
    s, t, bend = warp.unbend(s2, t2)
    to_map = (to_level @ np.linalg.inv(plane_to_st))[:2] - np.array([[0, 0, 0.5], [0, 0, 0.5]])
    maps = cv2.transform(cv2.merge([s, t]), to_map)
    out = cv2.remap(src, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crease = np.abs(s2) if warp.kind == "fold" else None
    return Warped(x0, y0, out, bend.astype(np.float32), crease)


def composite(background: np.ndarray, warped: Warped, *, tint: np.ndarray | None = None,
              shadow: tuple[float, float, float, float] | None = None, warp: PageWarp | None = None,
              page_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Blend a warped page over ``background`` (in place on a copy). Returns (image, page mask).

    ``tint``: per-channel gain of the paper (its colour under this light); ``shadow``:
    (dx, dy, blur, strength) of the contact shadow the sheet casts on the table; curl and fold
    shading come from ``warp`` and the per-pixel bend angle."""
    image = background.copy()
    h, w = warped.rgba.shape[:2]
    y0, x0 = warped.y0, warped.x0
    view = image[y0:y0 + h, x0:x0 + w]
    a8 = np.ascontiguousarray(warped.rgba[..., 3])
    behind = view
    if shadow is not None:
        dx, dy, blur, strength = shadow
        # a soft shadow is blurred at a quarter or half resolution (where its blur is wide
        # enough for the difference not to show), then brought back to the frame
        f = 4 if blur > 4 and min(h, w) > 16 else 2 if blur > 1.5 and min(h, w) > 8 else 1
        small = a8 if f == 1 else cv2.resize(a8, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        m = np.float32([[1, 0, dx / f], [0, 1, dy / f]])
        small = cv2.warpAffine(small, m, small.shape[1::-1], borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        small = cv2.GaussianBlur(small, (0, 0), max(0.5, blur) / f)
        cast = small if f == 1 else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        # the table under the shadow keeps 1 - strength * cast of its light (in 8 bits: the
        # shadow is soft and the photo is 8-bit anyway)
        keep = cv2.convertScaleAbs(cast, alpha=-strength, beta=255)
        behind = cv2.multiply(view, cv2.merge([keep, keep, keep]), scale=1 / 255)
    colour = cv2.cvtColor(warped.rgba, cv2.COLOR_BGRA2BGR)
    tint = np.ones(3, np.float32) if tint is None else np.asarray(tint, np.float32)
    if warp is not None and warped.bend is not None:
        gain = warp.shade(warped.bend).astype(np.float32)
        if warped.crease is not None and warp.crease > 0:
            width = max(0.8, 1.5 / max(page_scale, 1e-3))
            gain *= 1 - warp.crease * np.exp(-(warped.crease / width) ** 2)
        colour = cv2.multiply(colour, cv2.merge([gain * tint[0], gain * tint[1], gain * tint[2]]), dtype=cv2.CV_8U)
    elif not np.allclose(tint, 1):
        colour = cv2.transform(colour, np.diag(tint).astype(np.float32))
    # Paper is opaque: inside the page the colour replaces the table, outside the table stays
    # (shadowed); only the anti-aliased rim (0 < alpha < 255) is mixed, pixel by pixel.
    if behind is not view:
        view[:] = behind
    cv2.copyTo(colour, cv2.compare(a8, 255, cv2.CMP_EQ), view)  # in place, into the frame
    rim = cv2.findNonZero(cv2.inRange(a8, 1, 254))
    if rim is not None:
        xs, ys = rim.reshape(-1, 2).T
        a = a8[ys, xs].astype(np.float32)[:, None] * (1 / 255)
        view[ys, xs] = (colour[ys, xs] * a + behind[ys, xs] * (1 - a) + 0.5).astype(np.uint8)
    mask = np.zeros(background.shape[:2], np.uint8)
    mask[y0:y0 + h, x0:x0 + w] = cv2.threshold(a8, 127, 255, cv2.THRESH_BINARY)[1]
    return image, mask
