"""A hand holding a page or a card: the palm behind it, the thumb over one corner.

This is how people photograph ID cards and receipts: the document rests on the fingers and
the thumb pins one corner. Two parts, drawn at different times by the compositor:

- :func:`draw_palm` (before the page is pasted): palm and fingers behind the page around the
  chosen corner, reaching out of the frame. Background only: no mask or corner change.
- :func:`thumb` (after the page is pasted): a thumb lying over the corner, returned as a
  scene object. Drawing it cuts the covered pixels from the mask (the mask marks *visible*
  page); the corners stay where the straight page edges meet, as in real annotations.
"""

from __future__ import annotations

import cv2
import numpy as np

from .scene import _ONE, _SHIFT, SKIN_BGR, Obj, _pts, draw_obj, make_obj


def _skin(rng: np.random.Generator) -> np.ndarray:
    return np.clip(SKIN_BGR[int(rng.integers(len(SKIN_BGR)))] * rng.uniform(0.85, 1.1), 0, 255)


def hold_geometry(quad: np.ndarray, rng: np.random.Generator) -> dict:
    """Which corner is held and from where: the corner index, the outward direction from the
    page centre through it, the page size (sqrt of the area) and a skin tone."""
    quad = np.asarray(quad, np.float64)
    k = int(rng.integers(4))
    centre = quad.mean(axis=0)
    d = quad[k] - centre
    d /= max(1e-6, float(np.linalg.norm(d)))
    e1, e2 = quad[(k + 1) % 4] - quad[k], quad[(k + 3) % 4] - quad[k]
    size = float(np.sqrt(max(1.0, abs(e1[0] * e2[1] - e1[1] * e2[0]))))
    return {"k": k, "dir": d, "size": size, "tone": _skin(rng), "side": float(rng.choice([-1.0, 1.0]))}


def draw_palm(image: np.ndarray, quad: np.ndarray, hold: dict, rng: np.random.Generator) -> np.ndarray:
    """Palm and fingers behind the page around the held corner (returns a new image)."""
    out = image.copy()
    frame = image.shape[:2]
    c, d, s = np.asarray(quad, np.float64)[hold["k"]], hold["dir"], hold["size"]
    perp = np.array([-d[1], d[0]]) * hold["side"]
    width = s * rng.uniform(0.45, 0.75)
    a = c + d * s * 0.05 + perp * s * rng.uniform(0.0, 0.25)
    b = c + d * s * rng.uniform(0.9, 1.4) + perp * s * rng.uniform(-0.2, 0.4)

    def palm(layer, off):
        cv2.line(layer, tuple(_pts(a - off)), tuple(_pts(b - off)), 1.0, int(width), cv2.LINE_AA, _SHIFT)
        # fingers fanning out under the page, their tips peeking past the far edges
        for t in np.linspace(-0.6, 0.6, 4):
            tip = a - d * s * rng.uniform(0.25, 0.5) + perp * s * (0.35 + t * 0.3)
            cv2.line(layer, tuple(_pts(a - off)), tuple(_pts(tip - off)), 1.0, max(2, int(width * 0.22)),
                     cv2.LINE_AA, _SHIFT)

    obj = make_obj(frame, np.array([a, b, a - d * s * 0.5 + perp * s * 0.6, a - d * s * 0.5]), width / 2 + 4, palm,
                   hold["tone"] * 0.95, width * 0.25, tuple(d * s * 0.02), s * 0.03, rng.uniform(0.2, 0.4), soften=1.0)
    if obj is not None:
        draw_obj(out, obj)
    return out


def thumb(frame: tuple[int, int], quad: np.ndarray, hold: dict, rng: np.random.Generator) -> Obj | None:
    """A thumb from outside the page over the held corner, tip inside the page."""
    c, d, s = np.asarray(quad, np.float64)[hold["k"]], hold["dir"], hold["size"]
    perp = np.array([-d[1], d[0]]) * hold["side"]
    fw = s * rng.uniform(0.1, 0.17)
    tip = c - d * s * rng.uniform(0.04, 0.16) + perp * s * rng.normal(0, 0.03)
    mid = c + d * s * rng.uniform(0.1, 0.2) + perp * s * rng.uniform(0.05, 0.15)
    base = mid + (d + perp * rng.uniform(0.2, 0.8)) * s * rng.uniform(0.3, 0.5)

    def draw(layer, off):
        cv2.line(layer, tuple(_pts(base - off)), tuple(_pts(mid - off)), 1.0, max(2, int(fw * 1.15)), cv2.LINE_AA, _SHIFT)
        cv2.line(layer, tuple(_pts(mid - off)), tuple(_pts(tip - off)), 1.0, max(2, int(fw)), cv2.LINE_AA, _SHIFT)

    obj = make_obj(frame, np.array([base, mid, tip]), fw, draw, hold["tone"], fw * 0.35,
                   tuple(-d * fw * 0.3 + rng.uniform(-1, 1, 2)), fw * 0.4, rng.uniform(0.25, 0.45), soften=0.6)
    if obj is None:
        return None
    # a lighter nail near the tip
    nail = np.zeros_like(obj.alpha)
    dn = (tip - mid) / max(1e-6, float(np.linalg.norm(tip - mid)))
    centre = tip - dn * fw * 0.45 - (obj.x0, obj.y0)
    cv2.ellipse(nail, tuple(_pts(centre)), (int(fw * 0.32 * _ONE), int(fw * 0.25 * _ONE)),
                float(np.degrees(np.arctan2(dn[1], dn[0]))), 0, 360, 1.0, -1, cv2.LINE_AA, _SHIFT)
    nail = cv2.GaussianBlur(nail, (0, 0), max(0.5, fw * 0.08)) * obj.alpha * 0.4
    obj.colour += (np.float32(235) - obj.colour) * nail[..., None]
    return obj
