"""How one predicted page quad is scored against the truth: the SmartDoc 2015 Jaccard index and
the image-pixel mask IoU. Training (real-photo metrics), export-model (verification) and
``evaluate`` (the SmartDoc protocol over a set of photos, :mod:`docsynth.evaluate.smartdoc`) all
score with these; the polygon primitives (area, simple-quad test) are in :mod:`docsynth.geometry`.

SmartDoc 2015 (challenge 1) scores a predicted quad in the *document's* frame: the homography
that takes the ground-truth quad to a rectangle also maps the predicted quad, and the score is
the Jaccard index (intersection over union) of the two polygons there. A missing prediction
scores 0, and so does a self-intersecting one (or one that crosses the page plane's horizon).

The rectangle: SmartDoc used each document's physical size; we use the ground-truth quad's own
mean side lengths (width = mean of top and bottom, height = mean of left and right). The choice
cannot change the score: two rectangles differ by an axis scaling, an affine map, and affine
maps keep ratios of areas, so every rectangle gives the same Jaccard index.

Beside it, ``image_mask_iou`` is the IoU of the predicted page region (the model's mask when
there is one, else the predicted quad) and the ground-truth quad, in image pixels, clipped to
the photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.geometry import cross, is_simple_quad, mask_iou, polygon_area, quad_mask


def clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: the part of ``subject`` (any simple polygon) inside the convex
    polygon ``clip``. For a concave subject the result may contain zero-width bridges, which
    do not change its area."""
    clip = np.asarray(clip, dtype=np.float64)
    if polygon_area(clip) < 0:
        clip = clip[::-1]
    out = [np.asarray(p, dtype=np.float64) for p in np.asarray(subject, dtype=np.float64)]
    for k in range(len(clip)):
        a, b = clip[k], clip[(k + 1) % len(clip)]
        pts, out = out, []
        if not pts:
            break
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cur_in, prev_in = cross(a, b, cur) >= 0, cross(a, b, prev) >= 0
            if cur_in != prev_in:
                out.append(_line_cross(prev, cur, a, b))
            if cur_in:
                out.append(cur)
    return np.array(out).reshape(-1, 2)


def _line_cross(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where segment pq crosses the infinite line ab."""
    dp, dq = cross(a, b, p), cross(a, b, q)
    t = dp / (dp - dq)
    return p + t * (q - p)


def polygon_jaccard(subject: np.ndarray, convex: np.ndarray) -> float:
    """Intersection over union of a simple polygon and a convex polygon."""
    inter = abs(polygon_area(clip_polygon(subject, convex)))
    union = abs(polygon_area(subject)) + abs(polygon_area(convex)) - inter
    return float(inter / union) if union > 0 else 0.0


def document_frame(gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(homography taking the ground-truth quad to a rectangle, that rectangle's corners)."""
    g = np.asarray(gt, dtype=np.float64).reshape(4, 2)
    width = 0.5 * (np.hypot(*(g[1] - g[0])) + np.hypot(*(g[2] - g[3])))
    height = 0.5 * (np.hypot(*(g[3] - g[0])) + np.hypot(*(g[2] - g[1])))
    rect = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    return cv2.getPerspectiveTransform(g.astype(np.float32), rect.astype(np.float32)).astype(np.float64), rect


def jaccard_smartdoc(gt: np.ndarray, pred: np.ndarray | None) -> float:
    """SmartDoc 2015 score of one prediction (see the module docstring); ``pred`` None = 0."""
    if not is_simple_quad(gt):
        raise ValueError("ground-truth quad is degenerate or self-intersecting")
    if pred is None or not is_simple_quad(pred):
        return 0.0
    h, rect = document_frame(gt)
    p = np.hstack([np.asarray(pred, dtype=np.float64).reshape(4, 2), np.ones((4, 1))]) @ h.T
    if (p[:, 2] <= 1e-12).any():  # beyond the horizon of the page plane: hopelessly wrong
        return 0.0
    mapped = p[:, :2] / p[:, 2:]
    if not is_simple_quad(mapped):
        return 0.0
    return polygon_jaccard(mapped, rect)


def image_mask_iou(gt: np.ndarray, size: tuple[int, int], pred: np.ndarray | None = None,
                   mask: np.ndarray | None = None) -> float:
    """IoU in image pixels of the predicted page (``mask`` if given, else the ``pred`` quad;
    nothing = empty) and the ground-truth quad; ``size`` is (width, height)."""
    w, h = size
    truth = quad_mask(gt, (h, w))
    if mask is not None:
        predicted = np.asarray(mask) > 0
    elif pred is not None and is_simple_quad(pred):
        predicted = quad_mask(pred, (h, w))
    else:
        predicted = np.zeros((h, w), bool)
    return mask_iou(predicted, truth)
