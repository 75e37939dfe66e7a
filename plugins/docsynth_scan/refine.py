"""Post-processor `refine`: coarse-to-fine corners.

1. Coarse quads from the low-resolution prediction: the model's corner heatmaps
   (``extra["corners"]``, each peak at least ``min_corner_score``), the `robust` fit on the
   page mask and, when that fails, a looser mask fit. Each must pass the plausibility checks
   of :mod:`docsynth_scan.checks` (convex, sane angles and sides, inside the photo) and gets a
   calibrated confidence (mask IoU, share of its sides on mask edges, corner peaks; see
   :func:`docsynth_scan.checks.calibrated_confidence`). Heatmap corners that the mask backs
   well (confidence >= ``SURE``) are taken alone: the mask fits are not even made.
2. Each coarse quad's sides are refined at the photo's full resolution: at 100 positions along
   the predicted edge, an intensity profile across it (all three colour channels, over a band)
   is differentiated across 2 px; the strongest step near the predicted edge, located to a
   sub-pixel by a parabola, is one edge point. A line is fitted to the edge points by RANSAC and
   weighted least squares (weight = step strength), so text, cables or shadows crossing the
   band only add outliers. Sides without enough support (out of the frame, no contrast) keep
   their coarse line.
3. Corners are the intersections of the refined sides; a second pass with a narrower band
   polishes them. A pass that moves a corner further than its band is rejected (kept coarse),
   and so is a refined quad that fails the plausibility checks.
4. Confidence = the coarse quad's confidence x (0.75 + 0.25 x mean share of edge samples on
   the refined sides); the quad with the highest confidence wins (the heatmap quad on near
   ties).
5. Abstention: "no document found" only when the model sees no page (the page mask covers
   less than ``min_area`` of the photo). When it sees one but no candidate is a plausible,
   mask-backed page (a page filling the frame, markers across it), the rejected candidate or
   the page region's hull that agrees best with the mask is returned with a low confidence
   (at most 0.3) and the reason: see :func:`fallback_quad`.

Options: ``band`` (half-width in px of the first search band; default 1.2% of the photo
diagonal, 8-40 px), ``passes`` (2), ``min_corner_score`` (0.3), plus the `robust` options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from docsynth.config import POSITIVE, SHARE, F
from docsynth.geometry import order_corners
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Quad
from docsynth_scan.checks import calibrated_confidence, implausible, mask_agreement, working_map
from docsynth_scan.lines import fit_quad_to_mask, is_convex, quad_from_lines, ransac_line, refit, side_lines
from docsynth_scan.robust import ROBUST_OPTIONS, robust_quad

STEP = 0.5  # profile sampling step across the edge, px (twice that in bands over 12 px)


@dataclass
class SideFit:
    line: np.ndarray
    support: float  # share of edge samples that are inliers (0 when the coarse line was kept)


def edge_points(image: np.ndarray, p0: np.ndarray, p1: np.ndarray, outward: np.ndarray,
                band: float, count: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strongest intensity step across each side p0[i]->p1[i], at ``count`` evenly spaced
    positions per side, all sides sampled in one go (one remap, no Python loop per side).

    Returns (points S x count x 2, strengths S x count, valid S x count): a position is invalid
    when its band leaves the photo, its strongest step sits at the band's end or is too weak."""
    h, w = image.shape[:2]
    p0, p1, outward = (np.asarray(a, dtype=np.float64) for a in (p0, p1, outward))
    sides = len(p0)
    frac = np.linspace(0.08, 0.92, count)  # keep clear of the corners
    centre = p0[:, None] + frac[None, :, None] * (p1 - p0)[:, None]  # S x count x 2
    step = STEP if band <= 12 else 2 * STEP  # a wide first band is searched more coarsely
    u = np.arange(-band, band + step / 2, step, dtype=np.float32)
    # sample points centre + u * outward, as two float32 maps (rows: sides x positions); the
    # -0.5 turns edge coordinates into OpenCV's pixel-centre coordinates
    cx = (centre[..., 0] - 0.5).astype(np.float32).reshape(-1, 1)
    cy = (centre[..., 1] - 0.5).astype(np.float32).reshape(-1, 1)
    nx = np.repeat(outward[:, 0], count).astype(np.float32)[:, None]
    ny = np.repeat(outward[:, 1], count).astype(np.float32)[:, None]
    prof = cv2.remap(image, cx + u * nx, cy + u * ny, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    prof = prof.reshape(sides * count, len(u), -1).astype(np.float32)
    r = int(round(1.0 / step))  # difference across 2 px, centred on u[r:-r]
    deriv = prof[:, 2 * r:] - prof[:, :-2 * r]
    mag = np.sqrt((deriv ** 2).sum(-1))
    uc = u[r:-r]
    prior = np.exp(-0.5 * (uc / (0.5 * band)) ** 2)  # prefer the step nearest the coarse edge
    k = np.argmax(mag * prior, axis=1)
    rows = np.arange(len(k))
    kc = np.clip(k, 1, len(uc) - 2)
    a, b, c = mag[rows, kc - 1], mag[rows, kc], mag[rows, kc + 1]
    denom = a - 2 * b + c
    delta = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    offset = (uc[kc] + np.clip(delta, -0.5, 0.5) * step).reshape(sides, count)
    strength = mag[rows, k].reshape(sides, count)
    inner = ((k > 0) & (k < len(uc) - 1)).reshape(sides, count)
    inside = ((centre[..., 0] > 1) & (centre[..., 0] < w - 1) & (centre[..., 1] > 1) & (centre[..., 1] < h - 1))
    valid = inner & inside & (strength > 6.0)  # a step of a few grey levels is noise
    return centre + offset[..., None] * outward[:, None], strength, valid


def refine_sides(image: np.ndarray, corners: np.ndarray, band: float,
                 previous: list[SideFit] | None = None) -> list[SideFit]:
    """One refinement pass over the four sides. A later pass (``previous`` given) starts each
    side's fit from the line the pass before found instead of a fresh RANSAC."""
    centre = corners.mean(0)
    coarse = side_lines(corners)
    p0, p1 = corners, np.roll(corners, -1, axis=0)
    normals = np.array([line[:2] if line[:2] @ (a - centre) > 0 else -line[:2] for line, a in zip(coarse, p0, strict=True)])
    pts, strength, valid = edge_points(image, p0, p1, normals, band)
    fits = []
    for k in range(4):
        if np.hypot(*(p1[k] - p0[k])) < 16 or valid[k].sum() < 6:
            fits.append(SideFit(coarse[k], 0.0))
            continue
        sp, sw = pts[k][valid[k]], strength[k][valid[k]]
        tol = max(0.75, band / 10)
        if previous is not None and previous[k].support > 0:
            line, inliers = refit(previous[k].line, sp, sw, tol)
        else:
            line, inliers = ransac_line(sp, sw, tol=tol, iterations=60, seed=k)
        share = inliers.sum() / valid.shape[1]
        if line is None or inliers.sum() < 6 or share < 0.35:
            fits.append(SideFit(coarse[k], 0.0))
            continue
        fits.append(SideFit(line, float(share)))
    return fits


def refine_quad(image: np.ndarray, corners: np.ndarray, band: float,
                passes: int = 2) -> tuple[np.ndarray, float]:
    """Coarse quad -> (refined corners, mean share of edge samples supporting the sides)."""
    corners = np.asarray(corners, dtype=np.float64)
    support = 0.0
    fits = None
    for _ in range(passes):
        fits = refine_sides(image, corners, band, fits)
        new = quad_from_lines([f.line for f in fits], min_angle_deg=10)
        if new is None or not is_convex(new) or np.abs(new - corners).max() > 1.5 * band:
            break  # this pass found something else than the page edge: keep the coarser quad
        corners = new
        support = float(np.mean([f.support for f in fits]))
        band = max(3.0, band / 3)
    return corners, support


def candidates(page_prob: np.ndarray, extra: dict[str, Any], options: dict[str, Any]):
    """Coarse quads to choose from, as (source, corners, mean corner peak score or None, reason),
    cheapest first: the mask fits are only made when asked for (a generator)."""
    corners, scores = extra.get("corners"), extra.get("corner_scores")
    if corners is not None and scores is not None:
        min_score = float(options["min_corner_score"])
        # a weak peak makes the heatmap quad a loose candidate: used only when the mask backs it
        weak = float(np.min(scores)) < min_score
        yield ("weak heatmaps" if weak else "heatmaps", np.asarray(corners, dtype=np.float64),
               float(np.mean(scores)), "")
    fit = robust_quad(page_prob, options)
    yield ("mask", fit.corners, None, fit.reason)
    if fit.corners is None:  # a curled receipt or a bitten page: a looser fit, trusted less
        loose = fit_quad_to_mask(page_prob, threshold=float(options["threshold"]),
                                 min_area=float(options["min_area"]), min_iou=0.75)
        yield ("loose mask", loose.corners, None, loose.reason)


def page_evidence(page_prob: np.ndarray, threshold: float) -> float:
    """The share of the photo the model calls page: the evidence that there is a page at all."""
    small, _, _ = working_map(page_prob)
    return float((small > threshold).mean())


def hull_quad(page_prob: np.ndarray, threshold: float) -> np.ndarray | None:
    """Four corners around the largest page region: its convex hull simplified to four points
    (or its smallest rotated rectangle when the hull does not simplify to four). Coarse, but
    it exists whenever the model sees a page: a page filling the frame has no outline to fit."""
    small, fx, fy = working_map(page_prob)
    binary = (small > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    peri = cv2.arcLength(hull, True)
    quad = None
    for eps in (0.01, 0.02, 0.04, 0.08):
        approx = cv2.approxPolyDP(hull, eps * peri, True)
        if len(approx) == 4:
            quad = approx.reshape(4, 2).astype(np.float64)
            break
    if quad is None:
        quad = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float64)
    # working-map pixels -> photo edge coordinates; the hull runs through pixel centres
    return order_corners((quad + 0.5) / (fx, fy))


def fallback_quad(page_prob: np.ndarray, image: np.ndarray, rejected, options: dict[str, Any],
                  band: float, passes: int) -> Quad:
    """The answer when the model sees a page but no candidate is a plausible, mask-backed one:
    the rejected candidate (or the page region's hull) that agrees best with the page mask,
    refined, with a low confidence (at most ``FALLBACK_CONFIDENCE``) and the reason it was
    rejected. A refusal scores 0 and hides the
    page from the user; a rough quad with its low confidence costs less, and says so."""
    threshold = float(options["threshold"])
    h, w = image.shape[:2]
    work = working_map(page_prob)
    options_ = list(rejected)
    hull = hull_quad(page_prob, threshold)
    if hull is not None:
        options_.append(("page region", hull, None, "the page region's hull"))
    best = None
    for source, corners, score, why in options_:
        if not np.isfinite(corners).all():
            continue
        clipped = np.clip(corners, [-0.25 * w, -0.25 * h], [1.25 * w, 1.25 * h])
        iou, edge = mask_agreement(clipped, work)
        if best is None or iou > best[0]:
            best = (iou, edge, clipped, score, f"{source}: {why}")
    if best is None:
        return Quad(None, 0.0, "no quad around the page region")
    iou, edge, corners, score, why = best
    if not implausible(corners, w, h):
        refined, _ = refine_quad(image, corners, band, passes)
        if not implausible(refined, w, h):
            corners = refined
    conf = FALLBACK_CONFIDENCE * max(calibrated_confidence(iou, edge, score), 0.2 * iou)
    return Quad(order_corners(corners), conf, f"low confidence: {why}")


FALLBACK_CONFIDENCE = 0.3  # the most a fallback quad gets: below the 0.5 that reads "trust it"
SURE = 0.7  # heatmap corners this well backed by the mask need no mask fit to compete with
HEATMAP_MARGIN = 0.1  # heatmap corners win near ties (they keep working where an object bites the mask)


def coarse_quads(page_prob: np.ndarray, extra: dict[str, Any], options: dict[str, Any],
                 rejected: list[tuple[str, np.ndarray, float | None, str]] | None = None):
    """The coarse quads, cheapest first, as (source, Quad with its calibrated confidence); a
    candidate that is not a plausible page (:func:`checks.implausible`) or, for the loose ones,
    that the page mask does not back comes as a Quad without corners that says why, and its
    corners go to ``rejected`` (source, corners, corner score, why): the fallback of
    :func:`fallback_quad` when no candidate passes."""
    h, w = page_prob.shape
    work = working_map(page_prob)
    for source, corners, score, reason in candidates(page_prob, extra, options):
        if corners is None:
            yield source, Quad(None, 0.0, reason)
            continue
        why = implausible(corners, w, h)
        if why:
            if rejected is not None:
                rejected.append((source, np.asarray(corners, np.float64), score, why))
            yield source, Quad(None, 0.0, why)
            continue
        iou, edge = mask_agreement(corners, work)
        loose = source.startswith(("loose", "weak"))
        if loose and (edge < 0.6 or iou < 0.75):  # e.g. a square around a round blob
            why = f"the page mask does not back it (IoU {iou:.2f}, {edge:.0%} of its sides on the mask's edge)"
            if rejected is not None:
                rejected.append((source, np.asarray(corners, np.float64), score, why))
            yield source, Quad(None, 0.0, why)
            continue
        conf = calibrated_confidence(iou, edge, score) * (0.5 if loose else 1.0)
        yield source, Quad(order_corners(np.asarray(corners, np.float64)), conf)


class RefinePost:
    name = "refine"
    options = {
        **ROBUST_OPTIONS,
        "band": F((float, None), None, "search band of the side refinement, px (null: 1.2% of the diagonal, "
                  "8-40 px)", **POSITIVE),
        "passes": F(int, 2, "refinement passes", low=0),
        "min_corner_score": F(float, 0.3, "heatmap corners weaker than this are not trusted", **SHARE),
    }
    description = "coarse-to-fine: heatmap corners or robust mask fit, checked, sides refined on image gradients"

    def find_quad(self, page_prob: np.ndarray, image: np.ndarray, options: dict[str, Any],
                  extra: dict[str, Any]) -> Quad:
        """Each plausible coarse quad is refined, and the one with the highest final confidence
        wins (the heatmap quad on near ties). Choosing after refinement, not before, means the
        choice uses the photo's edges too and is the one the reported confidence describes:
        choosing on the coarse quads alone flipped between quads 150 px apart when the model's
        corners moved by 0.3 px (two candidates within the tie margin of each other)."""
        h, w = image.shape[:2]
        band = options["band"]
        band = float(np.clip(0.012 * np.hypot(h, w), 8, 40) if band is None else band)
        passes = int(options["passes"])
        # the one reason to refuse: the model sees no page, neither in its page map nor as four
        # sure corner peaks
        share = page_evidence(page_prob, float(options["threshold"]))
        scores = extra.get("corner_scores")
        sure_corners = scores is not None and float(np.min(scores)) >= float(options["min_corner_score"])
        if share < float(options["min_area"]) and not sure_corners:
            return Quad(None, 0.0, f"no page: the model sees page in {share:.1%} of the photo and no four corners")
        best, rejected = None, []
        for source, coarse in coarse_quads(page_prob, extra, options, rejected):
            if coarse.corners is None:
                continue  # its corners, if any, went to ``rejected``
            corners, support = refine_quad(image, coarse.corners, band, passes)
            if implausible(corners, w, h):  # refinement locked onto something else: keep the coarse quad
                corners, support = coarse.corners, 0.0
            quad = Quad(order_corners(corners), coarse.confidence * (0.75 + 0.25 * support))
            rank = quad.confidence + (HEATMAP_MARGIN if source == "heatmaps" else 0.0)
            if best is None or rank > best[0]:
                best = (rank, quad)
            if source == "heatmaps" and coarse.confidence >= SURE:
                break  # well-backed heatmap corners: the mask fits need not be made
        if best is None:
            return fallback_quad(page_prob, image, rejected, options, band, passes)
        return best[1]


@hookimpl
def register_postprocessors(register):
    register(RefinePost())
