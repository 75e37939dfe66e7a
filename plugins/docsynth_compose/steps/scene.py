"""Scene steps: things in front of (or around) the page in real photos.

- ``occlusion``: solid objects (phone, mug, book, sticky note) overlapping the page edge; the
  mask loses the covered pixels (it marks *visible* page) and the sample is flagged ``occluded``;
  corners stay where the page's edges meet.
- ``hand``: fingers and a palm holding the page at one edge, skin-toned and shaded, with a
  soft shadow; same mask rule, flagged ``occluded``.
- ``distractors``: thin high-contrast objects crossing the page and the frame (cables, pens) and
  table edges behind the page. Thin objects leave the mask whole (the page continues under a
  cable; a mask cut into pieces by a cable would teach a scanner to split pages).
- ``clutter``: page-like and object-like shapes on the table (cards, notes, devices) that are
  not the page, to learn "small page in a cluttered frame".

Objects are drawn with anti-aliasing and blended with a soft alpha so edges look photographed.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from docsynth.kinds import Sample

from .base import Step, register_step, uniform

_SHIFT = 3
_ONE = 1 << _SHIFT

SKIN_BGR = np.array([[178, 198, 236], [150, 178, 224], [124, 158, 208], [96, 132, 184],
                     [70, 100, 150], [48, 70, 110]], np.float32)


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def blend(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """image * (1 - alpha) + colour * alpha on the bounding box of alpha > 0; colour is a BGR
    triple or an image of the same size."""
    ys, xs = np.nonzero(alpha > 0.004)
    if len(ys) == 0:
        return image
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    out = image.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    a = alpha[y0:y1, x0:x1, None]
    col = colour[y0:y1, x0:x1] if np.ndim(colour) == 3 else np.asarray(colour, np.float32)
    roi += (col - roi) * a
    out[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
    return out


def darken(image: np.ndarray, shadow: np.ndarray, strength: float) -> np.ndarray:
    """Multiply by 1 - strength * shadow (shadow in [0, 1]) on its bounding box."""
    return blend(image, shadow * strength, np.zeros(3, np.float32))


def edge_points(corners: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A random point on a random page edge, the inward unit normal there, and the page size."""
    k = int(rng.integers(4))
    a, b = corners[k], corners[(k + 1) % 4]
    t = rng.uniform(0.15, 0.85)
    point = a + (b - a) * t
    tangent = (b - a) / max(1e-6, np.linalg.norm(b - a))
    normal = np.array([tangent[1], -tangent[0]])  # clockwise quad, y down -> right-hand normal points in
    centre = corners.mean(axis=0)
    if np.dot(centre - point, normal) < 0:
        normal = -normal
    size = np.sqrt(max(1.0, abs(np.cross(corners[1] - corners[0], corners[3] - corners[0]))))
    return point, normal, float(size)


def _shadow_of(alpha: np.ndarray, offset: tuple[float, float], blur: float) -> np.ndarray:
    m = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
    h, w = alpha.shape
    moved = cv2.warpAffine(alpha, m, (w, h))
    return cv2.GaussianBlur(moved, (0, 0), max(0.5, blur))


def _visible_cut(sample_mask: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, bool]:
    covered = alpha >= 0.5
    removed = bool((sample_mask[covered] > 0).any())
    mask = sample_mask.copy()
    mask[covered] = 0
    return mask, removed


class _Overlay(Step):
    """A step that draws an alpha layer (and its colour) over the image and, for opaque
    objects, removes the covered pixels from the mask."""

    cut_mask = True

    def apply(self, image, alpha, colour, shadow, shadow_strength, **params):
        if shadow is not None:
            image = darken(image, shadow * (1 - alpha), shadow_strength)
        return blend(image, alpha, colour)

    def apply_to_mask(self, mask, alpha, **params):
        if not self.cut_mask:
            return mask
        return _visible_cut(mask, alpha)[0]

    def run(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = super().run(sample, rng)
        if self.cut_mask and cv2.countNonZero(out.mask) < cv2.countNonZero(sample.mask):
            out.flags = set(out.flags) | {"occluded"}
        return out


def _shaded_colour(alpha: np.ndarray, base: np.ndarray, rng: np.random.Generator, rounded: float) -> np.ndarray:
    """A colour image for an object: brighter in the middle, darker at its rim (a rounded
    object lit from above), plus a faint gradient."""
    h, w = alpha.shape
    inner = cv2.GaussianBlur(alpha, (0, 0), max(1.0, rounded))
    shade = 0.65 + 0.45 * np.clip(inner, 0, 1)
    return base[None, None, :] * shade[..., None]


@register_step
class Hand(_Overlay):
    """Fingers (and often a palm) holding the page at one edge."""

    name = "hand"
    defaults = {"fingers": [1, 4], "palm_p": 0.6, "width": [0.05, 0.09], "reach": [0.04, 0.15],
                "shadow": [0.2, 0.45]}
    flags = ()
    case = "hand"

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        if sample.corners is None:
            corners = np.array([[0.3 * w, 0.3 * h], [0.7 * w, 0.3 * h], [0.7 * w, 0.7 * h], [0.3 * w, 0.7 * h]])
        else:
            corners = np.asarray(sample.corners)
        point, normal, size = edge_points(corners, rng)
        tangent = np.array([-normal[1], normal[0]])
        alpha = np.zeros((h, w), np.float32)
        n = int(rng.integers(int(self.fingers[0]), int(self.fingers[1]) + 1))
        fw = uniform(rng, self.width) * size
        spread = fw * 1.05
        for i in range(n):
            base = point + tangent * (i - (n - 1) / 2) * spread - normal * rng.uniform(0.2, 0.5) * size
            tip = point + tangent * (i - (n - 1) / 2) * spread + normal * uniform(rng, self.reach) * size \
                * (0.7 if i in (0, n - 1) else 1.0)
            tip = tip + tangent * rng.uniform(-0.2, 0.2) * fw
            thickness = max(2, int(round(fw * rng.uniform(0.85, 1.1))))
            cv2.line(alpha, tuple(_pts(base)), tuple(_pts(tip)), 1.0, thickness, cv2.LINE_AA, _SHIFT)
        if rng.random() < self.palm_p:
            palm = point - normal * (0.25 * size + fw)
            axes = (int(max(2, fw * n * 0.9)), int(max(2, 0.3 * size)))
            ang = float(np.degrees(np.arctan2(normal[1], normal[0])))
            cv2.ellipse(alpha, tuple(int(v) for v in palm), (axes[1], axes[0]), ang, 0, 360, 1.0, -1, cv2.LINE_AA)
        alpha = cv2.GaussianBlur(alpha, (0, 0), 0.8)
        tone = SKIN_BGR[int(rng.integers(len(SKIN_BGR)))] * rng.uniform(0.85, 1.1)
        colour = _shaded_colour(alpha, np.clip(tone, 0, 255), rng, fw * 0.3)
        offset = tuple(normal * fw * rng.uniform(0.2, 0.6) + rng.uniform(-2, 2, 2))
        shadow = _shadow_of(alpha, offset, fw * 0.5)
        return {"alpha": alpha, "colour": colour, "shadow": shadow, "shadow_strength": uniform(rng, self.shadow)}


@register_step
class Occlusion(_Overlay):
    """1..``count`` solid objects over the page edge: rounded rectangles (phones, books, sticky
    notes) and ellipses (mugs seen from above)."""

    name = "occlusion"
    defaults = {"count": [1, 2], "size": [0.12, 0.35], "shadow": [0.2, 0.5]}
    case = "occlusion"

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        alpha = np.zeros((h, w), np.float32)
        colour = np.zeros((h, w, 3), np.float32)
        n = int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))
        for _ in range(n):
            if sample.corners is not None:
                point, normal, size = edge_points(np.asarray(sample.corners), rng)
                centre = point - normal * rng.uniform(-0.05, 0.15) * size
            else:
                size = min(h, w)
                centre = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            s = uniform(rng, self.size) * size
            layer = np.zeros((h, w), np.float32)
            kind = int(rng.integers(3))
            if kind == 2:
                cv2.ellipse(layer, tuple(int(v) for v in centre), (int(s / 2), int(s / 2 * rng.uniform(0.8, 1.0))),
                            0, 0, 360, 1.0, -1, cv2.LINE_AA)
            else:
                aspect = rng.uniform(1.3, 2.2) if kind == 0 else rng.uniform(0.9, 1.1)
                rect = ((float(centre[0]), float(centre[1])), (float(s), float(s * aspect)), float(rng.uniform(0, 180)))
                box = cv2.boxPoints(rect)
                cv2.fillPoly(layer, [_pts(box)], 1.0, cv2.LINE_AA, _SHIFT)
                r = max(1.0, s * 0.08)
                layer = cv2.GaussianBlur(layer, (0, 0), r * 0.5)
                layer = np.clip((layer - 0.5) * 4 + 0.5, 0, 1)  # round the corners, keep a crisp edge
            base = rng.uniform(0, 255, 3) if rng.random() < 0.5 else np.full(3, rng.choice([rng.uniform(10, 60),
                                                                                             rng.uniform(190, 250)]))
            obj = _shaded_colour(layer, base.astype(np.float32), rng, s * 0.05)
            colour = colour * (1 - layer[..., None]) + obj * layer[..., None]
            alpha = np.maximum(alpha, layer)
        offset = tuple(rng.uniform(-1, 1, 2) * 0.02 * min(h, w))
        shadow = _shadow_of(alpha, offset, 0.015 * min(h, w))
        return {"alpha": alpha, "colour": colour, "shadow": shadow, "shadow_strength": uniform(rng, self.shadow)}


def _bezier(p0, p1, p2, p3, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3


@register_step
class Distractors(_Overlay):
    """Thin high-contrast lines: cables (smooth curves crossing page and frame), pens (short
    thick straight strokes) and a table edge (a straight boundary behind the page between two
    surfaces). The page stays whole in the mask under thin objects."""

    name = "distractors"
    defaults = {"count": [1, 3], "kinds": ["cable", "pen", "table_edge"], "thickness": [2, 7]}
    cut_mask = False
    case = "distractor"

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        alpha = np.zeros((h, w), np.float32)
        colour = np.zeros((h, w, 3), np.float32)
        behind = None
        n = int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))
        corners = np.asarray(sample.corners) if sample.corners is not None else \
            np.array([[0.3 * w, 0.3 * h], [0.7 * w, 0.3 * h], [0.7 * w, 0.7 * h], [0.3 * w, 0.7 * h]])
        centre = corners.mean(axis=0)
        for _ in range(n):
            kind = str(self.kinds[int(rng.integers(len(self.kinds)))])
            layer = np.zeros((h, w), np.float32)
            dark = rng.random() < 0.6
            base = rng.uniform(5, 45, 3) if dark else rng.uniform(200, 250, 3)
            if rng.random() < 0.25:
                base = rng.uniform(0, 255, 3)
            if kind == "table_edge":
                behind = self._edge(rng, h, w, behind)
                continue
            if kind == "cable":
                # Enter and leave through the frame border, bending through a point on the page.
                ang = rng.uniform(0, np.pi)
                d = np.array([np.cos(ang), np.sin(ang)]) * np.hypot(w, h)
                through = centre + (corners[int(rng.integers(4))] - centre) * rng.uniform(0, 0.9)
                p0, p3 = through - d, through + d
                bend = rng.normal(0, 0.25, (2, 2)) * np.hypot(w, h)
                pts = _bezier(p0, through - d / 3 + bend[0], through + d / 3 + bend[1], p3, 64)
                thick = int(rng.integers(int(self.thickness[0]), int(self.thickness[1]) + 1))
            else:  # pen: a short straight stroke over the page edge
                point, normal, size = edge_points(corners, rng)
                ang = rng.uniform(0, np.pi)
                d = np.array([np.cos(ang), np.sin(ang)]) * rng.uniform(0.15, 0.3) * max(h, w)
                pts = np.stack([point - d * rng.uniform(0.2, 0.8), point + d])
                thick = int(rng.integers(int(self.thickness[0]) + 2, int(self.thickness[1]) + 5))
            cv2.polylines(layer, [_pts(pts)], False, 1.0, thick, cv2.LINE_AA, _SHIFT)
            obj = _shaded_colour(layer, base.astype(np.float32), rng, thick * 0.4)
            # A specular highlight along the object: what makes cables look round and glossy.
            hi = np.zeros((h, w), np.float32)
            cv2.polylines(hi, [_pts(pts + thick * 0.2)], False, 1.0, max(1, thick // 3), cv2.LINE_AA, _SHIFT)
            obj += (255 - obj) * (hi * layer * rng.uniform(0.1, 0.4))[..., None]
            colour = colour * (1 - layer[..., None]) + obj * layer[..., None]
            alpha = np.maximum(alpha, layer)
        shadow = _shadow_of(alpha, tuple(rng.uniform(1, 4, 2)), 2.0) if alpha.any() else None
        return {"alpha": alpha, "colour": colour, "shadow": shadow, "shadow_strength": 0.35, "behind": behind}

    @staticmethod
    def _edge(rng, h, w, previous):
        """A straight line through the frame; the far side becomes another surface (floor, desk
        side): darker or lighter, with a thin bright bevel along the edge."""
        ang = rng.uniform(0, np.pi)
        px, py = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        return {"angle": ang, "x": px, "y": py, "gain": rng.choice([rng.uniform(0.25, 0.6), rng.uniform(1.2, 1.6)]),
                "bevel": rng.uniform(0.0, 0.6), "tint": rng.uniform(0.85, 1.15, 3)}

    def run(self, sample: Sample, rng: np.random.Generator) -> Sample:
        # Table edges go behind the page, so this step needs the sample's mask: it runs its
        # own apply instead of the image-only one.
        params = self.get_params(rng, sample)
        image = sample.image
        if params["behind"] is not None:
            image = self.apply_edge(image, sample.mask, params["behind"])
        image = _Overlay.apply(self, image, **params)
        extra = dict(sample.extra)
        extra["cases"] = sorted(set(extra.get("cases", ())) | {self.case})
        return Sample(image=image, mask=sample.mask, corners=sample.corners, flags=set(sample.flags), extra=extra)

    @staticmethod
    def apply_edge(image, page_mask, edge):
        h, w = image.shape[:2]
        nx, ny = -np.sin(edge["angle"]), np.cos(edge["angle"])
        gh, gw = max(2, h // 4), max(2, w // 4)
        xs = np.linspace(0, w, gw)[None, :] - edge["x"]
        ys = np.linspace(0, h, gh)[:, None] - edge["y"]
        side = cv2.resize((xs * nx + ys * ny).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        far = np.clip(side + 0.5, 0, 1)  # 1-px soft edge
        bevel = np.clip(1 - np.abs(side) / 2.0, 0, 1) * edge["bevel"]
        gain = 1 + far[..., None] * (edge["gain"] * np.asarray(edge["tint"], np.float32) - 1)
        out = image.astype(np.float32) * gain
        out += (240 - out) * bevel[..., None]
        out = np.clip(out, 0, 255).astype(np.uint8)
        keep = page_mask > 0  # the table edge is behind the page
        out[keep] = image[keep]
        return out


@register_step
class Clutter(_Overlay):
    """Objects on the table beside the page: cards, sticky notes, devices, keyboards. They never
    cover the page (it stays whole and unflagged); their job is to be page-like but not page."""

    name = "clutter"
    defaults = {"count": [1, 4], "size": [0.08, 0.3]}
    cut_mask = False
    case = "clutter"

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        alpha = np.zeros((h, w), np.float32)
        colour = np.zeros((h, w, 3), np.float32)
        n = int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))
        for _ in range(n):
            s = uniform(rng, self.size) * max(h, w)
            centre = (rng.uniform(0, w), rng.uniform(0, h))
            aspect = rng.choice([1.586, 1.0, 2.0, 0.5, 1.4])
            rect = (centre, (float(s), float(s / aspect)), float(rng.uniform(0, 180)))
            layer = np.zeros((h, w), np.float32)
            cv2.fillPoly(layer, [_pts(cv2.boxPoints(rect))], 1.0, cv2.LINE_AA, _SHIFT)
            kind = rng.random()
            if kind < 0.35:  # white-ish paper-like things (notes, cards): the hard negatives
                base = rng.uniform(200, 250) * rng.uniform(0.92, 1.0, 3)
            elif kind < 0.7:
                base = np.full(3, rng.uniform(10, 60))
            else:
                base = rng.uniform(0, 255, 3)
            obj = _shaded_colour(layer, base.astype(np.float32), rng, s * 0.03)
            colour = colour * (1 - layer[..., None]) + obj * layer[..., None]
            alpha = np.maximum(alpha, layer)
        shadow = _shadow_of(alpha, tuple(rng.uniform(-1, 1, 2) * 0.01 * max(h, w)), 0.01 * max(h, w))
        keep_page = (sample.mask == 0).astype(np.float32)
        alpha = alpha * keep_page
        shadow = shadow * keep_page
        return {"alpha": alpha, "colour": colour, "shadow": shadow, "shadow_strength": 0.35}
