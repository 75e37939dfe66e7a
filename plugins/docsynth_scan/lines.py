"""Straight lines for the scan post-processors: robust fits, intersections, quads from a mask.

A line is a NumPy array ``(a, b, c)`` with ``a*x + b*y = c`` and ``a**2 + b**2 = 1``, so
``a*x + b*y - c`` is the signed distance of a point. Points are in pixel-edge coordinates
(see :mod:`docsynth.kinds`). Everything here is deterministic: RANSAC draws its candidate
pairs from a fixed seed, so the same input always gives the same quad.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from docsynth.geometry import mask_iou, order_corners, quad_mask
from docsynth.text import below


def fit_line(points: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted total least squares: the line minimising the weighted squared distances.

    Closed form for 2-D: the normal is perpendicular to the principal direction of the
    weighted scatter, whose angle is half of atan2(2 Sxy, Sxx - Syy)."""
    pts = np.asarray(points, dtype=np.float64)
    w = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    cx, cy = (w @ pts) / total
    dx, dy = pts[:, 0] - cx, pts[:, 1] - cy
    sxx, syy, sxy = w @ (dx * dx), w @ (dy * dy), w @ (dx * dy)
    theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)  # direction of the line
    a, b = -np.sin(theta), np.cos(theta)
    return np.array([a, b, a * cx + b * cy])


def line_through(p: np.ndarray, q: np.ndarray) -> np.ndarray | None:
    d = np.asarray(q, np.float64) - np.asarray(p, np.float64)
    length = np.hypot(*d)
    if length < 1e-9:
        return None
    normal = np.array([-d[1], d[0]]) / length
    return np.array([normal[0], normal[1], normal @ p])


def distances(line: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ line[:2] - line[2]


def ransac_line(points: np.ndarray, weights: np.ndarray | None, tol: float, iterations: int = 120,
                seed: int = 0) -> tuple[np.ndarray | None, np.ndarray]:
    """Best-supported line through pairs of points, then refitted by least squares on its inliers.

    Support is the summed weight of points within ``tol``. Returns (line, inlier mask); the line is
    None when there are fewer than two points."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if n < 2:
        return None, np.zeros(n, bool)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, iterations)
    j = rng.integers(0, n, iterations)
    keep = i != j
    d = pts[j[keep]] - pts[i[keep]]
    length = np.hypot(d[:, 0], d[:, 1])
    ok = length > 1e-9
    if not ok.any():
        return None, np.zeros(n, bool)
    normals = np.stack([-d[ok, 1], d[ok, 0]], 1) / length[ok, None]
    offsets = (normals * pts[i[keep]][ok]).sum(1)
    dist = np.abs(pts @ normals.T - offsets)  # n x candidates
    support = (w[:, None] * (dist < tol)).sum(0)
    best = int(np.argmax(support))
    line = np.array([*normals[best], offsets[best]])
    return refit(line, pts, w, tol)


def refit(line: np.ndarray, pts: np.ndarray, w: np.ndarray, tol: float,
          rounds: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Alternate: inliers within ``tol`` of the line, least-squares line on those inliers."""
    inliers = np.abs(distances(line, pts)) < tol
    for _ in range(rounds):
        if inliers.sum() < 2:
            break
        line = fit_line(pts[inliers], w[inliers])
        inliers = np.abs(distances(line, pts)) < tol
    return line, inliers


def intersect(l1: np.ndarray, l2: np.ndarray, min_angle_deg: float = 0.0) -> np.ndarray | None:
    """Intersection point of two lines; None when they are closer to parallel than ``min_angle_deg``."""
    det = l1[0] * l2[1] - l1[1] * l2[0]  # sine of the angle between the normals
    if abs(det) < max(1e-12, np.sin(np.deg2rad(min_angle_deg))):
        return None
    x = (l1[2] * l2[1] - l1[1] * l2[2]) / det
    y = (l1[0] * l2[2] - l1[2] * l2[0]) / det
    return np.array([x, y])


def quad_from_lines(lines: list[np.ndarray], min_angle_deg: float = 20.0) -> np.ndarray | None:
    """Corners where consecutive sides meet (side k and side k+1 share corner k+1); None if
    two consecutive sides are nearly parallel."""
    corners = []
    for k in range(4):
        p = intersect(lines[k - 1], lines[k], min_angle_deg)
        if p is None:
            return None
        corners.append(p)
    return np.array(corners)


def side_lines(corners: np.ndarray) -> list[np.ndarray]:
    """The four side lines of a quad: side k runs from corner k to corner k+1."""
    c = np.asarray(corners, dtype=np.float64)
    return [line_through(c[k], c[(k + 1) % 4]) for k in range(4)]


def is_convex(corners: np.ndarray) -> bool:
    """True for a strictly convex, non-self-intersecting quad (either orientation)."""
    c = np.asarray(corners, dtype=np.float64)
    if not np.isfinite(c).all():
        return False
    e = np.roll(c, -1, axis=0) - c
    cross = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    if not ((cross > 0).all() or (cross < 0).all()):
        return False
    # all turns the same way can still wind twice (a star); a quad's turning angles sum to 360
    angles = np.arctan2(e[:, 1], e[:, 0])
    turn = np.angle(np.exp(1j * (np.roll(angles, -1) - angles)))
    return abs(abs(turn.sum()) - 2 * np.pi) < 1e-6


# ---------------------------------------------------------------------------------------------
# A quad from a page probability map
# ---------------------------------------------------------------------------------------------


@dataclass
class MaskFit:
    corners: np.ndarray | None  # photo pixels, TL first
    confidence: float
    reason: str = ""
    details: dict = field(default_factory=dict)


def _no_page(reason: str) -> MaskFit:
    return MaskFit(None, 0.0, reason)


def page_component(page_prob: np.ndarray, threshold: float, min_area: float,
                   work_size: int) -> tuple[np.ndarray | None, float, str]:
    """The largest connected page region of the thresholded map (thin gaps closed, holes
    filled) at a working size of at most ``work_size`` px; returns (mask 0/1, scale, reason
    when there is none)."""
    h, w = page_prob.shape
    scale = min(1.0, work_size / max(h, w))
    small = page_prob
    if scale < 1:  # the map is smooth (upsampled model output): linear sampling loses nothing
        small = cv2.resize(page_prob, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_LINEAR)
    binary = (small > threshold).astype(np.uint8)
    # close thin gaps: a cable or pen crossing the page must not cut it in two
    k = max(3, int(round(0.02 * max(binary.shape))) | 1)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=4)
    if count <= 1:
        return None, scale, "no page pixels in the prediction"
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[largest, cv2.CC_STAT_AREA] < min_area * binary.size:
        return None, scale, f"largest page region covers under {min_area:.0%} of the photo"
    component = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(component)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled, scale, ""


def fit_quad_to_mask(page_prob: np.ndarray, *, threshold: float = 0.5, work_size: int = 512,
                     min_area: float = 0.01, min_iou: float = 0.85, tol_frac: float = 0.01,
                     min_support: float = 0.03) -> MaskFit:
    """Four straight sides fitted to the outline of the predicted page, intersected.

    The outline of the largest page region is split into sides by sequential RANSAC (the
    best-supported line, its points removed, again), so bumps, bites and thin objects
    crossing the page only lose their own outline points. Outline points on the photo border
    are not page edges; when fewer than four sides are found there, the photo border stands
    in for the missing side (the page runs out of the frame). Lines are shifted half a pixel
    outward because outline pixels' centres lie inside the true edge. The quad is refused
    ("no document found") when the sides do not close into a convex quad that matches the region.
    """
    filled, scale, reason = page_component(page_prob, threshold, min_area, work_size)
    if filled is None:
        return _no_page(reason)
    sh, sw = filled.shape
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=len)[:, 0, :]
    centre = outline.mean(0) + 0.5
    area = float(filled.sum())
    border = ((outline[:, 0] <= 1) | (outline[:, 0] >= sw - 2)
              | (outline[:, 1] <= 1) | (outline[:, 1] >= sh - 2))
    pts = outline[~border].astype(np.float64) + 0.5
    tol = max(1.0, tol_frac * np.sqrt(area))
    need = max(8, int(min_support * len(outline)))

    lines, supports, used = [], [], np.zeros(len(pts), bool)
    for _ in range(4):
        free = np.flatnonzero(~used)
        if len(free) < need:
            break
        line, inl = _best_chord_line(pts[free], tol)
        if line is None or inl.sum() < need:
            break
        line = _shift_outward(line, centre, 0.5)
        lines.append(line)
        supports.append(pts[free][inl].mean(0))
        used[free[inl]] = True
    fitted = len(lines)
    if fitted < 4:  # the page runs out of the frame: borders it touches stand in for sides
        for line, contact in _border_lines(outline, sw, sh, need):
            if len(lines) == 4:
                break
            lines.append(line)
            supports.append(contact)
    if len(lines) < 4:
        return _no_page(f"found {len(lines)} straight sides, need 4")
    angle = [np.arctan2(s[1] - centre[1], s[0] - centre[0]) for s in supports]
    order = np.argsort(angle)
    corners = quad_from_lines([lines[k] for k in order])
    if corners is None:
        return _no_page("neighbouring sides are nearly parallel")
    if not is_convex(corners) or np.abs(corners - centre).max() > 3 * max(sw, sh):
        return _no_page("sides do not close into a convex quad")
    iou = _quad_region_iou(corners, filled)
    if iou < min_iou:
        return _no_page(f"page region is not a quadrilateral (IoU {below(iou, min_iou)} < {min_iou})")
    inlier_share = used.sum() / len(pts) if len(pts) else 0.5
    corners = order_corners(corners / scale)
    return MaskFit(corners, float(iou * inlier_share), "",
                   {"sides_fitted": fitted, "iou": iou, "inlier_share": float(inlier_share)})


def _best_chord_line(pts: np.ndarray, tol: float) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC whose candidates are chords of the (ordered) outline: a chord spanning a short
    arc of a straight side lies on that side, so a few hundred deterministic chords suffice.
    Candidates are scored on at most 400 evenly spaced points; the winner is refitted on all."""
    n = len(pts)
    starts = np.arange(0, n, max(1, n // 100))
    i = np.concatenate([starts, starts])
    j = np.concatenate([(starts + max(2, n // 24)) % n, (starts + max(3, n // 12)) % n])
    d = pts[j] - pts[i]
    length = np.hypot(d[:, 0], d[:, 1])
    ok = length > 1e-9
    if not ok.any():
        return None, np.zeros(n, bool)
    normals = np.stack([-d[ok, 1], d[ok, 0]], 1) / length[ok, None]
    offsets = (normals * pts[i[ok]]).sum(1)
    probe = pts[:: max(1, n // 400)]
    support = (np.abs(probe @ normals.T - offsets) < tol).sum(0)
    best = int(np.argmax(support))
    line, inliers = refit(np.array([*normals[best], offsets[best]]), pts, np.ones(n), tol)
    return _trimmed_fit(line, pts, inliers, tol), inliers


def _trimmed_fit(line: np.ndarray, pts: np.ndarray, inliers: np.ndarray, tol: float) -> np.ndarray:
    """Final least-squares fit on the side's core: points within tol/2 of the line, minus the
    outer 5% at each end, where the outline rounds off into the neighbouring sides."""
    core = inliers & (np.abs(distances(line, pts)) < tol / 2)
    if core.sum() < 8:
        return line
    along = pts[core] @ np.array([-line[1], line[0]])
    ranked = np.sort(along)  # (np.quantile costs a millisecond here; sorting ~500 values does not)
    lo, hi = ranked[len(ranked) // 20], ranked[-1 - len(ranked) // 20]
    keep = (along >= lo) & (along <= hi)
    return fit_line(pts[core][keep]) if keep.sum() >= 2 else line


def _quad_region_iou(corners: np.ndarray, region: np.ndarray, size: int = 256) -> float:
    """IoU of a quad and a 0/1 region, both at a working size of at most ``size`` px."""
    h, w = region.shape
    f = min(1.0, size / max(h, w))
    if f < 1:
        region = cv2.resize(region, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_NEAREST)
        corners = corners * (region.shape[1] / w, region.shape[0] / h)
    return mask_iou(quad_mask(corners, region.shape), region)


def _shift_outward(line: np.ndarray, centre: np.ndarray, amount: float) -> np.ndarray:
    side = np.sign(distances(line, centre[None])[0]) or -1.0
    return np.array([line[0], line[1], line[2] - amount * side])


def _border_lines(outline: np.ndarray, sw: int, sh: int, need: int):
    """(line, mean contact point) for each photo border the region touches, most contact first."""
    x, y = outline[:, 0], outline[:, 1]
    found = []
    for touch, line in ((x <= 1, (1.0, 0.0, 0.0)), (x >= sw - 2, (1.0, 0.0, float(sw))),
                        (y <= 1, (0.0, 1.0, 0.0)), (y >= sh - 2, (0.0, 1.0, float(sh)))):
        if touch.sum() >= need:
            found.append((int(touch.sum()), np.array(line), outline[touch].mean(0) + 0.5))
    found.sort(key=lambda f: -f[0])
    return [(line, contact) for _, line, contact in found]
