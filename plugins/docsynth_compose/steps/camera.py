"""Camera steps: noise, blur, compression, vignetting.

Noise draws millions of normal numbers per image if done naively (the slowest thing in a
pipeline). Instead a fixed bank of standard-normal noise is made once per process from a
constant seed, and each sample takes a crop of it at an offset (and flip) drawn from its own
``rng``; the result is still a pure function of the sample's generator.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import Step, register_step, uniform

_BANK_SIZE = 1024
_BANK: np.ndarray | None = None


def noise_bank() -> np.ndarray:
    """(1024, 1024, 3) float32 standard-normal noise, identical in every process."""
    global _BANK
    if _BANK is None:
        rng = np.random.Generator(np.random.PCG64(20240611))
        _BANK = rng.standard_normal((_BANK_SIZE, _BANK_SIZE, 3), dtype=np.float32)
    return _BANK


def noise_patch(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) standard-normal field: a random crop of the bank, tiled when larger."""
    bank = noise_bank()
    oy, ox = int(rng.integers(_BANK_SIZE)), int(rng.integers(_BANK_SIZE))
    flip = int(rng.integers(4))
    if h <= _BANK_SIZE - oy and w <= _BANK_SIZE - ox:
        patch = bank[oy:oy + h, ox:ox + w]
    else:
        reps = (-(-(h + oy) // _BANK_SIZE), -(-(w + ox) // _BANK_SIZE), 1)
        patch = np.tile(bank, reps)[oy:oy + h, ox:ox + w]
    if flip & 1:
        patch = patch[::-1]
    if flip & 2:
        patch = patch[:, ::-1]
    return patch


def add_noise(image: np.ndarray, noise: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
    """image + noise * sigma (sigma a scalar, per channel, or per pixel), saturated to uint8."""
    out = image.astype(np.float32)
    out += noise * sigma
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


@register_step
class ISONoise(Step):
    """Sensor noise at high ISO: luminance noise of ``intensity`` (share of 255, scaled with the
    square root of brightness like shot noise) plus colour noise of ``color_shift``."""

    name = "iso_noise"
    defaults = {"color_shift": [0.01, 0.05], "intensity": [0.1, 0.5]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        return {"intensity": uniform(rng, self.intensity), "color": uniform(rng, self.color_shift),
                "noise": noise_patch(rng, h, w)}

    def apply(self, image, intensity, color, noise, **params):
        lum = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
        sigma_l = intensity * 12 * np.sqrt(lum / 255 + 0.05)  # up to ~6 grey levels in the lights
        out = image.astype(np.float32)
        out += (noise[..., :1] * sigma_l[..., None])
        out += noise[..., 1:2] * (color * 255) * np.array([1, -0.5, -0.5], np.float32) * 0.5
        out += noise[..., 2:3] * (color * 255) * np.array([-0.5, -0.5, 1], np.float32) * 0.5
        return np.clip(out, 0, 255, out=out).astype(np.uint8)


@register_step
class SensorNoise(Step):
    """Plain Gaussian read noise of ``sigma`` grey levels, slightly correlated like a phone's
    denoised output (``grain`` > 1 enlarges the grain)."""

    name = "sensor_noise"
    defaults = {"sigma": [2.0, 8.0], "grain": [1.0, 1.8]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        grain = uniform(rng, self.grain)
        gh, gw = max(1, int(h / grain)), max(1, int(w / grain))
        return {"sigma": uniform(rng, self.sigma), "noise": noise_patch(rng, gh, gw)}

    def apply(self, image, sigma, noise, **params):
        h, w = image.shape[:2]
        if noise.shape[:2] != (h, w):
            noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR) * 1.3
        return add_noise(image, noise, sigma)


def line_kernel(length: int, angle: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(np.deg2rad(angle)) * c, np.sin(np.deg2rad(angle)) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1,
             cv2.LINE_AA)
    return k / k.sum()


@register_step
class MotionBlur(Step):
    """Blur along a random direction with a line kernel of 3..``blur_limit`` pixels."""

    name = "motion_blur"
    defaults = {"blur_limit": 18}

    def get_params(self, rng, sample):
        length = int(rng.integers(3, max(3, int(self.blur_limit)) + 1))
        return {"kernel": line_kernel(length, uniform(rng, (0, 180)))}

    def apply(self, image, kernel, **params):
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def disk_kernel(radius: float) -> np.ndarray:
    r = max(0.5, radius)
    n = int(np.ceil(r)) * 2 + 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    cv2.circle(k, (c * 8, c * 8), int(round(r * 8)), 1.0, -1, cv2.LINE_AA, shift=3)
    return k / k.sum()


@register_step
class DefocusBlur(Step):
    """Out-of-focus blur: a disk kernel of ``radius`` pixels (a lens's circle of confusion)."""

    name = "defocus"
    defaults = {"radius": [1.0, 3.5]}

    def get_params(self, rng, sample):
        return {"kernel": disk_kernel(uniform(rng, self.radius))}

    def apply(self, image, kernel, **params):
        return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


@register_step
class GaussianBlur(Step):
    """Soft lens / downscaling blur of ``sigma`` pixels."""

    name = "gaussian_blur"
    defaults = {"sigma": [0.4, 1.2]}

    def get_params(self, rng, sample):
        return {"sigma": uniform(rng, self.sigma)}

    def apply(self, image, sigma, **params):
        return cv2.GaussianBlur(image, (0, 0), sigma)


@register_step
class JpegCompression(Step):
    """Re-encode as JPEG at quality ``quality`` (blocking and ringing artefacts)."""

    name = "jpeg"
    defaults = {"quality": [30, 80]}

    def get_params(self, rng, sample):
        lo, hi = self.quality
        return {"quality": int(rng.integers(int(lo), int(hi) + 1))}

    def apply(self, image, quality, **params):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image


@register_step
class Sharpen(Step):
    """Phone-style unsharp masking (halos along edges, as in over-processed photos)."""

    name = "sharpen"
    defaults = {"amount": [0.3, 1.2], "sigma": [1.0, 2.5]}

    def get_params(self, rng, sample):
        return {"amount": uniform(rng, self.amount), "sigma": uniform(rng, self.sigma)}

    def apply(self, image, amount, sigma, **params):
        blur = cv2.GaussianBlur(image, (0, 0), sigma)
        return cv2.addWeighted(image, 1 + amount, blur, -amount, 0)


def radial(h: int, w: int, cx: float, cy: float, scale: float, grid: int = 16) -> np.ndarray:
    """Normalised squared distance to (cx, cy) on a coarse grid, upsampled to (h, w)."""
    gh, gw = max(2, h // grid), max(2, w // grid)
    xs = (np.linspace(0, w, gw) - cx) / scale
    ys = (np.linspace(0, h, gh) - cy) / scale
    d2 = xs[None, :] ** 2 + ys[:, None] ** 2
    return cv2.resize(d2.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def apply_gain(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply by a per-pixel gain field (h, w) float32, saturating."""
    out = image.astype(np.float32)
    out *= gain[..., None]
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


@register_step
class Vignetting(Step):
    """Darker corners: gain 1 - strength * r^2 (r = 1 at the corners), centre jittered."""

    name = "vignetting"
    defaults = {"strength": [0.15, 0.5]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        return {"strength": uniform(rng, self.strength),
                "cx": w / 2 + uniform(rng, (-0.1, 0.1)) * w, "cy": h / 2 + uniform(rng, (-0.1, 0.1)) * h}

    def apply(self, image, strength, cx, cy, **params):
        h, w = image.shape[:2]
        d2 = radial(h, w, cx, cy, np.hypot(w, h) / 2)
        return apply_gain(image, np.clip(1 - strength * d2, 0.2, 1))
