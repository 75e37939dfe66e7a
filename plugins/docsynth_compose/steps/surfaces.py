"""Light desk surfaces: the scenes where scanners fail most (a white sheet on a white desk).

Real office and home photos put pages on white, cream, pink-white or light-grey laminate,
light wood, glass and white tables far more often than on the saturated textures a texture
library offers. :func:`desk_surface` renders such a surface at frame size:

- a base colour drawn per kind (``KINDS``), always light and low in saturation;
- subtle texture: fine sensor-like grain, low-frequency blotches, and for wood a stretched
  grain along one direction, for laminate a fine speckle;
- light: a broad gradient across the desk and a darker rim (vignetting), so the desk can be
  brighter than the page on one side and darker on the other.

The surface is the background only: it touches no mask and no corners (the page is pasted on
top later), so there is nothing to keep in step with the labels.
"""

from __future__ import annotations

import cv2
import numpy as np

# kind -> (BGR base colour range low, high); all light and nearly neutral
KINDS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "white": ((215, 218, 220), (250, 252, 252)),
    "cream": ((190, 215, 225), (220, 238, 248)),
    "pink_white": ((205, 205, 225), (232, 230, 250)),
    "light_grey": ((150, 152, 152), (215, 215, 215)),
    "light_wood": ((130, 165, 195), (190, 215, 235)),
    "glass": ((140, 150, 145), (200, 210, 205)),
}


def _noise(rng: np.random.Generator, w: int, h: int, cell: float, stretch: tuple[float, float] = (1, 1)) -> np.ndarray:
    """Smooth zero-mean unit noise with features about ``cell`` px large (stretched per axis)."""
    gw = max(2, int(w / max(1.0, cell * stretch[0])) + 2)
    gh = max(2, int(h / max(1.0, cell * stretch[1])) + 2)
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return field / max(1e-6, float(field.std()))


def desk_surface(rng: np.random.Generator, w: int, h: int, kind: str | None = None) -> np.ndarray:
    """A w x h BGR uint8 light desk surface of ``kind`` (random when None)."""
    names = list(KINDS)
    if kind is None:
        kind = names[int(rng.integers(len(names)))]
    lo, hi = (np.asarray(v, np.float32) for v in KINDS[kind])
    base = lo + (hi - lo) * np.float32(rng.uniform())
    size = float(max(w, h))
    field = np.zeros((h, w), np.float32)
    field += _noise(rng, w, h, size * rng.uniform(0.15, 0.4)) * rng.uniform(1.5, 5.0)  # blotches
    if kind == "light_wood":
        ang = rng.uniform(0, 180)
        grain = _noise(rng, w * 2, h * 2, size * 0.01, stretch=(40.0, 1.0)) * rng.uniform(4, 10)
        rot = cv2.getRotationMatrix2D((w, h), ang, 1.0)
        grain = cv2.warpAffine(grain, rot, (w * 2, h * 2), borderMode=cv2.BORDER_REFLECT)
        field += grain[h // 2:h // 2 + h, w // 2:w // 2 + w]
    elif kind in ("light_grey", "white", "pink_white") and rng.random() < 0.5:
        field += _noise(rng, w, h, 1.5) * rng.uniform(1.0, 3.0)  # laminate speckle
    image = np.empty((h, w, 3), np.float32)
    image[:] = base
    image += field[..., None]
    # light: a broad gradient (window on one side) and a darker rim
    ang = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = ((xs - w / 2) * np.cos(ang) + (ys - h / 2) * np.sin(ang)) / size
    gain = 1 + rng.uniform(0.05, 0.35) * u
    r2 = ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2
    gain *= 1 - rng.uniform(0.0, 0.25) * r2 / 2
    if kind == "glass":  # a soft reflection band across the glass
        v = ((xs - w / 2) * -np.sin(ang) + (ys - h / 2) * np.cos(ang)) / size
        gain += rng.uniform(0.05, 0.2) * np.exp(-((v - rng.uniform(-0.3, 0.3)) / rng.uniform(0.05, 0.15)) ** 2)
    image *= gain[..., None]
    image += rng.normal(0, rng.uniform(0.8, 2.5), image.shape).astype(np.float32)  # grain
    return np.clip(image, 0, 255).astype(np.uint8)
