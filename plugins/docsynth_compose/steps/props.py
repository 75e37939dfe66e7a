"""Step ``props``: desk objects with volume around and on the page.

Real desks carry mugs, mice, keyboards, phones, staplers, glasses, fruit and pens, and a scanner
must not swallow them into the page. Each prop is drawn as a solid with volume: a base shape,
shading from a light direction shared by the whole scene, a darker rim, a specular highlight
and a soft contact shadow on the surface below.

Effect on the labels (the same rule as ``occlusion``): a solid prop that lies over the page
removes the covered pixels from the mask (the mask marks *visible* page) and flags the sample
``occluded``; corners stay where the page edges meet. Thin props (pens, markers, glasses'
frames) leave the mask whole, as ``distractors`` do. ``on_page_p`` is the chance that a prop is
placed across a page edge rather than beside the page.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.errors import DocsynthError

from .base import register_step, uniform
from .scene import (
    _ONE,
    _SHIFT,
    Obj,
    _Objects,
    _page_or_centre,
    _pts,
    edge_point,
    keep_off_page,
    make_obj,
    muted,
)

KINDS = ("mug", "mouse", "keyboard", "phone", "stapler", "glasses", "fruit", "pen")
# kinds drawn only when a config names them in ``kinds`` (the default list stays as it was, so
# default outputs do not change): "note", a sticky note or page flag stuck across the page
# edge, sticking out of the page
EXTRA_KINDS = ("note",)
THIN = {"glasses", "pen"}
NOTE_COLOURS = np.array([[90, 230, 245], [120, 235, 170], [185, 140, 250], [70, 175, 250], [235, 205, 120],
                         [150, 240, 240]], np.float64)  # BGR: yellow, green, pink, orange, blue, lime


def lit(obj: Obj, light: np.ndarray, gloss: float, rng: np.random.Generator) -> None:
    """Directional shading across the object and a specular spot towards the light (in place)."""
    h, w = obj.alpha.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    u = ((xs - cx) * light[0] + (ys - cy) * light[1]) / max(1.0, max(h, w) / 2)
    shade = 1 - 0.25 * u  # the side facing the light (u < 0) is brighter
    obj.colour *= np.clip(shade, 0.6, 1.3)[..., None]
    sx, sy = cx - light[0] * w * 0.25, cy - light[1] * h * 0.25
    r = max(1.0, min(h, w) * rng.uniform(0.08, 0.2))
    spot = np.exp(-(((xs - sx) ** 2 + (ys - sy) ** 2) / (2 * r * r))) * gloss * obj.alpha
    obj.colour += (255 - obj.colour) * spot[..., None]


def _ellipse(centre, axes, angle):
    def draw(layer, off):
        cv2.ellipse(layer, tuple(_pts(centre - off)), (max(1, int(axes[0] * _ONE)), max(1, int(axes[1] * _ONE))),
                    angle, 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
    return draw


def _rounded_box(box: np.ndarray, radius: float):
    def draw(layer, off):
        c = box.mean(axis=0)
        half = max(1.0, float(np.linalg.norm(box[0] - c)))
        inner = c + (box - c) * max(0.05, 1 - radius * 1.41 / half)
        cv2.fillPoly(layer, [_pts(inner - off)], 1.0, cv2.LINE_AA, _SHIFT)
        cv2.polylines(layer, [_pts(inner - off)], True, 1.0, max(1, int(2 * radius)), cv2.LINE_AA, _SHIFT)
    return draw


def _box(centre, length, width, angle):
    return cv2.boxPoints(((float(centre[0]), float(centre[1])), (float(length), float(width)), float(angle))).astype(np.float64)


def make_prop(kind: str, frame, centre: np.ndarray, s: float, rng: np.random.Generator,
              light: np.ndarray, normal: np.ndarray | None = None) -> list[Obj]:
    """The objects (one or a few layers) of one prop of size ``s`` px centred at ``centre``;
    ``normal`` (the page edge's inward normal) lines up a note across the edge."""
    h, w = frame
    angle = float(rng.uniform(0, 180))
    shadow_off = tuple(-light * s * rng.uniform(0.03, 0.08))
    blur = s * 0.04
    strength = float(rng.uniform(0.3, 0.55))
    objs: list[Obj] = []

    def add(points, draw, base, rounded, gloss, shadow=True, margin=2.0):
        obj = make_obj(frame, points, margin, draw, base, rounded, shadow_off if shadow else (0.0, 0.0),
                       blur if shadow else 0.0, strength if shadow else 0.0, soften=0.6)
        if obj is not None:
            lit(obj, light, gloss, rng)
            objs.append(obj)
        return obj

    pts = np.array([centre - s / 2, centre + s / 2])
    if kind == "mug":  # seen from above: body, rim, coffee, handle
        r = s / 2
        colour = muted(rng) if rng.random() < 0.6 else np.full(3, rng.uniform(200, 245))
        a = rng.uniform(0, 2 * np.pi)
        handle = centre + np.array([np.cos(a), np.sin(a)]) * r * 1.05
        add(np.array([handle - r * 0.35, handle + r * 0.35]), _ellipse(handle, (r * 0.32, r * 0.2),
                                                                       float(np.degrees(a))), colour, r * 0.1, 0.2)
        add(pts, _ellipse(centre, (r, r), 0.0), colour, r * 0.25, 0.5)
        inner = np.full(3, rng.uniform(20, 60)) * np.array([0.6, 0.8, 1.0]) if rng.random() < 0.7 else colour * 0.7
        add(pts, _ellipse(centre, (r * 0.8, r * 0.8), 0.0), inner, r * 0.05, 0.3, shadow=False)
    elif kind == "mouse":
        colour = np.full(3, rng.uniform(15, 60)) if rng.random() < 0.6 else np.full(3, rng.uniform(180, 235))
        axes = (s * 0.5, s * 0.3)
        add(pts, _ellipse(centre, axes, angle), colour, s * 0.15, 0.6)
    elif kind == "keyboard":
        colour = np.full(3, rng.uniform(20, 60)) if rng.random() < 0.6 else np.full(3, rng.uniform(190, 235))
        box = _box(centre, s * 2.6, s * 0.9, angle)
        obj = add(box, _rounded_box(box, s * 0.04), colour, s * 0.03, 0.1)
        if obj is not None:  # key grid: darker gaps between keys, 14 keys along, 5 rows across
            grid = np.zeros_like(obj.alpha)
            # cv2.boxPoints: box[0] -> box[1] runs along the short side, box[0] -> box[3] the long
            along, across = (box[3] - box[0]) / 14, (box[1] - box[0]) / 5
            off = np.array([obj.x0, obj.y0], np.float64)
            for i in range(1, 14):
                cv2.line(grid, tuple(_pts(box[0] + along * i - off)), tuple(_pts(box[1] + along * i - off)), 1.0, 1,
                         cv2.LINE_AA, _SHIFT)
            for j in range(1, 5):
                cv2.line(grid, tuple(_pts(box[0] + across * j - off)), tuple(_pts(box[3] + across * j - off)), 1.0, 1,
                         cv2.LINE_AA, _SHIFT)
            obj.colour *= (1 - 0.45 * grid * obj.alpha)[..., None]
    elif kind == "phone":
        box = _box(centre, s * 1.0, s * 0.48, angle)
        add(box, _rounded_box(box, s * 0.06), np.full(3, rng.uniform(10, 40)), s * 0.02, 0.5)
        screen = centre + (box - centre) * 0.9
        glow = rng.uniform(15, 70) if rng.random() < 0.7 else rng.uniform(120, 230)
        add(screen, _rounded_box(screen, s * 0.04), np.full(3, glow) * rng.uniform(0.9, 1.1, 3), s * 0.01, 0.8, shadow=False)
    elif kind == "stapler":
        box = _box(centre, s * 1.1, s * 0.28, angle)
        add(box, _rounded_box(box, s * 0.1), muted(rng) if rng.random() < 0.5 else np.full(3, rng.uniform(20, 60)),
            s * 0.08, 0.7)
    elif kind == "fruit":
        r = s * 0.3
        colour = np.array(rng.choice([[40, 60, 200], [30, 150, 230], [40, 170, 80], [50, 200, 220]]), np.float64)
        add(np.array([centre - r, centre + r]), _ellipse(centre, (r, r * rng.uniform(0.85, 1.0)), angle),
            colour * rng.uniform(0.8, 1.1), r * 0.35, 0.7)
    elif kind == "note":  # flat paper: a square note or a long flag, across the edge
        along = float(np.degrees(np.arctan2(normal[1], normal[0]))) if normal is not None else angle
        length = s * rng.uniform(0.4, 0.8)
        box = _box(centre, length, length * rng.uniform(0.3, 1.0), along + rng.normal(0, 6))
        colour = NOTE_COLOURS[int(rng.integers(len(NOTE_COLOURS)))] * rng.uniform(0.85, 1.05)
        obj = make_obj(frame, box, 2.0, _rounded_box(box, 0.5), np.clip(colour, 0, 255), 0.5,
                       tuple(-light * s * 0.01), s * 0.01, 0.25, soften=0.6)
        if obj is not None:
            objs.append(obj)
    elif kind == "glasses":  # two thin rings joined by a bridge: frames only, lenses clear
        d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        a, b = centre - d * s * 0.3, centre + d * s * 0.3
        t = max(1, int(s * 0.03))
        colour = np.full(3, rng.uniform(10, 50))

        def frames(layer, off):
            for c in (a, b):
                cv2.ellipse(layer, tuple(_pts(c - off)), (int(s * 0.22 * _ONE), int(s * 0.15 * _ONE)), angle, 0, 360,
                            1.0, t, cv2.LINE_AA, _SHIFT)
            cv2.line(layer, tuple(_pts(a + d * s * 0.22 - off)), tuple(_pts(b - d * s * 0.22 - off)), 1.0, t, cv2.LINE_AA, _SHIFT)
        add(np.array([centre - s * 0.6, centre + s * 0.6]), frames, colour, 1.0, 0.3)
    else:  # pen / marker: a shaded capsule with a cap of another colour
        d = np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))]) * s * rng.uniform(0.6, 0.9)
        thick = max(2, int(s * rng.uniform(0.05, 0.09)))
        body = muted(rng) if rng.random() < 0.5 else np.full(3, rng.uniform(15, 240))
        a, b = centre - d, centre + d

        def stick(layer, off, p=a, q=b):
            cv2.line(layer, tuple(_pts(p - off)), tuple(_pts(q - off)), 1.0, thick, cv2.LINE_AA, _SHIFT)
        add(np.array([a, b]), stick, body, thick * 0.4, 0.6, margin=thick)
        cap = a + (b - a) * 0.25
        add(np.array([a, cap]), lambda layer, off: cv2.line(layer, tuple(_pts(a - off)), tuple(_pts(cap - off)), 1.0,
                                                            thick + 1, cv2.LINE_AA, _SHIFT),
            muted(rng), thick * 0.4, 0.6, shadow=False, margin=thick)
    del h, w
    return objs


@register_step
class Props(_Objects):
    """1..``count`` desk objects with volume (``kinds``), some across the page edge."""

    name = "props"
    defaults = {"count": [1, 4], "size": [0.12, 0.35], "kinds": list(KINDS), "on_page_p": 0.4}
    case = "props"

    def __init__(self, p: float | None = None, **options):
        super().__init__(p, **options)
        known = KINDS + EXTRA_KINDS
        kinds = self.kinds
        wrong = [k for k in kinds if k not in known] if isinstance(kinds, list) and kinds else [repr(kinds)]
        if wrong:
            raise DocsynthError(f"compositor_options: step 'props': kinds must be a non-empty list of {', '.join(known)}; "
                                f"got {', '.join(map(str, wrong))}")

    def get_params(self, rng, sample):
        frame = h, w = sample.image.shape[:2]
        corners = _page_or_centre(sample)
        ang = rng.uniform(0, 2 * np.pi)
        light = np.array([np.cos(ang), np.sin(ang)])
        objs, cutting = [], []
        for _ in range(int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))):
            kind = str(self.kinds[int(rng.integers(len(self.kinds)))])
            on_page = sample.corners is not None and rng.random() < self.on_page_p
            normal = None
            if on_page:
                point, normal, size = edge_point(corners, rng)
                s = uniform(rng, self.size) * size
                # a note sticks out of the page: its middle lies on the edge or outside it
                centre = point - normal * (rng.uniform(0.0, 0.3) if kind == "note" else rng.uniform(-0.1, 0.35)) * s
            else:
                s = uniform(rng, self.size) * min(h, w)
                centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            made = make_prop(kind, frame, centre, s, rng, light, normal)
            if not on_page and kind not in THIN and sample.corners is not None:
                for obj in made:  # beside the page
                    keep_off_page(obj, sample.mask)
            objs += made
            if kind not in THIN:
                cutting += made
        return {"objs": objs, "cutting": cutting}

