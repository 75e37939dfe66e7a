"""Photometric colour steps. Each is a lookup table or a small colour transform on uint8 pixels,
so it costs about a millisecond at 640x480 and never touches the labels."""

from __future__ import annotations

import cv2
import numpy as np

from .base import Step, register_step, uniform

_RAMP = np.arange(256, dtype=np.float32)


def channel_lut(image: np.ndarray, tables: list[np.ndarray]) -> np.ndarray:
    """Apply one 256-entry table per channel (B, G, R)."""
    lut = np.clip(np.stack(tables, axis=-1), 0, 255).astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(image, lut)


def gray_lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    return cv2.LUT(image, np.clip(table, 0, 255).astype(np.uint8))


@register_step
class BrightnessContrast(Step):
    """``out = alpha * in + beta * 255`` with alpha in 1 +- contrast_limit, beta in +- brightness_limit."""

    name = "brightness_contrast"
    defaults = {"brightness_limit": 0.2, "contrast_limit": 0.2}

    def get_params(self, rng, sample):
        return {"alpha": 1 + uniform(rng, (-self.contrast_limit, self.contrast_limit)),
                "beta": uniform(rng, (-self.brightness_limit, self.brightness_limit)) * 255}

    def apply(self, image, alpha, beta, **params):
        return gray_lut(image, _RAMP * alpha + beta)


@register_step
class ColorJitter(Step):
    """Brightness, contrast, saturation factors in 1 +- limit and a hue shift of up to ``hue``
    of the colour circle (torchvision semantics)."""

    name = "color_jitter"
    defaults = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.2}

    def get_params(self, rng, sample):
        return {"b": uniform(rng, (1 - self.brightness, 1 + self.brightness)),
                "c": uniform(rng, (1 - self.contrast, 1 + self.contrast)),
                "s": uniform(rng, (1 - self.saturation, 1 + self.saturation)),
                "h": uniform(rng, (-self.hue, self.hue))}

    def apply(self, image, b, c, s, h, **params):
        # Brightness and contrast (around the mean grey) fold into one table.
        mean = float(cv2.mean(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))[0]) * b
        out = gray_lut(image, (_RAMP * b - mean) * c + mean)
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        shift = int(round(h * 180))
        hue_table = ((np.arange(256) + shift) % 180).astype(np.float32)
        sat_table = _RAMP * s
        hsv = channel_lut(hsv, [hue_table, sat_table, _RAMP])
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


@register_step
class ChannelShuffle(Step):
    """Permute the B, G, R channels."""

    name = "channel_shuffle"

    def get_params(self, rng, sample):
        return {"order": [int(i) for i in rng.permutation(3)]}

    def apply(self, image, order, **params):
        channels = cv2.split(image)
        return cv2.merge([channels[i] for i in order])


@register_step
class RGBShift(Step):
    """Add up to +-``limit`` to each channel independently."""

    name = "rgb_shift"
    defaults = {"r_limit": 20, "g_limit": 20, "b_limit": 20}

    def get_params(self, rng, sample):
        return {"shift": [uniform(rng, (-lim, lim)) for lim in (self.b_limit, self.g_limit, self.r_limit)]}

    def apply(self, image, shift, **params):
        return channel_lut(image, [_RAMP + s for s in shift])


@register_step
class WhiteBalance(Step):
    """A camera's rendering of the scene: white balance error (temperature scales R against B,
    tint G against both), exposure gain, gamma, and the muted saturation of indoor photos."""

    name = "white_balance"
    defaults = {"temperature": 0.15, "tint": 0.06, "gain": [0.85, 1.15], "gamma": [0.85, 1.2],
                "saturation": [0.45, 1.0]}

    def get_params(self, rng, sample):
        t = uniform(rng, (-self.temperature, self.temperature))
        g = uniform(rng, (-self.tint, self.tint))
        return {"gains": [1 - t, 1 + g, 1 + t], "exposure": uniform(rng, self.gain),
                "gamma": uniform(rng, self.gamma), "saturation": uniform(rng, self.saturation)}

    def apply(self, image, gains, exposure, gamma, saturation=1.0, **params):
        base = 255 * (_RAMP / 255) ** gamma * exposure
        out = channel_lut(image, [base * k for k in gains])
        if abs(saturation - 1) > 1e-3:
            grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            out = cv2.addWeighted(out, saturation, grey, 1 - saturation, 0)
        return out
