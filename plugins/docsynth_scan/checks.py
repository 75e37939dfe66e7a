"""Checks that keep a scanner from emitting garbage: is this quad a plausible page, and does it
agree with the page mask the same model predicted?

- :func:`implausible`: the reason a quad cannot be a photographed page (not convex or
  self-intersecting, a corner angle beyond 20-160 degrees, a side under 3% of the photo, opposite
  sides more than 5x apart, tiny, or reaching far outside the photo), or "" when it is fine.
- :func:`mask_agreement`: IoU of the quad with the thresholded page mask, and the share of
  points along the quad's sides where the mask changes from page (inside) to background
  (outside) — or where the side leaves the photo, since a page may run out of the frame.
- :func:`calibrated_confidence`: one number in [0, 1] from the two agreements and the corner
  peaks. It is meant to be read as "0.5 or more: trust the quad"; ``docsynth evaluate``
  reports the share of quads with Jaccard < 0.9 among those with confidence >= 0.5.

These use only the model's own outputs (no ground truth, nothing fitted to photos).
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.geometry import mask_iou, quad_area, quad_mask
from docsynth_scan.lines import is_convex

WORK = 256  # working size (px, longer side) of the mask checks


def implausible(corners: np.ndarray | None, width: int, height: int) -> str:
    if corners is None:
        return "no quad"
    c = np.asarray(corners, np.float64)
    if c.shape != (4, 2) or not np.isfinite(c).all():
        return "not four finite corners"
    if not is_convex(c):
        return "quad is not convex (or crosses itself)"
    diag = float(np.hypot(width, height))
    sides = np.linalg.norm(np.roll(c, -1, axis=0) - c, axis=1)
    if sides.min() < 0.03 * diag:
        return "a side is shorter than 3% of the photo"
    for a, b in ((0, 2), (1, 3)):
        if max(sides[a], sides[b]) > 5 * min(sides[a], sides[b]):
            return "opposite sides differ more than 5x"
    e1 = np.roll(c, -1, axis=0) - c
    e0 = c - np.roll(c, 1, axis=0)
    cos = -(e0 * e1).sum(1) / np.maximum(1e-9, np.linalg.norm(e0, axis=1) * np.linalg.norm(e1, axis=1))
    angles = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    if angles.min() < 20 or angles.max() > 160:
        return "a corner angle is beyond 20-160 degrees"
    if quad_area(c) < 0.005 * width * height:
        return "quad covers under 0.5% of the photo"
    pad = 0.25 * max(width, height)
    if (c[:, 0] < -pad).any() or (c[:, 0] > width + pad).any() or (c[:, 1] < -pad).any() or (c[:, 1] > height + pad).any():
        return "a corner lies far outside the photo"
    return ""


def working_map(page_prob: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The page map at the checks' working size, and the x/y scale factors to it. Linear
    sampling is enough: the map is an upsampled model output, smooth at this scale."""
    h, w = page_prob.shape
    f = min(1.0, WORK / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(page_prob, size, interpolation=cv2.INTER_LINEAR) if f < 1 else page_prob
    return small.astype(np.float32), size[0] / w, size[1] / h


def mask_agreement(corners: np.ndarray, page_prob: np.ndarray | tuple, samples: int = 32) -> tuple[float, float]:
    """(IoU of the quad with page_prob > 0.5, share of side points that sit on a mask edge).
    ``page_prob`` may be a :func:`working_map` already made (several quads, one resize)."""
    small, fx, fy = page_prob if isinstance(page_prob, tuple) else working_map(page_prob)
    sh, sw = small.shape
    c = np.asarray(corners, np.float64) * (fx, fy)
    iou = mask_iou(quad_mask(c, (sh, sw)), small > 0.5)
    centre = c.mean(axis=0)
    t = (np.arange(samples) + 0.5) / samples
    on_edge = []
    step = max(1.5, 0.015 * max(sh, sw))
    for k in range(4):
        a, b = c[k], c[(k + 1) % 4]
        pts = a + t[:, None] * (b - a)
        d = b - a
        n = np.array([-d[1], d[0]]) / max(1e-9, float(np.linalg.norm(d)))
        if np.dot(centre - a, n) > 0:
            n = -n  # outward
        inside, outside = pts - n * step, pts + n * step
        out_frame = (outside[:, 0] < 0) | (outside[:, 0] >= sw) | (outside[:, 1] < 0) | (outside[:, 1] >= sh)
        pin = cv2.remap(small, inside[:, 0:1].astype(np.float32) - 0.5, inside[:, 1:2].astype(np.float32) - 0.5,
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0]
        pout = cv2.remap(small, outside[:, 0:1].astype(np.float32) - 0.5, outside[:, 1:2].astype(np.float32) - 0.5,
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0]
        on_edge.append(((pin > 0.5) & ((pout < 0.5) | out_frame)).mean())
    return float(iou), float(np.mean(on_edge))


def calibrated_confidence(iou: float, edge: float, corner_score: float | None = None) -> float:
    """[0, 1]: 1 when the quad matches the mask and its sides run along mask edges; the model's
    corner peak scores (when it has heatmaps) scale it down when the corners are uncertain."""
    c = np.clip((iou - 0.75) / 0.2, 0, 1) * np.clip((edge - 0.4) / 0.5, 0, 1)
    if corner_score is not None:
        c *= 0.5 + 0.5 * np.clip(corner_score / 0.5, 0, 1)
    return float(np.clip(c, 0, 1))
