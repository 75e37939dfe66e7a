"""Lighting steps: shadows, flares and uneven light.

Smooth light fields are computed on a coarse grid and upsampled: a 640x480 gain field costs
the same as a 40x30 one plus one resize.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import Step, register_step, uniform
from .camera import apply_gain, coarse_grid, radial, upsample


def _polygon(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float, n: int) -> np.ndarray:
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.5, 1.0, n)
    return np.stack([cx + np.cos(angles) * radii * rx, cy + np.sin(angles) * radii * ry], axis=1)


@register_step
class RandomShadow(Step):
    """Hard-edged polygon shadows (the albumentations recipe: 1-2 polygons of 5 vertices in the
    lower half, pixels inside darkened by half)."""

    name = "random_shadow"
    defaults = {"num_shadows": [1, 2], "vertices": 5, "darkness": 0.5}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        n = int(rng.integers(int(self.num_shadows[0]), int(self.num_shadows[1]) + 1))
        polys = [_polygon(rng, rng.uniform(0, w), rng.uniform(h / 2, h), rng.uniform(0.2, 0.5) * w,
                          rng.uniform(0.2, 0.5) * h, int(self.vertices)) for _ in range(n)]
        return {"polys": polys}

    def apply(self, image, polys, **params):
        h, w = image.shape[:2]
        region = np.zeros((h, w), np.uint8)
        cv2.fillPoly(region, [np.round(p).astype(np.int32) for p in polys], 255)
        gain = np.where(region > 0, np.float32(self.darkness), np.float32(1.0))
        return apply_gain(image, gain)


@register_step
class SunFlare(Step):
    """A bright light source in the upper half with a glow and a string of translucent lens
    ghosts along the line through the image centre."""

    name = "sun_flare"
    defaults = {"radius": [0.08, 0.2], "ghosts": [4, 8], "strength": [0.4, 0.8]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        sx, sy = rng.uniform(0, w), rng.uniform(0, h / 2)
        n = int(rng.integers(int(self.ghosts[0]), int(self.ghosts[1]) + 1))
        t = rng.uniform(0.1, 1.6, n)
        ghosts = [(sx + (w / 2 - sx) * ti, sy + (h / 2 - sy) * ti, rng.uniform(0.01, 0.05) * max(h, w),
                   rng.uniform(0.05, 0.2)) for ti in t]
        return {"source": (sx, sy), "radius": uniform(rng, self.radius) * max(h, w),
                "strength": uniform(rng, self.strength), "ghosts": ghosts,
                "tint": rng.uniform(200, 255, 3)}

    def apply(self, image, source, radius, strength, ghosts, tint, **params):
        h, w = image.shape[:2]
        cover = upsample(strength * np.exp(-radial(h, w, source[0], source[1], radius)), h, w)
        layer = np.zeros((h, w), np.float32)
        for gx, gy, gr, ga in ghosts:
            cv2.circle(layer, (int(gx), int(gy)), max(1, int(gr)), float(ga), -1, cv2.LINE_AA)
        cover = 1 - (1 - cover) * (1 - layer)  # glow and ghosts both move pixels towards the light
        light = np.empty_like(image)
        light[:] = np.asarray(tint, np.float32).astype(np.uint8)
        return cv2.blendLinear(light, image, cover, 1 - cover)


@register_step
class UnevenLight(Step):
    """Low-frequency illumination: a linear gradient times a soft hotspot (a lamp or a window),
    so one side of the frame is darker than the other, as in most real photos."""

    name = "uneven_light"
    defaults = {"gradient": [0.1, 0.45], "hotspot": [0.0, 0.35]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        return {"angle": rng.uniform(0, 2 * np.pi), "gradient": uniform(rng, self.gradient),
                "hotspot": uniform(rng, self.hotspot), "hx": rng.uniform(-0.2, 1.2) * w,
                "hy": rng.uniform(-0.2, 1.2) * h, "hr": rng.uniform(0.3, 0.8) * np.hypot(w, h)}

    def apply(self, image, angle, gradient, hotspot, hx, hy, hr, **params):
        h, w = image.shape[:2]
        xs, ys = coarse_grid(h, w)
        xs, ys = xs / w - 0.5, (ys / h - 0.5) * (h / w)
        ramp = np.cos(angle) * xs + np.sin(angle) * ys
        ramp = ramp / max(1e-6, np.abs(ramp).max())
        gain = (1 + gradient * ramp * 0.5 - gradient * 0.25) * (1 + hotspot * np.exp(-radial(h, w, hx, hy, hr)))
        gain = upsample(gain, h, w)
        return apply_gain(image, gain.astype(np.float32))


@register_step
class CastShadow(Step):
    """A soft shadow cast by something outside the frame (the photographer, a phone, a lamp
    arm): a large blurred polygon entering from one edge, darkening by ``darkness`` with a cool
    tint (shadows are lit by the sky/ambient light). Strong settings reach 70% darkening."""

    name = "cast_shadow"
    defaults = {"darkness": [0.25, 0.6], "softness": [0.02, 0.08], "tint": 0.06}
    case = "shadow"

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        side = int(rng.integers(4))
        # A blob centred just outside one edge reaching into the frame.
        cx, cy = [(rng.uniform(0, w), -rng.uniform(0, 0.2) * h), (w + rng.uniform(0, 0.2) * w, rng.uniform(0, h)),
                  (rng.uniform(0, w), h + rng.uniform(0, 0.2) * h), (-rng.uniform(0, 0.2) * w, rng.uniform(0, h))][side]
        poly = _polygon(rng, cx, cy, rng.uniform(0.3, 0.9) * w, rng.uniform(0.3, 0.9) * h, int(rng.integers(5, 9)))
        return {"poly": poly, "darkness": uniform(rng, self.darkness),
                "softness": uniform(rng, self.softness), "tint": uniform(rng, (0, self.tint))}

    def apply(self, image, poly, darkness, softness, tint, **params):
        h, w = image.shape[:2]
        f = 4  # draw and blur at quarter resolution: the edge is soft anyway
        sh, sw = max(2, h // f), max(2, w // f)
        region = np.zeros((sh, sw), np.float32)
        cv2.fillPoly(region, [np.round(poly / f * 8).astype(np.int32)], 1.0, cv2.LINE_AA, shift=3)
        region = cv2.GaussianBlur(region, (0, 0), max(0.5, softness * max(sh, sw)))
        region = cv2.resize(region, (w, h), interpolation=cv2.INTER_LINEAR)
        # Fully shadowed colour: darker and a little bluer; blend towards it by coverage.
        full = cv2.transform(image, np.diag([(1 - darkness) * (1 + tint), 1 - darkness,
                                             (1 - darkness) * (1 - tint)]).astype(np.float32))
        return cv2.blendLinear(full, image, region, 1 - region)


@register_step
class Glare(Step):
    """A specular reflection of a ceiling light: a soft bright ellipse that washes out colour,
    like the hotspot on a glossy table or page."""

    name = "glare"
    defaults = {"strength": [0.2, 0.6], "size": [0.08, 0.3]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        return {"cx": rng.uniform(0.1, 0.9) * w, "cy": rng.uniform(0.1, 0.9) * h,
                "r": uniform(rng, self.size) * np.hypot(w, h), "strength": uniform(rng, self.strength)}

    def apply(self, image, cx, cy, r, strength, **params):
        h, w = image.shape[:2]
        glow = upsample(strength * np.exp(-radial(h, w, cx, cy, r)), h, w)
        return cv2.blendLinear(np.full_like(image, 250), image, glow, 1 - glow)
