"""Step ``cutouts``: real cut-out objects (RGBA images) lying beside, across or on the page.

The drawn ``props`` are all built from a handful of shapes; real desks hold fruit, mugs, phones
and markers of every shape and colour, and a scanner that never saw a round, saturated object
next to a page pulls a corner onto it. This step pastes cut-outs from a folder of RGBA PNGs
(``dir``; ``recipes/offline/cutouts.sh`` makes one from Debian's public-domain
``openclipart-png``, licences in its ``cutouts.jsonl``), each scaled, turned, lit from the
scene's light direction, slightly softened like the rest of the photo, with a soft contact
shadow.

Placement: ``beside_p`` of them near a page edge but off the page, ``on_page_p`` across a page
edge or on the page, the rest anywhere in the frame (off the page).

Effect on the labels (the rule of ``occlusion`` and ``props``): a cut-out over the page removes
the pixels it covers from the mask (the mask marks *visible* page) and flags the sample
``occluded``; corners stay where the page edges meet. Placed off the page, a cut-out is kept
off the page's pixels. Without ``dir`` the step draws nothing (and says so once).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from .base import register_step, uniform
from .scene import Obj, _Objects, _page_or_centre, edge_point, keep_off_page, soft_shadow

_LISTINGS: dict[str, list[Path]] = {}
_SPRITES: OrderedDict[str, np.ndarray] = OrderedDict()
_SPRITE_CACHE = 96  # decoded cut-outs kept per process (each at most 256 px: about 25 MB)
_WARNED: set[str] = set()


def listing(folder: str) -> list[Path]:
    """The cut-out files of ``folder`` (``images/*.png`` or ``*.png``), sorted: the order, and so
    which cut-out a draw picks, depends only on the folder's contents."""
    if folder not in _LISTINGS:
        root = Path(folder)
        files = sorted((root / "images").glob("*.png")) or sorted(root.glob("*.png"))
        _LISTINGS[folder] = files
    return _LISTINGS[folder]


def sprite(path: Path) -> np.ndarray | None:
    """A decoded RGBA cut-out (BGR + alpha, uint8), from a small per-process LRU cache."""
    key = str(path)
    if key in _SPRITES:
        _SPRITES.move_to_end(key)
        return _SPRITES[key]
    img = cv2.imread(key, cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        return None
    _SPRITES[key] = img
    if len(_SPRITES) > _SPRITE_CACHE:
        _SPRITES.popitem(last=False)
    return img


def place(frame: tuple[int, int], rgba: np.ndarray, centre: np.ndarray, size: float, angle: float,
          light: np.ndarray, rng: np.random.Generator) -> Obj | None:
    """The cut-out scaled to ``size`` px (longer side), turned by ``angle`` degrees and centred on
    ``centre``, as an :class:`Obj` clipped to the frame, with light and a contact shadow."""
    h, w = frame
    sh, sw = rgba.shape[:2]
    scale = size / max(sh, sw)
    m = cv2.getRotationMatrix2D((sw / 2, sh / 2), angle, scale)
    half = 0.5 * size * 1.5 + 0.04 * size + 4  # the turned sprite, its shadow offset and blur fit in here
    x0, y0 = int(max(0, np.floor(centre[0] - half))), int(max(0, np.floor(centre[1] - half)))
    x1, y1 = int(min(w, np.ceil(centre[0] + half))), int(min(h, np.ceil(centre[1] + half)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    m[:, 2] = np.array([centre[0] - x0, centre[1] - y0]) - m[:, :2] @ np.array([sw / 2, sh / 2])
    region = cv2.warpAffine(rgba, m, (x1 - x0, y1 - y0), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    alpha = region[..., 3].astype(np.float32) / 255.0
    if alpha.max() < 0.5:
        return None
    colour = region[..., :3].astype(np.float32)
    # photos are softer and less saturated than clip art; light falls from one side
    colour = cv2.GaussianBlur(colour, (0, 0), max(0.4, 0.004 * size))
    grey = colour.mean(axis=2, keepdims=True)
    colour = grey + (colour - grey) * rng.uniform(0.55, 1.0)
    ys, xs = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]].astype(np.float32)
    along = ((xs - (centre[0] - x0)) * light[0] + (ys - (centre[1] - y0)) * light[1]) / max(1.0, size)
    colour *= (rng.uniform(0.75, 1.0) + 0.25 * np.clip(along + 0.5, 0, 1))[..., None]
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.6)
    offset = (-light * size * rng.uniform(0.015, 0.05)).tolist()
    shadow = soft_shadow(alpha, (offset[0], offset[1]), max(1.0, 0.03 * size))
    return Obj(x0, y0, alpha, np.clip(colour, 0, 255), shadow, float(rng.uniform(0.3, 0.6)))


@register_step
class Cutouts(_Objects):
    """1..``count`` real cut-outs from ``dir``, beside, across or on the page."""

    name = "cutouts"
    defaults = {"dir": None, "count": [1, 3], "size": [0.15, 0.45], "beside_p": 0.45, "on_page_p": 0.3}
    case = "cutouts"

    def get_params(self, rng, sample):
        files = listing(str(self.dir)) if self.dir else []
        if not files:
            key = str(self.dir)
            if key not in _WARNED:
                _WARNED.add(key)
                print(f"docsynth: warning: step 'cutouts': no cut-outs in {self.dir!r} "
                      "(run recipes/offline/cutouts.sh); the step draws nothing", file=sys.stderr)
            return {"skip": True}
        frame = h, w = sample.image.shape[:2]
        corners = _page_or_centre(sample)
        ang = rng.uniform(0, 2 * np.pi)
        light = np.array([np.cos(ang), np.sin(ang)])
        objs, cutting = [], []
        for _ in range(int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))):
            rgba = sprite(files[int(rng.integers(len(files)))])
            r = rng.random()
            on_page = sample.corners is not None and r < self.on_page_p
            beside = sample.corners is not None and not on_page and r < self.on_page_p + self.beside_p
            point, normal, page_size = edge_point(corners, rng)
            if on_page or beside:
                s = uniform(rng, self.size) * page_size * 0.8
                # across the edge or inside the page (on_page), or just outside it (beside)
                depth = rng.uniform(-0.3, 1.2) if on_page else -rng.uniform(0.55, 1.1)
                centre = point + normal * depth * s * 0.5
            else:
                s = uniform(rng, self.size) * min(h, w)
                centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            angle = float(rng.uniform(-180, 180))
            if rgba is None:
                continue
            obj = place(frame, rgba, centre, s, angle, light, rng)
            if obj is None:
                continue
            if not on_page and sample.corners is not None:
                keep_off_page(obj, sample.mask)
            objs.append(obj)
            if on_page:
                cutting.append(obj)
        return {"objs": objs, "cutting": cutting}
