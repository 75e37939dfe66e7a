"""Where the page lands in the photo: a pinhole camera looking at a page lying on a table.

The page plane is rotated in 3D (in-plane rotation, then a tilt of up to ``tilt`` degrees about
a random axis in the plane), put at a distance that makes it cover the drawn share of the frame,
and projected with focal length ``f`` (in output pixels). The four projected corners define the
page homography. The quad is then shifted in the image plane (equivalent to an off-centre
principal point) to a random position, fully inside the frame, or crossing one border when the
sample is meant to be truncated.

Defaults follow the real photos in ``shared/realdocs``: page area 9-70% of the frame (median
about 15%), corner angles within about 15 degrees of square, in-plane rotation mostly within
+-15 degrees with a tail to +-40.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from docsynth.geometry import quad_area

DEFAULTS: dict[str, Any] = {
    "area": [0.1, 0.8],  # share of the frame covered by the page, drawn log-uniformly
    "rotation_sigma": 7.0,  # in-plane rotation, degrees (normal)...
    "rotation_wide_p": 0.2,  # ...or, with this probability, uniform in +-rotation_wide
    "rotation_wide": 40.0,
    "quarter_turn_p": 0.08,  # page lying sideways
    "tilt": [6.0, 35.0],  # angle between page normal and camera axis, degrees (photos are rarely square-on)
    "focal": [0.65, 1.3],  # focal length as a share of the longer output side
    "margin": 0.01,  # minimum gap to the frame border for untruncated pages, share of size
}


def rotation_matrix(yaw: float, tilt: float, tilt_axis: float) -> np.ndarray:
    """In-plane rotation ``yaw`` (about z) followed by a tilt about the in-plane axis at angle
    ``tilt_axis``."""
    cz, sz = np.cos(yaw), np.sin(yaw)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    a = np.array([np.cos(tilt_axis), np.sin(tilt_axis), 0.0])
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    rt = np.eye(3) + np.sin(tilt) * k + (1 - np.cos(tilt)) * (k @ k)  # Rodrigues
    return rt @ rz


def project(page_w: float, page_h: float, rot: np.ndarray, f: float, distance: float) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a page_w x page_h page (long side 1) centred on the optical
    axis at ``distance``, projected around the origin."""
    pts = np.array([[-page_w / 2, -page_h / 2, 0], [page_w / 2, -page_h / 2, 0],
                    [page_w / 2, page_h / 2, 0], [-page_w / 2, page_h / 2, 0]])
    cam = pts @ rot.T + np.array([0, 0, distance])
    return f * cam[:, :2] / cam[:, 2:3]


def camera_quad(rng: np.random.Generator, page_w: int, page_h: int, out_w: int, out_h: int,
                opts: dict[str, Any], truncate: bool = False, area: float | None = None) -> np.ndarray:
    """Destination corners of the page in the output frame (edge coordinates)."""
    o = {**DEFAULTS, **opts}
    aspect_w, aspect_h = page_w / max(page_w, page_h), page_h / max(page_w, page_h)
    lo, hi = o["area"]
    if area is None:
        area = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    if rng.random() < o["rotation_wide_p"]:
        yaw = rng.uniform(-o["rotation_wide"], o["rotation_wide"])
    else:
        yaw = rng.normal(0, o["rotation_sigma"])
    if rng.random() < o["quarter_turn_p"]:
        yaw += 90 * rng.choice([-1, 1])
    tilt = np.radians(rng.uniform(*o["tilt"]))
    rot = rotation_matrix(np.radians(yaw), tilt, rng.uniform(0, 2 * np.pi))
    f = rng.uniform(*o["focal"]) * max(out_w, out_h)
    target = area * out_w * out_h
    # Area falls with the square of the distance; two corrections absorb perspective.
    distance = 2.0 * f / max(out_w, out_h)
    for _ in range(3):
        quad = project(aspect_w, aspect_h, rot, f, distance)
        distance *= np.sqrt(quad_area(quad) / target)
    quad = project(aspect_w, aspect_h, rot, f, distance)
    # Too large to fit (when not truncating)? shrink until it does.
    lo_xy, hi_xy = quad.min(axis=0), quad.max(axis=0)
    span = hi_xy - lo_xy
    margin = o["margin"] * min(out_w, out_h)
    fit = min(1.0, (out_w - 2 * margin) / span[0], (out_h - 2 * margin) / span[1])
    if fit < 1.0 and not truncate:
        quad *= fit
        lo_xy, hi_xy = quad.min(axis=0), quad.max(axis=0)
    span = hi_xy - lo_xy

    def free(axis: int, size: int) -> float:
        """A shift along ``axis`` keeping the page inside (centred when it cannot fit)."""
        a, b = margin - lo_xy[axis], size - margin - hi_xy[axis]
        return float(rng.uniform(a, b)) if b > a else (a + b) / 2

    if truncate:
        # Push the page over one border: a share ``over`` of its extent ends outside the frame.
        side = int(rng.integers(4))
        over = rng.uniform(0.05, 0.35)
        if side in (0, 1):
            cy = free(1, out_h)
            cx = -lo_xy[0] - over * span[0] if side == 0 else out_w - hi_xy[0] + over * span[0]
        else:
            cx = free(0, out_w)
            cy = -lo_xy[1] - over * span[1] if side == 2 else out_h - hi_xy[1] + over * span[1]
        return quad + (cx, cy)
    return quad + (free(0, out_w), free(1, out_h))
