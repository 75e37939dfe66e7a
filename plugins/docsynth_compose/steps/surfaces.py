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

from .camera import noise_patch

# kind -> (BGR base colour range low, high); all light and nearly neutral
KINDS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "white": ((215, 218, 220), (250, 252, 252)),
    "cream": ((190, 215, 225), (220, 238, 248)),
    "pink_white": ((205, 205, 225), (232, 230, 250)),
    "light_grey": ((150, 152, 152), (215, 215, 215)),
    "light_wood": ((130, 165, 195), (190, 215, 235)),
    "glass": ((140, 150, 145), (200, 210, 205)),
}


def _noise(rng: np.random.Generator, w: int, h: int, cell: float, stretch: tuple[float, float] = (1, 1),
           angle: float = 0.0) -> np.ndarray:
    """Smooth zero-mean unit noise with features about ``cell`` px large (stretched per axis,
    then turned by ``angle`` degrees): a small random lattice interpolated straight into the
    frame by one affine warp."""
    cx, cy = cell * stretch[0], cell * stretch[1]
    reach = float(np.hypot(w, h)) if angle else 0.0  # a turned lattice must cover the diagonal
    gw = max(2, int((reach or w) / max(1.0, cx)) + (4 if angle else 2))
    gh = max(2, int((reach or h) / max(1.0, cy)) + (4 if angle else 2))
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    if not angle:
        field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    else:  # frame pixel -> lattice position: turn about the centres, then scale
        c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
        m = np.array([[c / cx, s / cx, 0.0], [-s / cy, c / cy, 0.0]])
        m[:, 2] = np.array([gw / 2, gh / 2]) - m[:, :2] @ np.array([w / 2, h / 2])
        field = cv2.warpAffine(small, m.astype(np.float32), (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
    return field / max(1e-6, float(field.std()))


def _light(rng: np.random.Generator, w: int, h: int, kind: str) -> np.ndarray:
    """The light on the desk, a smooth gain: a broad gradient (a window on one side), a darker
    rim, and on glass a soft reflection band. Smooth, so it is computed on a grid 8x coarser
    and interpolated."""
    size = float(max(w, h))
    gw, gh = max(2, -(-w // 8)), max(2, -(-h // 8))
    xs = ((np.arange(gw, dtype=np.float32) + 0.5) * (w / gw))[None, :]
    ys = ((np.arange(gh, dtype=np.float32) + 0.5) * (h / gh))[:, None]
    ang = rng.uniform(0, 2 * np.pi)
    u = ((xs - w / 2) * np.cos(ang) + (ys - h / 2) * np.sin(ang)) / size
    gain = 1 + rng.uniform(0.05, 0.35) * u
    r2 = ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2
    gain = gain * (1 - rng.uniform(0.0, 0.25) * r2 / 2)
    if kind == "glass":
        v = ((xs - w / 2) * -np.sin(ang) + (ys - h / 2) * np.cos(ang)) / size
        gain = gain + rng.uniform(0.05, 0.2) * np.exp(-((v - rng.uniform(-0.3, 0.3)) / rng.uniform(0.05, 0.15)) ** 2)
    return cv2.resize(gain.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def desk_surface(rng: np.random.Generator, w: int, h: int, kind: str | None = None) -> np.ndarray:
    """A w x h BGR uint8 light desk surface of ``kind`` (random when None)."""
    names = list(KINDS)
    if kind is None:
        kind = names[int(rng.integers(len(names)))]
    lo, hi = (np.asarray(v, np.float32) for v in KINDS[kind])
    base = lo + (hi - lo) * np.float32(rng.uniform())
    size = float(max(w, h))
    field = _noise(rng, w, h, size * rng.uniform(0.15, 0.4)) * np.float32(rng.uniform(1.5, 5.0))  # blotches
    if kind == "light_wood":  # a grain stretched along one direction
        ang = rng.uniform(0, 180)
        field += _noise(rng, w, h, size * 0.01, stretch=(40.0, 1.0), angle=ang) * np.float32(rng.uniform(4, 10))
    elif kind in ("light_grey", "white", "pink_white") and rng.random() < 0.5:
        field += _noise(rng, w, h, 1.5) * np.float32(rng.uniform(1.0, 3.0))  # laminate speckle
    gain = _light(rng, w, h, kind)
    # colour c = (base_c + field) * gain + grain_c, each channel in one OpenCV pass to 8 bits
    lit = field * gain
    image = cv2.merge([cv2.addWeighted(gain, float(b), lit, 1.0, 0.0, dtype=cv2.CV_8U) for b in base])
    grain = noise_patch(rng, h, w) * np.float32(rng.uniform(0.8, 2.5))  # sensor grain
    return cv2.add(image, grain, dtype=cv2.CV_8U)
