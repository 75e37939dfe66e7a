"""Paper shape: curl and fold as smooth warps of the page plane, with matching shading.

Both are one-dimensional profiles along an axis of the page. With ``s`` the signed distance
from the bend line along the axis and ``t`` the position along the line:

- curl: beyond the line (s > 0) the sheet wraps a cylinder of radius r, so it lifts off the
  table: seen from above, s' = r sin(s / r), height z = r (1 - cos(s / r)), and the lifted part
  is a little larger (closer to the camera): t' = t (1 + m z / L).
- fold: the two halves are tilted by angles a1, a2 about the crease: s' = s cos(a).
- gutter: one page of an open book, with the bend line at the spine and s running into the
  page: the paper leaves the gutter steeply (slope angle ``rise``) and flattens out over
  ``decay`` (slope rise * (exp(-s / decay) - sag)), so it bulges up near the spine and sinks a
  little towards its outer edge. Seen from above, s' is the integral of cos(slope) and the
  lifted paper looks larger: t' = t (1 + magnify * z / z_max), with t from the middle of the
  gutter. The corners at the spine stay put, the page's top and bottom edges bow outward next
  to it: the outline that makes a scanner take the bulge for the page's corner.

Both have closed-form inverses, which is what ``cv2.remap`` needs: the compositor maps each
output pixel back through the page homography into the warp's own (s, t) frame (one
projective map, :meth:`PageWarp.to_st`), through :meth:`PageWarp.unbend` (a function of s
alone) and back to the flat page, and samples page and mask in one remap. Page
corners go forward through :meth:`PageWarp.forward`, exactly. The surface normal tilts by the
local bend angle, so a Lambertian gain ``n . l / n0 . l`` shades the page consistently with
its shape (:meth:`PageWarp.shade`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from docsynth.generate.pagemap import Mapped


@dataclass
class GutterProfile:
    """A bowed book page's cross-section, tabulated along the arc length ``s`` from the spine:
    where each point is seen from above (``seen``), its height (``z``, 0-1) and its slope;
    continued straight past the table's end."""

    s: np.ndarray
    seen: np.ndarray
    z: np.ndarray
    slope: np.ndarray

    def seen_at(self, s: np.ndarray) -> np.ndarray:
        out = np.interp(s, self.s, self.seen)
        end = s > self.s[-1]
        out[end] = self.seen[-1] + (s[end] - self.s[-1]) * np.cos(self.slope[-1])
        return out

    def s_at(self, seen: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`seen_at` (``seen`` grows with ``s``: the slope stays under 90 degrees)."""
        out = np.interp(seen, self.seen, self.s)
        end = seen > self.seen[-1]
        out[end] = self.s[-1] + (seen[end] - self.seen[-1]) / np.cos(self.slope[-1])
        return out

    def z_at(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.s, self.z)

    def slope_at(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.s, self.slope)


@dataclass
class PageWarp:
    kind: str  # "curl", "fold" or "gutter"
    origin: np.ndarray  # a point on the bend line, page edge coordinates
    axis: np.ndarray  # unit vector across the line (s direction)
    length: float  # curl: extent of the curled part; fold: unused
    radius: float = 1.0  # curl radius
    magnify: float = 0.0  # curl: lateral growth of lifted paper
    angles: tuple[float, float] = (0.0, 0.0)  # fold: tilt of the s<0 and s>0 halves (radians)
    light: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))  # towards the light, z up
    crease: float = 0.0  # fold: darkness of the crease line
    profile: GutterProfile | None = None  # gutter: the page's cross-section

    def _st(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = pts - self.origin
        normal = np.array([-self.axis[1], self.axis[0]])
        return d @ self.axis, d @ normal

    def _xy(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        normal = np.array([-self.axis[1], self.axis[0]])
        return self.origin + s[..., None] * self.axis + t[..., None] * normal

    def forward(self, pts: np.ndarray) -> np.ndarray:
        """Flat page points -> where they appear in the warped page plane."""
        s, t = self._st(np.asarray(pts, np.float64))
        if self.kind == "curl":
            pos = s > 0
            theta = np.where(pos, s / self.radius, 0.0)
            z = self.radius * (1 - np.cos(theta))
            s2 = np.where(pos, self.radius * np.sin(theta), s)
            t2 = t * (1 + self.magnify * z / self.length)
        elif self.kind == "gutter":
            assert self.profile is not None
            pos = s > 0
            s2, t2 = s.copy(), t.copy()
            s2[pos] = self.profile.seen_at(s[pos])
            t2[pos] = t[pos] * (1 + self.magnify * self.profile.z_at(s[pos]))
        else:
            a = np.where(s > 0, self.angles[1], self.angles[0])
            s2, t2 = s * np.cos(a), t
        return self._xy(s2, t2)

    def to_st(self) -> np.ndarray:
        """The 3x3 affine map from the page plane to the warp's own frame: s across the bend
        line (along ``axis``), t along it, both from ``origin``."""
        ax, ay = float(self.axis[0]), float(self.axis[1])
        ox, oy = float(self.origin[0]), float(self.origin[1])
        return np.array([[ax, ay, -(ax * ox + ay * oy)], [-ay, ax, ay * ox - ax * oy], [0.0, 0.0, 1.0]])

    def unbend(self, s2: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """In the warp's frame (:meth:`to_st`): warped (s2, t2) -> flat (s, t), plus the local
        bend angle. Works in the dtype it is given; the nonlinear part only where paper bends."""
        s, t = np.array(s2, copy=True), np.array(t2, copy=True)
        bend = np.zeros_like(s)
        pos = s2 > 0
        if self.kind == "curl":
            sp = s2[pos]
            theta = np.arcsin(np.minimum(sp / self.radius, 1.0))
            # Past the top of the cylinder there is no paper: push such points off the page.
            theta[sp > self.radius] = 10.0
            z = self.radius * (1 - np.cos(np.minimum(theta, np.pi / 2)))
            s[pos] = self.radius * theta
            t[pos] = t2[pos] / (1 + self.magnify * z / self.length)
            bend[pos] = theta
        elif self.kind == "gutter":
            assert self.profile is not None
            flat = self.profile.s_at(s2[pos].astype(np.float64))
            s[pos] = flat
            t[pos] = t2[pos] / (1 + self.magnify * self.profile.z_at(flat))
            bend[pos] = self.profile.slope_at(flat)
        else:
            a1, a2 = self.angles
            s *= np.where(pos, 1 / np.cos(a2), 1 / np.cos(a1)).astype(s.dtype)
            bend[:] = np.where(pos, a2, -a1 * (s2 < 0))
        return s, t, bend

    def inverse(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Warped plane -> flat page coordinates, plus the local bend angle (for shading)."""
        m = self.to_st()
        s, t, bend = self.unbend(m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2])
        back = np.linalg.inv(m)
        return back[0, 0] * s + back[0, 1] * t + back[0, 2], back[1, 0] * s + back[1, 1] * t + back[1, 2], bend

    def stage(self):
        """This warp as a stage of the page's map (for dense labels): flat page -> warped plane
        and back, both in closed form."""
        def backward(pts):
            u, v, _ = self.inverse(pts[:, 0], pts[:, 1])
            return np.stack([u, v], axis=1)
        return Mapped(self.forward, backward, None, self.kind)

    def shade(self, bend: np.ndarray, s2: np.ndarray | None = None) -> np.ndarray:
        """Lambertian gain relative to flat paper for a surface tilted by ``bend`` towards
        ``-axis`` (it rises along +axis)."""
        nx = -np.sin(bend) * self.axis[0]
        ny = -np.sin(bend) * self.axis[1]
        nz = np.cos(bend)
        lx, ly, lz = self.light
        gain = (nx * lx + ny * ly + nz * lz) / max(lz, 1e-3)
        return np.clip(gain, 0.35, 1.35)


def random_curl(rng: np.random.Generator, width: float, height: float, length=(0.1, 0.35),
                angle=(0.3, 1.3), magnify=(0.0, 0.12)) -> PageWarp:
    """Curl one edge (or a corner, when the axis is diagonal) of a width x height page."""
    centre = np.array([width / 2, height / 2])
    if rng.random() < 0.7:
        k = int(rng.integers(4))
        axis = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]][k], np.float64)  # towards top/right/bottom/left
    else:
        ang = rng.uniform(0, 2 * np.pi)
        axis = np.array([np.cos(ang), np.sin(ang)])
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    reach = float(((corners - centre) @ axis).max())  # distance from centre to the far edge/corner
    size = np.sqrt(width * height)
    curl_len = min(reach * 0.9, rng.uniform(*length) * size)
    origin = centre + axis * (reach - curl_len)
    theta_max = rng.uniform(*angle)
    radius = curl_len / theta_max
    return PageWarp("curl", origin, axis, curl_len, radius=radius, magnify=rng.uniform(*magnify),
                    light=_light(rng))


def gutter_warp(rng: np.random.Generator, width: float, height: float, side: int,
                rise=(0.25, 1.1), decay=(0.03, 0.15), sag=(0.0, 0.7), magnify=(0.02, 0.16),
                light: np.ndarray | None = None) -> PageWarp:
    """One page of an open book whose spine runs along ``side`` (0 left, 1 right, 2 top,
    3 bottom) of a width x height page; see the module notes. ``z`` is stored divided by its
    largest value, so ``magnify`` is the growth of the page's width where it is highest."""
    axis = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]][side], np.float64)  # into the page
    origin = np.array([[0, height / 2], [width, height / 2], [width / 2, 0], [width / 2, height]][side], np.float64)
    extent = width if side < 2 else height
    phi0, lam = rng.uniform(*rise), rng.uniform(*decay) * extent
    beta = rng.uniform(*sag) * lam / extent  # the outer edge ends this share lower than the bulge
    s = np.linspace(0.0, 1.02 * extent, 400)
    slope = phi0 * (np.exp(-s / lam) - beta)
    ds = np.diff(s)
    s2 = np.concatenate([[0.0], np.cumsum(0.5 * (np.cos(slope[1:]) + np.cos(slope[:-1])) * ds)])
    z = np.concatenate([[0.0], np.cumsum(0.5 * (np.sin(slope[1:]) + np.sin(slope[:-1])) * ds)])
    z = np.maximum(z, 0.0) / max(float(z.max()), 1e-9)
    return PageWarp("gutter", origin, axis, extent, magnify=rng.uniform(*magnify),
                    light=_light(rng) if light is None else light, profile=GutterProfile(s, s2, z, slope))


def random_fold(rng: np.random.Generator, width: float, height: float, angle=(0.08, 0.35)) -> PageWarp:
    """A crease across the page (mostly parallel to a side: letters are folded in thirds or
    halves) with both halves tilted."""
    centre = np.array([width / 2, height / 2])
    base = rng.choice([0.0, np.pi / 2])
    ang = base + rng.normal(0, 0.08)
    axis = np.array([np.cos(ang), np.sin(ang)])
    span = abs(axis[0]) * width + abs(axis[1]) * height
    origin = centre + axis * rng.uniform(-0.2, 0.2) * span
    a1, a2 = rng.uniform(*angle), rng.uniform(*angle)
    if rng.random() < 0.5:  # valley fold: both halves rise towards the outside
        a1 = -a1
    return PageWarp("fold", origin, axis, span, angles=(a1, a2), light=_light(rng), crease=rng.uniform(0.0, 0.25))


def _light(rng: np.random.Generator) -> np.ndarray:
    elev = rng.uniform(np.radians(35), np.radians(75))
    az = rng.uniform(0, 2 * np.pi)
    v = np.array([np.cos(az) * np.cos(elev), np.sin(az) * np.cos(elev), np.sin(elev)])
    return v / np.linalg.norm(v)
