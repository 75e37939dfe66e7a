"""Geometric steps: flips, rotation and the non-homography warps (optical, grid, elastic).

Corners are in pixel-edge coordinates (the image spans [0, W] x [0, H]); OpenCV maps use
pixel centres, hence the +-0.5 shifts. Flips and rotation are exact. The three distortions are
``remap`` warps described by a backward map (output pixel -> source pixel); corners move
forward, so they are found by inverting the map numerically (fixed-point iteration, exact to a
hundredth of a pixel where the map is smooth) and the sample is flagged ``approximate``
because the page edges are no longer straight.

Each step also reports its mapping of every point (``page_stage``) for dense labels: flips,
rotation and squash as affine maps, the remaps by their backward map (bilinear, as ``remap``
samples it) and its numerical inverse to a ten-thousandth of a pixel; the grid warp exactly,
axis by axis.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.generate.pagemap import Mapped, affine
from docsynth.geometry import order_corners

from .base import GeometricStep, register_step, uniform

BORDERS = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT,
           "replicate": cv2.BORDER_REPLICATE}


@register_step
class HorizontalFlip(GeometricStep):
    """Mirror left-right. Corners swap TL<->TR and BR<->BL so the quad stays clockwise with TL on
    the top-left."""

    name = "hflip"

    def apply(self, image, **params):
        return cv2.flip(image, 1)

    def apply_to_mask(self, mask, **params):
        return cv2.flip(mask, 1)

    def apply_to_keypoints(self, corners, width, **params):
        out = corners.copy()
        out[:, 0] = width - out[:, 0]
        return out[[1, 0, 3, 2]]

    def get_params(self, rng, sample):
        return {"width": sample.image.shape[1]}

    def page_stage(self, frame, width, **params):
        return affine([[-1, 0, width], [0, 1, 0]], frame, self.name)


@register_step
class VerticalFlip(GeometricStep):
    """Mirror top-bottom. Corners swap TL<->BL and TR<->BR."""

    name = "vflip"

    def apply(self, image, **params):
        return cv2.flip(image, 0)

    def apply_to_mask(self, mask, **params):
        return cv2.flip(mask, 0)

    def apply_to_keypoints(self, corners, height, **params):
        out = corners.copy()
        out[:, 1] = height - out[:, 1]
        return out[[3, 2, 1, 0]]

    def get_params(self, rng, sample):
        return {"height": sample.image.shape[0]}

    def page_stage(self, frame, height, **params):
        return affine([[1, 0, 0], [0, -1, height]], frame, self.name)


@register_step
class Rotate(GeometricStep):
    """Rotate about the image centre by up to ``limit`` degrees, keeping the size. The mask gets
    the same border mode as the image (as albumentations does), so a reflected border that shows
    a mirrored bit of page marks it as page too; compositors flag such samples ``approximate``."""

    name = "rotate"
    defaults = {"limit": 90.0, "border": "reflect"}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        angle = uniform(rng, (-self.limit, self.limit))
        # Rotation about the centre (W/2, H/2) in edge coordinates, counter-clockwise on screen
        # for positive angles like cv2.getRotationMatrix2D.
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, 1.0)
        m_edge = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        return {"m": m, "m_edge": m_edge}

    def _border(self):
        if self.border not in BORDERS:
            raise DocsynthError(f"step rotate: border must be one of {', '.join(BORDERS)}")
        return BORDERS[self.border]

    def apply(self, image, m, **params):
        h, w = image.shape[:2]
        return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=self._border())

    def apply_to_mask(self, mask, m, **params):
        h, w = mask.shape[:2]
        return cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=self._border())

    def apply_to_keypoints(self, corners, m_edge, **params):
        pts = corners @ m_edge[:, :2].T + m_edge[:, 2]
        return order_corners(pts)

    def page_stage(self, frame, m_edge, **params):
        return affine(m_edge, frame, self.name)  # a reflected border is not page: NaN in uv


# ---------------------------------------------------------------------------------------------
# Non-homography warps
# ---------------------------------------------------------------------------------------------


def sample_map(map_x: np.ndarray, map_y: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a backward map at points given in pixel-centre coordinates (clamped)."""
    h, w = map_x.shape
    x = np.clip(pts[:, 0], 0, w - 1.001)
    y = np.clip(pts[:, 1], 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    out = np.empty_like(pts)
    for k, m in enumerate((map_x, map_y)):
        top = m[y0, x0] * (1 - fx) + m[y0, x0 + 1] * fx
        bottom = m[y0 + 1, x0] * (1 - fx) + m[y0 + 1, x0 + 1] * fx
        val = top * (1 - fy) + bottom * fy
        # Outside the frame the map is extended with its border displacement.
        val += (pts[:, k] - (x if k == 0 else y))
        out[:, k] = val
    return out


def invert_map(map_x: np.ndarray, map_y: np.ndarray, corners: np.ndarray, iterations: int = 30,
               tol: float = 1e-3) -> np.ndarray:
    """Where do source points (edge coordinates) land under the backward map? Fixed-point
    iteration p <- p - (map(p) - q): converges for the gentle displacements used here."""
    q = np.asarray(corners, np.float64) - 0.5
    p = q.copy()
    for _ in range(iterations):
        err = sample_map(map_x, map_y, p) - q
        p -= err
        if np.abs(err).max() < tol:
            break
    return p + 0.5


def invert_points(map_x: np.ndarray, map_y: np.ndarray, pts: np.ndarray, iterations: int = 60,
                  tol: float = 1e-5) -> np.ndarray:
    """:func:`invert_map` for many points (dense labels): each point iterates until it alone has
    converged, so a few slow ones near strong distortion do not keep the rest busy."""
    q = np.asarray(pts, np.float64) - 0.5
    p = q.copy()
    active = np.arange(len(q))
    for _ in range(iterations):
        err = sample_map(map_x, map_y, p[active]) - q[active]
        p[active] -= err
        active = active[np.abs(err).max(axis=1) >= tol]
        if not len(active):
            break
    return p + 0.5


class RemapStep(GeometricStep):
    """A warp given by a backward map; subclasses build ``map_x``/``map_y`` in ``get_params``."""

    approximate = True

    def apply(self, image, map_x, map_y, **params):
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)

    def apply_to_mask(self, mask, map_x, map_y, **params):
        return cv2.remap(mask, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def apply_to_keypoints(self, corners, map_x, map_y, **params):
        return invert_map(map_x, map_y, corners)

    def page_stage(self, frame, map_x, map_y, **params):
        return Mapped(lambda p: invert_points(map_x, map_y, p),
                      lambda q: sample_map(map_x, map_y, q - 0.5) + 0.5, frame, self.name)


def _upsample(field: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(field.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _identity(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(w, dtype=np.float32)
    ys = np.arange(h, dtype=np.float32)
    return np.broadcast_to(xs, (h, w)), np.broadcast_to(ys[:, None], (h, w))


@register_step
class OpticalDistortion(RemapStep):
    """Barrel/pincushion lens distortion: r_src = r (1 + k r^2), r normalised by the half diagonal,
    plus a small random shift of the distortion centre."""

    name = "optical"
    defaults = {"distort_limit": 0.3, "shift_limit": 0.05}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        k = uniform(rng, (-self.distort_limit, self.distort_limit))
        cx = (w - 1) / 2 + uniform(rng, (-self.shift_limit, self.shift_limit)) * w
        cy = (h - 1) / 2 + uniform(rng, (-self.shift_limit, self.shift_limit)) * h
        # The field is smooth: compute it on a coarse grid and upsample (much cheaper).
        gw, gh = max(2, w // 8), max(2, h // 8)
        gx = np.linspace(0, w - 1, gw)
        gy = np.linspace(0, h - 1, gh)
        xx, yy = np.meshgrid(gx, gy)
        norm = np.hypot(w, h) / 2
        dx, dy = (xx - cx) / norm, (yy - cy) / norm
        factor = k * (dx * dx + dy * dy)
        ix, iy = _identity(w, h)
        map_x = ix + _upsample((xx - cx) * factor, w, h)
        map_y = iy + _upsample((yy - cy) * factor, w, h)
        return {"map_x": map_x.astype(np.float32), "map_y": map_y.astype(np.float32)}


@register_step
class GridDistortion(RemapStep):
    """Cut the image into ``num_steps`` columns and rows and stretch each by up to
    ``distort_limit`` (separable, piecewise linear)."""

    name = "grid"
    defaults = {"num_steps": 5, "distort_limit": 0.3}

    @staticmethod
    def _axis(rng, n: int, steps: int, limit: float) -> np.ndarray:
        """Backward map of one axis: output coordinate -> source coordinate (monotonic)."""
        knots_out = np.linspace(0, n - 1, steps + 1)
        widths = np.diff(knots_out) * (1 + rng.uniform(-limit, limit, size=steps))
        knots_src = np.concatenate([[0], np.cumsum(widths)])
        knots_src *= (n - 1) / knots_src[-1]
        return np.interp(np.arange(n), knots_out, knots_src).astype(np.float32)

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        fx = self._axis(rng, w, int(self.num_steps), float(self.distort_limit))
        fy = self._axis(rng, h, int(self.num_steps), float(self.distort_limit))
        return {"map_x": np.ascontiguousarray(np.broadcast_to(fx, (h, w))),
                "map_y": np.ascontiguousarray(np.broadcast_to(fy[:, None], (h, w))), "fx": fx, "fy": fy}

    def apply_to_keypoints(self, corners, fx, fy, **params):
        # Separable and monotonic: invert each axis exactly with interpolation.
        pts = np.asarray(corners, np.float64) - 0.5
        out = np.empty_like(pts)
        out[:, 0] = _invert_axis(fx, pts[:, 0])
        out[:, 1] = _invert_axis(fy, pts[:, 1])
        return out + 0.5

    def page_stage(self, frame, fx, fy, **params):
        def backward(q):
            p = np.asarray(q, np.float64) - 0.5
            return np.stack([_axis_map(fx, p[:, 0]), _axis_map(fy, p[:, 1])], axis=1) + 0.5
        return Mapped(lambda p: self.apply_to_keypoints(p, fx, fy), backward, frame, self.name)


def _axis_map(f: np.ndarray, x: np.ndarray) -> np.ndarray:
    """One axis of the grid warp's backward map at any coordinate (linear between pixel
    centres, as ``remap`` samples it; the end displacement beyond the ends)."""
    n = len(f)
    f = f.astype(np.float64)
    out = np.interp(x, np.arange(n, dtype=np.float64), f)
    out = np.where(x < 0, f[0] + x, out)
    return np.where(x > n - 1, f[-1] + (x - (n - 1)), out)


def _invert_axis(f: np.ndarray, src: np.ndarray) -> np.ndarray:
    n = len(f)
    grid = np.arange(n, dtype=np.float64)
    inside = np.interp(src, f.astype(np.float64), grid)
    # Beyond the ends the map is the identity shifted by the end displacement.
    inside = np.where(src < f[0], src - f[0], inside)
    inside = np.where(src > f[-1], (n - 1) + (src - f[-1]), inside)
    return inside


@register_step
class ElasticTransform(RemapStep):
    """Smooth random displacement (``alpha`` pixels at most, correlation length ``sigma``
    pixels): random values on a coarse grid, upsampled with cubic interpolation."""

    name = "elastic"
    defaults = {"alpha": 6.0, "sigma": 50.0}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        gw, gh = max(2, int(round(w / self.sigma)) + 1), max(2, int(round(h / self.sigma)) + 1)
        dx = rng.uniform(-1, 1, size=(gh, gw)) * self.alpha
        dy = rng.uniform(-1, 1, size=(gh, gw)) * self.alpha
        ix, iy = _identity(w, h)
        return {"map_x": (ix + _upsample(dx, w, h)).astype(np.float32),
                "map_y": (iy + _upsample(dy, w, h)).astype(np.float32)}


@register_step
class Squash(GeometricStep):
    """Store the frame with another aspect ratio: one axis is resampled by a factor drawn from
    ``factor`` (e.g. a 3:4 photo squashed to a square by an app or a camera mode). Image
    (area/linear), mask (nearest, 0/255 kept) and corners (scaled by the exact size ratio, so
    they stay on the page edges) change together; the frame size changes."""

    name = "squash"
    defaults = {"factor": [0.6, 1.0], "square_p": 0.5}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        if rng.random() < self.square_p:  # to a square: the long side shrinks to the short one
            nw, nh = (min(w, h), min(w, h))
        else:
            f = uniform(rng, self.factor)
            nw, nh = (max(2, round(w * f)), h) if rng.random() < 0.5 else (w, max(2, round(h * f)))
        return {"size": (int(nw), int(nh)), "scale": (nw / w, nh / h)}

    def apply(self, image, size, **params):
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def apply_to_mask(self, mask, size, **params):
        return cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)

    def apply_to_keypoints(self, corners, scale, **params):
        return np.asarray(corners, np.float64) * np.asarray(scale, np.float64)

    def page_stage(self, frame, scale, **params):
        return affine([[scale[0], 0, 0], [0, scale[1], 0]], frame, self.name)
