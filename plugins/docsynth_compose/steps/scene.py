"""Scene steps: things in front of (or around) the page in real photos.

- ``occlusion``: solid objects (phone, mug, book, sticky note) overlapping the page edge; the
  mask loses the covered pixels (it marks *visible* page) and the sample is flagged ``occluded``;
  corners stay where the page's edges meet.
- ``hand``: fingers and a palm holding the page at one edge, skin-toned and shaded, with a
  soft shadow; same mask rule, flagged ``occluded``.
- ``distractors`` (:mod:`.distractors`): thin objects crossing the page, and table edges.
- ``clutter``: page-like and object-like shapes on the table (cards, notes, devices) that are
  not the page, to learn "small page in a cluttered frame". They never cover the page.

Each object is rasterised (anti-aliased) only inside its own bounding box, shaded darker at
its rim like a rounded object lit from above, and drawn with a soft shadow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass
class Obj:
    """One object rasterised in its region of the frame (x0, y0 = top-left of the region)."""

    x0: int
    y0: int
    alpha: np.ndarray  # float32 (h, w) coverage
    colour: np.ndarray  # float32 (h, w, 3)
    shadow: np.ndarray | None = None  # float32 (h, w) in [0, 1], same region
    shadow_strength: float = 0.0


def rasterise(frame: tuple[int, int], points: np.ndarray, margin: float,
              draw: Callable[[np.ndarray, np.ndarray], None]) -> tuple[int, int, np.ndarray] | None:
    """Call ``draw(layer, offset)`` on a float32 layer covering ``points`` +- margin (clipped to
    the frame); ``offset`` is subtracted from frame coordinates to get layer coordinates."""
    h, w = frame
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    x0, y0 = np.floor(pts.min(axis=0) - margin).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0) + margin).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    layer = np.zeros((y1 - y0, x1 - x0), np.float32)
    draw(layer, np.array([x0, y0], np.float64))
    return x0, y0, layer


def soft(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float32 field; wide blurs run on a shrunk copy (same look, a fraction
    of the cost: the result is smooth anyway)."""
    sigma = max(0.5, float(sigma))
    h, w = field.shape[:2]
    k = int(sigma // 2)
    if k < 2 or min(h, w) < 4 * k:
        return cv2.GaussianBlur(field, (0, 0), sigma)
    small = cv2.resize(field, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / k)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def muted(rng: np.random.Generator) -> np.ndarray:
    """A random object colour, pulled towards grey (real objects are rarely pure primaries)."""
    colour = rng.uniform(0, 255, 3)
    return colour + (colour.mean() - colour) * rng.uniform(0.3, 0.8)


def shaded(alpha: np.ndarray, base: np.ndarray, rounded: float) -> np.ndarray:
    """Object colour: full in the middle, darker towards the rim (a rounded object lit from above)."""
    inner = soft(alpha, max(1.0, rounded))
    shade = 0.65 + 0.45 * np.minimum(inner, 1.0)
    return np.asarray(base, np.float32)[None, None, :] * shade[..., None]


def soft_shadow(alpha: np.ndarray, offset: tuple[float, float], blur: float) -> np.ndarray:
    m = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
    h, w = alpha.shape
    moved = cv2.warpAffine(alpha, m, (w, h))
    return soft(moved, blur)


def make_obj(frame, points, margin, draw, base, rounded, shadow_offset=(0.0, 0.0), shadow_blur=0.0,
             shadow_strength=0.0, soften=0.0) -> Obj | None:
    """Rasterise, shade and give a shadow to one object. The region includes room for the
    shadow (its offset and blur)."""
    room = margin + abs(shadow_offset[0]) + abs(shadow_offset[1]) + 3 * shadow_blur
    made = rasterise(frame, points, room, draw)
    if made is None:
        return None
    x0, y0, alpha = made
    if soften > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soften)
    if not alpha.any():
        return None
    shadow = soft_shadow(alpha, shadow_offset, shadow_blur) if shadow_strength > 0 else None
    return Obj(x0, y0, alpha, shaded(alpha, base, rounded), shadow, shadow_strength)


def draw_obj(image: np.ndarray, obj: Obj) -> None:
    """Shadow, then object, blended into ``image`` in place."""
    h, w = obj.alpha.shape
    view = image[obj.y0:obj.y0 + h, obj.x0:obj.x0 + w]
    a = np.asarray(obj.alpha, np.float32)
    if obj.shadow is not None:  # the table keeps 1 - strength * shadow of its light, outside the object
        keep = 1 - obj.shadow_strength * (obj.shadow * (1 - a))
        below = cv2.multiply(view, cv2.merge([keep, keep, keep]), dtype=cv2.CV_32F)
    else:
        below = view.astype(np.float32)
    colour = np.ascontiguousarray(obj.colour, dtype=np.float32)
    view[:] = cv2.convertScaleAbs(cv2.blendLinear(colour, below, a, 1 - a))  # rounded, saturated to 8 bits


def cut_mask(mask: np.ndarray, obj: Obj) -> None:
    """Remove the pixels ``obj`` covers from ``mask`` (in place)."""
    h, w = obj.alpha.shape
    view = mask[obj.y0:obj.y0 + h, obj.x0:obj.x0 + w]
    view[obj.alpha >= 0.5] = 0


def keep_off_page(obj: Obj, page_mask: np.ndarray) -> None:
    """Clear ``obj`` (and its shadow) where the page is: an object placed beside the page must
    not hide page pixels the label still claims (in place)."""
    h, w = obj.alpha.shape
    free = (page_mask[obj.y0:obj.y0 + h, obj.x0:obj.x0 + w] == 0).astype(np.float32)
    obj.alpha *= free
    if obj.shadow is not None:
        obj.shadow *= free


def edge_point(corners: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A random point on a random page edge, the inward unit normal there, and the page size."""
    k = int(rng.integers(4))
    a, b = corners[k], corners[(k + 1) % 4]
    point = a + (b - a) * rng.uniform(0.15, 0.85)
    tangent = (b - a) / max(1e-6, np.linalg.norm(b - a))
    normal = np.array([-tangent[1], tangent[0]])
    if np.dot(corners.mean(axis=0) - point, normal) < 0:
        normal = -normal
    d1, d2 = corners[1] - corners[0], corners[3] - corners[0]
    size = float(np.sqrt(max(1.0, abs(d1[0] * d2[1] - d1[1] * d2[0]))))
    return point, normal, size


def _page_or_centre(sample: Sample) -> np.ndarray:
    h, w = sample.image.shape[:2]
    if sample.corners is not None:
        return np.asarray(sample.corners, np.float64)
    return np.array([[0.3 * w, 0.3 * h], [0.7 * w, 0.3 * h], [0.7 * w, 0.7 * h], [0.3 * w, 0.7 * h]])


class _Objects(Step):
    """Draws the objects ``get_params`` returns; opaque ones (``cuts = True``) remove the
    pixels they cover from the mask and flag the sample ``occluded`` when page pixels went.
    ``get_params`` may also return ``cutting``, the objects that cut (the others, e.g. thin
    props or objects kept off the page, are only drawn)."""

    cuts = True

    def apply(self, image, objs, **params):
        out = image.copy()
        for obj in objs:
            draw_obj(out, obj)
        return out

    def apply_to_mask(self, mask, objs, cutting=None, **params):
        cutting = objs if cutting is None else cutting
        if not self.cuts or not cutting:
            return mask
        out = mask.copy()
        for obj in cutting:
            cut_mask(out, obj)
        return out

    def apply_to_keypoints(self, corners, **params):
        return corners  # an occluder hides part of the page; the page itself does not move

    def run(self, sample: Sample, rng: np.random.Generator) -> Sample:
        out = super().run(sample, rng)
        if self.cuts and out.corners is not None and cv2.countNonZero(out.mask) < cv2.countNonZero(sample.mask):
            out.flags = set(out.flags) | {"occluded"}
        return out


@register_step
class Hand(_Objects):
    """A hand holding the page at one edge: a thumb or 1-4 fingers reach over the edge from a
    palm outside the page. Each finger is its own rounded, rim-shaded object (so the gaps
    between fingers read as such), bends a little at the knuckle and has a lighter nail."""

    name = "hand"
    defaults = {"fingers": [1, 4], "palm_p": 0.7, "width": [0.06, 0.09], "reach": [0.04, 0.14],
                "shadow": [0.2, 0.45]}
    case = "hand"

    def get_params(self, rng, sample):
        frame = sample.image.shape[:2]
        point, normal, size = edge_point(_page_or_centre(sample), rng)
        tangent = np.array([-normal[1], normal[0]])
        n = int(rng.integers(int(self.fingers[0]), int(self.fingers[1]) + 1))
        fw = uniform(rng, self.width) * size
        tone = np.clip(SKIN_BGR[int(rng.integers(len(SKIN_BGR)))] * rng.uniform(0.85, 1.1), 0, 255)
        strength = uniform(rng, self.shadow)
        offset = tuple(normal * fw * rng.uniform(0.2, 0.5) + rng.uniform(-2, 2, 2))
        knuckles = point - normal * rng.uniform(0.08, 0.2) * size  # knuckle line, outside the page
        objs = []
        if rng.random() < self.palm_p:
            # Palm and forearm: a broad capsule from the knuckles away from the page (as wide as
            # four fingers whatever number reach over), then a slightly narrower arm.
            width = 4.6 * fw * rng.uniform(0.9, 1.1)
            wrist = knuckles - normal * (rng.uniform(0.35, 0.45) * size) + tangent * rng.normal(0, 0.3) * fw
            elbow = wrist - (normal + tangent * rng.normal(0, 0.3)) * rng.uniform(0.6, 1.0) * size
            start = knuckles - normal * width * 0.35

            def arm(layer, off, a=start, b=wrist, c=elbow, w=width):
                cv2.line(layer, tuple(_pts(a - off)), tuple(_pts(b - off)), 1.0, int(w), cv2.LINE_AA, _SHIFT)
                cv2.line(layer, tuple(_pts(b - off)), tuple(_pts(c - off)), 1.0, int(w * 0.8), cv2.LINE_AA, _SHIFT)
            obj = make_obj(frame, np.array([start, wrist, elbow]), width / 2 + 2, arm, tone * 0.95, fw * 0.9, offset,
                           fw * 0.6, strength, soften=0.8)
            if obj:
                objs.append(obj)
        spread = np.radians(rng.uniform(3, 12))
        for i in range(n):
            k = i - (n - 1) / 2
            turn = k * spread + rng.normal(0, 0.05)
            d = normal * np.cos(turn) + tangent * np.sin(turn)
            base = knuckles + tangent * k * fw * 1.1
            total = np.dot(point - knuckles, normal) + uniform(rng, self.reach) * size * (0.75 if abs(k) > 1 else 1)
            bend = np.radians(rng.normal(0, 8))
            mid = base + d * total * 0.55
            d2 = d * np.cos(bend) + np.array([-d[1], d[0]]) * np.sin(bend)
            tip = mid + d2 * total * 0.45
            w1, w2 = fw * rng.uniform(0.9, 1.1), fw * rng.uniform(0.78, 0.92)
            nail = tip - d2 * w2 * 0.55

            def finger(layer, off, b=base, m=mid, t=tip, w1=w1, w2=w2):
                cv2.line(layer, tuple(_pts(b - off)), tuple(_pts(m - off)), 1.0, max(2, int(w1)), cv2.LINE_AA, _SHIFT)
                cv2.line(layer, tuple(_pts(m - off)), tuple(_pts(t - off)), 1.0, max(2, int(w2)), cv2.LINE_AA, _SHIFT)
            obj = make_obj(frame, np.array([base, mid, tip]), w1, finger, tone, w2 * 0.35, offset, fw * 0.5, strength,
                           soften=0.6)
            if obj is None:
                continue
            nail_layer = np.zeros_like(obj.alpha)
            c = nail - (obj.x0, obj.y0)
            cv2.ellipse(nail_layer, tuple(_pts(c)), (int(w2 * 0.3 * _ONE), int(w2 * 0.22 * _ONE)),
                        float(np.degrees(np.arctan2(d2[1], d2[0]))), 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
            nail_layer = cv2.GaussianBlur(nail_layer, (0, 0), max(0.5, w2 * 0.08)) * obj.alpha * 0.45
            obj.colour += (np.float32(235) - obj.colour) * nail_layer[..., None]
            objs.append(obj)
        return {"objs": objs}


@register_step
class Occlusion(_Objects):
    """1..``count`` solid objects over the page edge: rounded rectangles (phones, books, sticky
    notes) and ellipses (mugs seen from above)."""

    name = "occlusion"
    defaults = {"count": [1, 2], "size": [0.12, 0.35], "shadow": [0.2, 0.5]}
    case = "occlusion"

    def get_params(self, rng, sample):
        frame = h, w = sample.image.shape[:2]
        objs = []
        for _ in range(int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))):
            if sample.corners is not None:
                point, normal, size = edge_point(np.asarray(sample.corners), rng)
                centre = point - normal * rng.uniform(-0.05, 0.15) * size
            else:
                size, centre = min(h, w), np.array([rng.uniform(0, w), rng.uniform(0, h)])
            s = uniform(rng, self.size) * size
            kind = int(rng.integers(3))
            if kind == 2:
                axes = (s / 2, s / 2 * rng.uniform(0.8, 1.0))
                outline = np.array([centre - s / 2, centre + s / 2])

                def draw(layer, off, c=centre, ax=axes):
                    cv2.ellipse(layer, tuple(_pts(c - off)), (int(ax[0] * _ONE), int(ax[1] * _ONE)), 0, 0, 360,
                                1.0, -1, cv2.LINE_AA, _SHIFT)
            else:
                aspect = rng.uniform(1.3, 2.2) if kind == 0 else rng.uniform(0.9, 1.1)
                outline = cv2.boxPoints(((float(centre[0]), float(centre[1])), (float(s), float(s * aspect)),
                                         float(rng.uniform(0, 180)))).astype(np.float64)
                radius = max(1, int(s * 0.06))

                def draw(layer, off, box=outline, r=radius):
                    # A rounded rectangle: the box shrunk by r, drawn with a line of width 2r.
                    c = box.mean(axis=0)
                    inner = c + (box - c) * (1 - 2 * r / max(1.0, np.linalg.norm(box[0] - c) * 1.41))
                    cv2.fillPoly(layer, [_pts(inner - off)], 1.0, cv2.LINE_AA, _SHIFT)
                    cv2.polylines(layer, [_pts(inner - off)], True, 1.0, 2 * r, cv2.LINE_AA, _SHIFT)
            if rng.random() < 0.5:
                base = muted(rng)
            else:
                base = np.full(3, rng.uniform(10, 60) if rng.random() < 0.5 else rng.uniform(190, 250))
            offset = tuple(rng.uniform(-1, 1, 2) * 0.02 * min(h, w))
            obj = make_obj(frame, outline, 2, draw, base, s * 0.05, offset, 0.015 * min(h, w), uniform(rng, self.shadow))
            if obj:
                objs.append(obj)
        return {"objs": objs}


@register_step
class Clutter(_Objects):
    """Objects on the table beside the page: cards, sticky notes, devices. They never cover the
    page (it stays whole and unflagged); white ones are page-like hard negatives."""

    name = "clutter"
    defaults = {"count": [1, 4], "size": [0.08, 0.3]}
    cuts = False
    case = "clutter"

    def get_params(self, rng, sample):
        frame = h, w = sample.image.shape[:2]
        objs = []
        for _ in range(int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))):
            s = uniform(rng, self.size) * max(h, w)
            aspect = float(rng.choice([1.586, 1.0, 2.0, 0.5, 1.4]))
            kind = rng.random()
            if kind < 0.35:
                # White things (sticky notes, cards, receipts' stubs) stay small and square-ish,
                # so they teach "not every white shape is the page" without looking like one.
                s *= 0.45
                aspect = float(rng.choice([1.0, 1.586]))
                base = rng.uniform(200, 250) * rng.uniform(0.92, 1.0, 3)
            elif kind < 0.7:
                base = np.full(3, rng.uniform(10, 60))
            else:
                base = muted(rng)
            box = cv2.boxPoints(((rng.uniform(0, w), rng.uniform(0, h)), (float(s), float(s / aspect)),
                                 float(rng.uniform(0, 180)))).astype(np.float64)

            def draw(layer, off, b=box):
                cv2.fillPoly(layer, [_pts(b - off)], 1.0, cv2.LINE_AA, _SHIFT)

            offset = tuple(rng.uniform(-1, 1, 2) * 0.01 * max(h, w))
            obj = make_obj(frame, box, 2, draw, base, s * 0.03, offset, 0.01 * max(h, w), 0.35)
            if obj is None:
                continue
            keep_off_page(obj, sample.mask)
            objs.append(obj)
        return {"objs": objs}
