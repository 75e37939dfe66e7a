"""Camera steps: noise, blur, compression, vignetting.

Noise draws millions of normal numbers per image if done naively (the slowest thing in a
pipeline). Instead a fixed bank of standard-normal noise is made once per process from a
constant seed, and each sample takes a window of it at an offset drawn from its own
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
    """A (h, w, 3) standard-normal field: a random window of the bank (tiled when larger)."""
    bank = noise_bank()
    if h > _BANK_SIZE or w > _BANK_SIZE:  # larger than the bank: tile it
        bank = np.tile(bank, (-(-h // _BANK_SIZE), -(-w // _BANK_SIZE), 1))
    oy = int(rng.integers(bank.shape[0] - h + 1))
    ox = int(rng.integers(bank.shape[1] - w + 1))
    return bank[oy:oy + h, ox:ox + w]


def coloured_noise(noise: np.ndarray, luma: float, chroma: float) -> np.ndarray:
    """Mix the three independent noise channels into luminance noise (the same in B, G, R) of
    std ``luma`` plus colour noise of std ``chroma``, in one colour transform."""
    m = np.array([[luma, chroma, 0.0], [luma, -0.5 * chroma, -0.5 * chroma], [luma, 0.0, chroma]], np.float32)
    return cv2.transform(noise, m)


@register_step
class ISONoise(Step):
    """Sensor noise at high ISO: luminance noise of ``intensity`` (scaled with the square root
    of brightness, like shot noise) plus colour noise of ``color_shift`` (shares of 255)."""

    name = "iso_noise"
    defaults = {"color_shift": [0.01, 0.05], "intensity": [0.1, 0.5]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        return {"intensity": uniform(rng, self.intensity), "color": uniform(rng, self.color_shift),
                "noise": noise_patch(rng, h, w)}

    def apply(self, image, intensity, color, noise, **params):
        # Shot noise grows with the square root of the signal: a per-pixel luminance factor
        # from a lookup table on the grey image.
        table = (np.sqrt(np.arange(256, dtype=np.float32) / 255 + 0.05)).reshape(256, 1)
        factor = cv2.LUT(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), table)
        lum = noise[..., 0] * factor * (intensity * 12)
        total = coloured_noise(noise, 0.0, color * 255 * 0.5)
        total += cv2.merge([lum, lum, lum])
        return cv2.add(image, total, dtype=cv2.CV_8U)


@register_step
class SensorNoise(Step):
    """Gaussian read noise of ``sigma`` grey levels, mostly luminance (``chroma`` is the share of
    colour noise), as in a phone's processed output."""

    name = "sensor_noise"
    defaults = {"sigma": [2.0, 8.0], "chroma": [0.1, 0.5]}

    def get_params(self, rng, sample):
        h, w = sample.image.shape[:2]
        return {"sigma": uniform(rng, self.sigma), "chroma": uniform(rng, self.chroma),
                "noise": noise_patch(rng, h, w)}

    def apply(self, image, sigma, chroma, noise, **params):
        return cv2.add(image, coloured_noise(noise, sigma, sigma * chroma), dtype=cv2.CV_8U)


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
    case = "blur"

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
    case = "blur"

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


def coarse_grid(h: int, w: int, cells: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Frame coordinates (x row vector, y column vector) of a coarse grid spanning the frame."""
    gh, gw = min(h, max(17, h // cells)), min(w, max(17, w // cells))  # fine enough for small frames too
    return np.linspace(0, w, max(2, gw))[None, :], np.linspace(0, h, max(2, gh))[:, None]


def upsample(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """A smooth coarse field resized to the frame (float32)."""
    return cv2.resize(np.asarray(field, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def radial(h: int, w: int, cx: float, cy: float, scale: float) -> np.ndarray:
    """Squared distance to (cx, cy) in units of ``scale`` on a COARSE grid: apply the (smooth)
    function of it there, then :func:`upsample` once."""
    xs, ys = coarse_grid(h, w)
    return ((xs - cx) / scale) ** 2 + ((ys - cy) / scale) ** 2


GAIN_STEPS = 128  # a gain in 8 bits: steps of 1/128, up to 1.99 (light fields stay within 0.2-1.6)


def apply_gain(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply by a per-pixel gain field (h, w), rounded and saturated to uint8. The gain is
    quantised to 1/128 so that the product runs in 8-bit integers (twice as fast as in floats;
    at most 2 grey levels from the exact product, below the JPEG noise of the output)."""
    g = cv2.convertScaleAbs(np.asarray(gain, np.float32), alpha=GAIN_STEPS)
    return cv2.multiply(image, cv2.merge([g, g, g]), scale=1 / GAIN_STEPS)


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
        return apply_gain(image, upsample(np.clip(1 - strength * d2, 0.2, 1), h, w))
