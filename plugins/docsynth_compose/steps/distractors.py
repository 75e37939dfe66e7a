"""Scene step ``distractors``: thin high-contrast objects crossing the page and the frame
(cables, pens) and table edges behind the page. Thin objects leave the mask whole (the page
continues under a cable; a mask cut into pieces by a cable would teach a scanner to split
pages). Objects are drawn as in :mod:`.scene`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from docsynth.kinds import Sample

from .base import register_step
from .scene import _SHIFT, _Objects, _page_or_centre, _pts, edge_point, make_obj, muted


def _bezier(p0, p1, p2, p3, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3


def _clip_polyline(pts: np.ndarray, w: int, h: int, pad: float) -> np.ndarray:
    """Keep the part of a polyline near the frame (the rest only costs raster time)."""
    inside = (pts[:, 0] > -pad) & (pts[:, 0] < w + pad) & (pts[:, 1] > -pad) & (pts[:, 1] < h + pad)
    idx = np.nonzero(inside)[0]
    if len(idx) == 0:
        return pts[:0]
    return pts[max(0, idx[0] - 1): idx[-1] + 2]


@register_step
class Distractors(_Objects):
    """Thin high-contrast lines: cables (smooth curves crossing page and frame), pens (short
    thick straight strokes over a page edge) and table edges (a straight boundary behind the
    page between two surfaces). The page stays whole in the mask under thin objects."""

    name = "distractors"
    defaults = {"count": [1, 3], "kinds": ["cable", "pen", "table_edge"], "thickness": [2, 7]}
    cuts = False
    case = "distractor"

    def get_params(self, rng, sample):
        frame = h, w = sample.image.shape[:2]
        corners = _page_or_centre(sample)
        centre = corners.mean(axis=0)
        objs, edges = [], []
        for _ in range(int(rng.integers(int(self.count[0]), int(self.count[1]) + 1))):
            kind = str(self.kinds[int(rng.integers(len(self.kinds)))])
            if kind == "table_edge":
                edges.append({"angle": rng.uniform(0, np.pi), "x": rng.uniform(0.1, 0.9) * w,
                              "y": rng.uniform(0.1, 0.9) * h, "bevel": rng.uniform(0.0, 0.6),
                              "gain": rng.uniform(0.25, 0.6) if rng.random() < 0.6 else rng.uniform(1.2, 1.6),
                              "tint": rng.uniform(0.85, 1.15, 3)})
                continue
            if rng.random() < 0.25:
                base = muted(rng)
            elif rng.random() < 0.6:
                base = rng.uniform(5, 45, 3)
            else:
                base = rng.uniform(200, 250, 3)
            if kind == "cable":
                # Enters and leaves through the frame border, bending through a point on the page.
                ang = rng.uniform(0, np.pi)
                d = np.array([np.cos(ang), np.sin(ang)]) * np.hypot(w, h)
                through = centre + (corners[int(rng.integers(4))] - centre) * rng.uniform(0, 0.9)
                bend = rng.normal(0, 0.25, (2, 2)) * np.hypot(w, h)
                pts = _bezier(through - d, through - d / 3 + bend[0], through + d / 3 + bend[1], through + d, 96)
                thick = int(rng.integers(int(self.thickness[0]), int(self.thickness[1]) + 1))
            else:  # pen
                point, _, _ = edge_point(corners, rng)
                ang = rng.uniform(0, np.pi)
                d = np.array([np.cos(ang), np.sin(ang)]) * rng.uniform(0.15, 0.3) * max(h, w)
                pts = np.stack([point - d * rng.uniform(0.2, 0.8), point + d])
                thick = int(rng.integers(int(self.thickness[0]) + 2, int(self.thickness[1]) + 5))
            pts = _clip_polyline(pts, w, h, thick + 8)
            if len(pts) < 2:
                continue
            gloss = rng.uniform(0.1, 0.4)

            def draw(layer, off, p=pts, t=thick):
                cv2.polylines(layer, [_pts(p - off)], False, 1.0, t, cv2.LINE_AA, _SHIFT)

            obj = make_obj(frame, pts, thick + 2, draw, base, thick * 0.4, tuple(rng.uniform(1, 4, 2)), 2.0, 0.35)
            if obj is None:
                continue
            # A specular highlight along the object: what makes cables look round and glossy.
            hi = np.zeros_like(obj.alpha)
            off = np.array([obj.x0, obj.y0], np.float64) - thick * 0.2
            cv2.polylines(hi, [_pts(pts - off)], False, 1.0, max(1, thick // 3), cv2.LINE_AA, _SHIFT)
            obj.colour += (255 - obj.colour) * (hi * obj.alpha * gloss)[..., None]
            objs.append(obj)
        return {"objs": objs, "edges": edges}

    def run(self, sample: Sample, rng: np.random.Generator) -> Sample:
        # Table edges go behind the page, so this step needs the sample's mask.
        params = self.get_params(rng, sample)
        image = sample.image
        for edge in params["edges"]:
            image = table_edge(image, sample.mask, edge)
        image = self.apply(image, params["objs"])
        extra = dict(sample.extra)
        extra["cases"] = sorted(set(extra.get("cases", ())) | {self.case})
        return replace(sample, image=image, flags=set(sample.flags), extra=extra)  # keeps the page geometry


def table_edge(image: np.ndarray, page_mask: np.ndarray, edge: dict[str, Any]) -> np.ndarray:
    """The far side of a straight line becomes another surface (floor, desk side): darker or
    lighter, with a thin bright bevel along the edge; the page (mask) stays in front."""
    h, w = image.shape[:2]
    d = np.array([np.cos(edge["angle"]), np.sin(edge["angle"])])
    n = np.array([-d[1], d[0]])
    p = np.array([edge["x"], edge["y"]])
    big = 4.0 * (h + w)
    far = np.zeros((h, w), np.float32)
    cv2.fillPoly(far, [_pts(np.array([p - d * big, p + d * big, p + d * big + n * big, p - d * big + n * big]))],
                 1.0, cv2.LINE_AA, _SHIFT)
    other = cv2.transform(image, np.diag(edge["gain"] * np.asarray(edge["tint"], np.float64)).astype(np.float32))
    out = cv2.blendLinear(other, image, far, 1 - far)
    if edge["bevel"] > 0.02:
        lit = out.copy()
        cv2.line(lit, tuple(_pts(p - d * big)), tuple(_pts(p + d * big)), (240, 240, 240), 2, cv2.LINE_AA, _SHIFT)
        out = cv2.addWeighted(lit, float(edge["bevel"]), out, 1 - float(edge["bevel"]), 0)
    cv2.copyTo(image, page_mask, out)  # the page is in front of the edge
    return out
