"""Sheets around the page that look like the page: the scenes where a scanner takes the wrong
outline.

- :func:`larger_sheet`: the page lies on a slightly larger sheet, notebook or book cover of a
  similar colour (2-8% larger, a little offset and turned), so the outline of the sheet below
  runs just outside the page's own.
- :func:`stacked_sheets`: one or two sheets under the page, sticking out of it (or, ``tight``,
  peeking out by a few pixels, as in a pile of paper);
- :func:`other_document`: another, smaller document elsewhere on the table;
- :func:`book_spread`: the page is one page of an open booklet or book: the facing page joins
  it at the gutter (same plane, same camera), a stack of page edges shows beyond its outer edge,
  a cover may stick out around both, and the gutter is shaded. The label stays the one page.

All draw into the frame *before* the page is pasted (everything here lies under or beside the
page) and return the other sheets' corners as ``extra["instances"]`` entries (role ``under`` or
``facing``, ``other``). They take the compositor's ``paste(sheet, image, h_edge, warp=None)`` and ``sheet(page)``
so the other sheets get the same paper look, shadow and level of detail as the page;
:class:`SheetMemo` makes those sheets from the page.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from docsynth.geometry import apply_homography, page_corners, quad_area
from docsynth.kinds import Page

from .camera_model import camera_quad
from .paper import PageWarp, gutter_warp

Paste = Callable[..., np.ndarray]  # (sheet, frame, h_edge, warp=None) -> frame


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    return cv2.getPerspectiveTransform(np.asarray(src, np.float32), np.asarray(dst, np.float32)).astype(np.float64)


PLAIN_SIDE = 512  # a plain sheet's longer side in pixels: its texture is smooth, so more is wasted


def _plain(page: Page, colour: np.ndarray, rng: np.random.Generator) -> Page:
    """A sheet of one colour with a faint texture (a cover, the back of a notebook), in the
    page's proportions; paste it with :func:`_onto` (it is smaller than the page)."""
    h, w = page.image.shape[:2]
    small = rng.normal(0, 1, (max(2, h // 32), max(2, w // 32), 1)).astype(np.float32)
    scale = min(1.0, PLAIN_SIDE / max(h, w))
    sw, sh = max(2, round(w * scale)), max(2, round(h * scale))
    grain = cv2.resize(small, (sw, sh), interpolation=cv2.INTER_LINEAR)
    m = np.stack([np.full(3, rng.uniform(1, 6), np.float32), np.asarray(colour, np.float32)], axis=1)
    img = cv2.transform(cv2.merge([grain, np.ones_like(grain)]), m)  # colour + grain * strength
    return Page(image=np.clip(img, 0, 255).astype(np.uint8), mask=np.full((sh, sw), 255, np.uint8), corners=None)


def blank_page(page: Page, rng: np.random.Generator) -> Page:
    """A blank sheet in the page's proportions and paper colour (sometimes whiter), at the
    page's size so that its corners and the camera's homography stay the page's."""
    h, w = page.image.shape[:2]
    colour = _paper_colour(page)
    if rng.random() < 0.5:
        colour = np.clip(colour + rng.uniform(0, 1) * (245 - colour), 0, 255)
    sheet = _plain(page, colour, rng)
    image = cv2.resize(sheet.image, (w, h), interpolation=cv2.INTER_LINEAR)
    mask = page.mask if page.mask is not None else np.full((h, w), 255, np.uint8)
    return Page(image=image, mask=mask, corners=page.corners)


def _onto(sheet: Page, dst: np.ndarray) -> np.ndarray:
    """The homography putting ``sheet``'s corners on the frame quad ``dst``."""
    h, w = sheet.image.shape[:2]
    return _homography(page_corners(w, h), dst)


def _paper_colour(page: Page) -> np.ndarray:
    img = page.image
    return np.median(img.reshape(-1, 3)[:: max(1, img.size // 3000)], axis=0).astype(np.float32)


def _cover_colour(page: Page, rng: np.random.Generator) -> np.ndarray:
    """Mostly close to the paper (the hard case), sometimes a darker board or a coloured cover."""
    paper = _paper_colour(page)
    r = rng.random()
    if r < 0.55:
        return np.clip(paper * rng.uniform(0.88, 1.04) + rng.normal(0, 5, 3), 0, 255)
    if r < 0.8:
        return rng.uniform(20, 120, 3).astype(np.float32)
    colour = rng.uniform(40, 230, 3)
    return (colour + (colour.mean() - colour) * rng.uniform(0.2, 0.6)).astype(np.float32)


def larger_sheet(page: Page, image: np.ndarray, quad: np.ndarray, rng: np.random.Generator,
                 paste: Paste, sheet: Callable[[Page], Page]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A sheet 2-8% larger than the page, under it: offset by up to 2% and turned by up to 2
    degrees, so it shows along one to four sides of the page."""
    centre = quad.mean(axis=0)
    size = np.sqrt(max(1.0, quad_area(quad)))
    grow = rng.uniform(1.02, 1.08)
    theta = np.radians(rng.normal(0, 1.0))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    shift = rng.uniform(-0.02, 0.02, 2) * size
    under = (quad - centre) @ rot.T * grow + centre + shift
    # a plain cover or notebook of a similar colour, or another printed (or blank) sheet
    below = _plain(page, _cover_colour(page, rng), rng) if rng.random() < 0.5 else sheet(page)
    image = paste(below, image, _onto(below, under))
    return image, [{"corners": under, "role": "under", "flags": ["occluded"]}]


def book_spread(page: Page, image: np.ndarray, h_edge: np.ndarray, rng: np.random.Generator,
                paste: Paste, sheet: Callable[[Page], Page],
                bow: bool = False) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """The page as one page of an open book. Returns the frame with the cover, the page-edge
    stack and the facing page drawn, the instances, and the gutter (for :func:`shade_gutter`
    after the page is pasted; with ``bow``, ``gutter["warp"]`` is the page's own warp)."""
    ph, pw = page.image.shape[:2]
    # the gutter: mostly the left or right side of the page (a book held upright)
    side = int(rng.choice(4, p=[0.45, 0.45, 0.05, 0.05]))  # 0 left, 1 right, 2 top, 3 bottom
    k = rng.uniform(0.96, 1.03)  # the facing page's width relative to the page
    gap = rng.uniform(0.0, 0.01)
    dy = rng.uniform(-0.015, 0.015)
    if side == 0:
        facing = np.array([[-k * pw - gap * pw, dy * ph], [-gap * pw, dy * ph], [-gap * pw, (1 + dy) * ph],
                           [-k * pw - gap * pw, (1 + dy) * ph]])
        outward = np.array([1.0, 0.0])
    elif side == 1:
        facing = np.array([[(1 + gap) * pw, dy * ph], [(1 + gap + k) * pw, dy * ph],
                           [(1 + gap + k) * pw, (1 + dy) * ph], [(1 + gap) * pw, (1 + dy) * ph]])
        outward = np.array([-1.0, 0.0])
    elif side == 2:
        facing = np.array([[dy * pw, -k * ph - gap * ph], [(1 + dy) * pw, -k * ph - gap * ph],
                           [(1 + dy) * pw, -gap * ph], [dy * pw, -gap * ph]])
        outward = np.array([0.0, 1.0])
    else:
        facing = np.array([[dy * pw, (1 + gap) * ph], [(1 + dy) * pw, (1 + gap) * ph],
                           [(1 + dy) * pw, (1 + gap + k) * ph], [dy * pw, (1 + gap + k) * ph]])
        outward = np.array([0.0, -1.0])
    flat = page_corners(pw, ph)
    instances: list[dict[str, Any]] = []
    # 1. the cover, a few % larger than the two pages together
    if rng.random() < 0.6:
        both = np.vstack([flat, facing])
        lo, hi = both.min(axis=0), both.max(axis=0)
        pad = rng.uniform(0.01, 0.05) * np.array([pw, ph])
        cover = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]]) + \
            np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * pad
        cover_quad = apply_homography(h_edge, cover)
        cover_sheet = _plain(page, _cover_colour(page, rng), rng)
        image = paste(cover_sheet, image, _onto(cover_sheet, cover_quad))
        instances.append({"corners": cover_quad, "role": "under", "flags": ["occluded"]})
    # 2. the stack of page edges beyond the outer edges of both pages: thin offsets of blank
    #    sheets of the paper's colour, each a little darker (the edges are in shadow)
    paper = _paper_colour(page)
    for i in range(int(rng.integers(0, 4)), 0, -1):
        step = rng.uniform(0.003, 0.01) * i
        for rect in (flat, facing):
            centre = rect.mean(axis=0)
            grown = centre + (rect - centre) * (1 + 0.2 * step) + outward * step * pw * \
                (1 if rect is flat else -1)
            shade = paper * rng.uniform(0.72, 0.95)
            edge_sheet = _plain(page, shade, rng)
            image = paste(edge_sheet, image, _onto(edge_sheet, apply_homography(h_edge, grown)))
    # 3. the facing page, printed like the page (bowing the mirror way: its spine is on the
    #    other side, the light is the same)
    warp: PageWarp | None = None
    facing_warp: PageWarp | None = None
    if bow:
        warp = gutter_warp(rng, pw, ph, side)
        facing_warp = gutter_warp(rng, pw, ph, (1, 0, 3, 2)[side], light=warp.light)
    facing_h = _homography(flat, apply_homography(h_edge, facing))
    image = paste(sheet(page), image, facing_h, facing_warp)
    facing_quad = apply_homography(facing_h, flat if facing_warp is None else facing_warp.forward(flat))
    instances.append({"corners": facing_quad, "role": "facing", "flags": ["approximate"] if bow else []})
    gutter = flat[[0, 3]] if side == 0 else flat[[1, 2]] if side == 1 else flat[[0, 1]] if side == 2 else flat[[3, 2]]
    return image, instances, {"line": apply_homography(h_edge, gutter), "width": float(np.sqrt(quad_area(
        apply_homography(h_edge, flat)))) * rng.uniform(0.02, 0.07), "strength": float(rng.uniform(0.15, 0.45)),
        "warp": warp}


def shade_gutter(image: np.ndarray, gutter: dict[str, Any]) -> np.ndarray:
    """Darken a soft band along the gutter (the pages bend down into it, away from the light)."""
    h, w = image.shape[:2]
    band = np.zeros((h, w), np.float32)
    a, b = (np.round(gutter["line"] * 8).astype(np.int32))
    width = max(1, int(round(gutter["width"])))
    cv2.line(band, tuple(int(v) for v in a), tuple(int(v) for v in b), 1.0, thickness=width,
             lineType=cv2.LINE_AA, shift=3)
    band = cv2.GaussianBlur(band, (0, 0), max(1.0, width / 2))
    out = image.astype(np.float32) * (1 - gutter["strength"] * np.clip(band, 0, 1))[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def stacked_sheets(page: Page, image: np.ndarray, quad: np.ndarray, rng: np.random.Generator, paste: Paste,
                   sheet: Callable[[Page], Page], tight: bool = False) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """1-2 sheets under the page, offset and turned a little so they stick out (``tight``: by
    only a few pixels to a few percent, as in a pile of paper)."""
    instances = []
    centre = quad.mean(axis=0)
    size = np.sqrt(max(1.0, quad_area(quad)))
    pw, ph = page.image.shape[1::-1]
    for _ in range(int(rng.integers(1, 3))):
        if tight:
            theta = np.radians(rng.normal(0, 1.5))
            ang = rng.uniform(0, 2 * np.pi)
            shift = np.array([np.cos(ang), np.sin(ang)]) * size * float(np.exp(rng.uniform(np.log(0.004), np.log(0.05))))
            grow = rng.uniform(0.99, 1.03)
        else:
            theta = np.radians(rng.normal(0, 8))
            shift = rng.uniform(-0.25, 0.25, 2) * size
            grow = rng.uniform(0.95, 1.1)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        under = (quad - centre) @ rot.T * grow + centre + shift
        below = sheet(page)
        image = paste(below, image, _homography(page_corners(pw, ph), under))
        instances.append({"corners": under, "role": "under", "flags": ["occluded"]})
    return image, instances


def other_document(page: Page, image: np.ndarray, quad: np.ndarray, rng: np.random.Generator, paste: Paste,
                   sheet: Callable[[Page], Page], camera: dict[str, Any]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Another, smaller document elsewhere on the table (not the page), placed by the page's
    ``camera`` model where its bounding box does not meet the page's; none after 6 tries."""
    out_h, out_w = image.shape[:2]
    pw, ph = page.image.shape[1::-1]
    area = quad_area(quad) / (out_w * out_h) * rng.uniform(0.25, 0.6)
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    for _ in range(6):
        other = camera_quad(rng, pw, ph, out_w, out_h, camera, area=max(area, 0.01))
        olo, ohi = other.min(axis=0), other.max(axis=0)
        if (olo > hi).any() or (ohi < lo).any():  # bounding boxes apart: no overlap
            image = paste(sheet(page), image, _homography(page_corners(pw, ph), other))
            return image, [{"corners": other, "role": "other", "flags": []}]
    return image, []


class SheetMemo:
    """Other sheets made from the page: turned, mirrored or plain (there is only one page).

    Each of the three is a pure function of the page, so it is made once per page and kept
    while the page's composites last (a document's composites are consecutive): the same sheet
    object comes back, and its shrunk levels stay in the paste cache."""

    PAGES = 2  # pages whose sheets are kept: the current document's page and one made from it

    def __init__(self):
        self._made: list[tuple[weakref.ref, dict[int, Page]]] = []

    def drawer(self, rng: np.random.Generator) -> Callable[[Page], Page]:
        """``sheet(page)`` for the functions above: each call draws which sheet from ``rng``."""
        return lambda page: self.sheet(page, rng)

    def sheet(self, page: Page, rng: np.random.Generator) -> Page:
        k = int(rng.integers(3))
        made = next((sheets for ref, sheets in self._made if ref() is page.image), None)
        if made is None:
            made = {}
            self._made.append((weakref.ref(page.image), made))
            del self._made[:-self.PAGES]
        if k not in made:
            made[k] = sheet_variant(page, k)
        return made[k]


def sheet_variant(page: Page, k: int) -> Page:
    """The page turned by 180 degrees (k = 0), mirrored (1), or a plain sheet of its paper
    colour (2)."""
    img = page.image
    if k == 0:
        img = cv2.rotate(img, cv2.ROTATE_180)
    elif k == 1:
        img = cv2.flip(img, 1)
    else:
        colour = np.median(img.reshape(-1, 3)[:: max(1, img.size // 3000)], axis=0).astype(np.uint8)
        h, w = img.shape[:2]
        # one row repeated: a (h, w, 3) broadcast of 3 values is ten times slower
        img = np.ascontiguousarray(np.broadcast_to(np.tile(colour, w), (h, 3 * w))).reshape(h, w, 3)
    mask = page.mask if page.mask is not None else np.full(img.shape[:2], 255, np.uint8)
    if k == 0:
        mask = cv2.rotate(mask, cv2.ROTATE_180)
    elif k == 1:
        mask = cv2.flip(mask, 1)
    return Page(image=img, mask=mask, corners=None)
