"""Background provider `procedural`: surfaces rendered from noise, no download needed.

Families: wood, fabric, stone (marble/granite), desk clutter, gradient, noise, tiles, carpet.
Each background is a pure function of (seed, index); options: count, seed, size [w, h],
families (subset).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from docsynth.config import F, listing_options
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.kinds import BackgroundRef
from docsynth.options import Options

Rng = np.random.Generator


def _noise(rng: Rng, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: random grid upscaled with cubic interpolation."""
    ch, cw = max(2, int(cells * h / max(h, w))), max(2, int(cells * w / max(h, w)))
    grid = rng.random((ch, cw)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def _fractal(rng: Rng, h: int, w: int, octaves: int = 4, base: int = 4) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        out += amp * _noise(rng, h, w, base * 2 ** o)
        total += amp
        amp *= 0.5
    return out / total


def _colorize(t: np.ndarray, c0, c1) -> np.ndarray:
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return t[..., None] * (c1 - c0) + c0


def _wood(rng: Rng, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = _fractal(rng, h, w, 3, 3) * rng.uniform(20, 60)
    freq = rng.uniform(0.03, 0.12)
    grain = 0.5 + 0.5 * np.sin((yy + warp * 3) * freq + _fractal(rng, h, w, 2, 8) * 4)
    grain = grain ** rng.uniform(1.5, 3)
    fine = _noise(rng, h, w, max(w, h) // 3)
    t = np.clip(0.7 * grain + 0.3 * fine, 0, 1)
    light = rng.uniform([60, 110, 150], [120, 170, 220])  # BGR warm tones
    dark = light * rng.uniform(0.4, 0.7)
    img = _colorize(t, light, dark)
    if rng.random() < 0.6:  # planks
        plank = int(rng.uniform(0.1, 0.3) * h)
        for y in range(plank, h, plank):
            img[max(0, y - 1):y + 1] *= 0.55
    if rng.random() < 0.5:
        img = np.ascontiguousarray(np.rot90(img)) if h == w else cv2.resize(np.rot90(img), (w, h))
    return img


def _fabric(rng: Rng, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(3, 9)
    weave = 0.5 + 0.25 * np.sin(xx * 2 * np.pi / period) + 0.25 * np.sin(yy * 2 * np.pi / period)
    t = np.clip(0.6 * weave + 0.4 * _fractal(rng, h, w, 3, 6), 0, 1)
    base = rng.uniform(30, 230, size=3)
    img = _colorize(t, base * 0.6, base)
    if rng.random() < 0.4:  # stripes or checks
        stripe = (np.sin(xx * 2 * np.pi / rng.uniform(30, 120)) > 0.3).astype(np.float32)
        img = img * (1 - 0.3 * stripe[..., None]) + 0.3 * stripe[..., None] * rng.uniform(30, 230, 3)
    return img


def _stone(rng: Rng, h: int, w: int) -> np.ndarray:
    f = _fractal(rng, h, w, 5, 4)
    if rng.random() < 0.6:  # marble veins
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        veins = np.abs(np.sin((xx * rng.uniform(0.005, 0.02) + yy * rng.uniform(0.002, 0.01)) + f * 8))
        t = 1 - (1 - veins) ** 8 * 0.8
        base = rng.uniform(170, 250)
        img = _colorize(t, np.full(3, base * 0.45) + rng.uniform(-20, 20, 3), np.full(3, base))
    else:  # granite speckle
        speck = _noise(rng, h, w, max(h, w) // 2)
        t = np.clip(0.5 * f + 0.5 * speck, 0, 1)
        img = _colorize(t, rng.uniform(20, 90, 3), rng.uniform(120, 220, 3))
    return img


def _clutter(rng: Rng, h: int, w: int) -> np.ndarray:
    img = _colorize(_fractal(rng, h, w, 3, 3), rng.uniform(40, 200, 3) * 0.7, rng.uniform(40, 200, 3))
    img = np.ascontiguousarray(img)
    for _ in range(int(rng.integers(3, 12))):
        color = tuple(float(c) for c in rng.uniform(0, 255, 3))
        kind = rng.random()
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind < 0.35:  # sheets and sticky notes (pale rectangles, rotated)
            size = (float(rng.uniform(0.05, 0.35) * w), float(rng.uniform(0.05, 0.35) * h))
            box = cv2.boxPoints(((cx, cy), size, float(rng.uniform(0, 180)))).astype(np.int32)
            pale = tuple(float(c) for c in rng.uniform(180, 255, 3))
            cv2.fillPoly(img, [box], pale)
        elif kind < 0.6:  # pens, cables: long thin strokes
            pts = np.cumsum(rng.normal(0, w * 0.05, size=(6, 2)), axis=0) + (cx, cy)
            cv2.polylines(img, [pts.astype(np.int32)], False, color, int(rng.integers(2, 9)), cv2.LINE_AA)
        elif kind < 0.8:  # mugs, coins
            cv2.circle(img, (cx, cy), int(rng.uniform(0.02, 0.12) * w), color, -1, cv2.LINE_AA)
        else:  # books, devices
            size = (float(rng.uniform(0.1, 0.4) * w), float(rng.uniform(0.1, 0.4) * h))
            box = cv2.boxPoints(((cx, cy), size, float(rng.uniform(0, 180)))).astype(np.int32)
            cv2.fillPoly(img, [box], color)
    return img


def _gradient(rng: Rng, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (xx * np.cos(angle) + yy * np.sin(angle))
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    return _colorize(t, rng.uniform(0, 255, 3), rng.uniform(0, 255, 3))


def _noise_family(rng: Rng, h: int, w: int) -> np.ndarray:
    f = _fractal(rng, h, w, int(rng.integers(2, 6)), int(rng.integers(2, 16)))
    img = _colorize(f, rng.uniform(0, 255, 3), rng.uniform(0, 255, 3))
    return img + rng.normal(0, rng.uniform(2, 15), size=(h, w, 1)).astype(np.float32)


def _tiles(rng: Rng, h: int, w: int) -> np.ndarray:
    tile = int(rng.uniform(0.06, 0.2) * max(h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((xx // tile + yy // tile) % 2).astype(np.float32)
    a, b = rng.uniform(60, 250, 3), rng.uniform(60, 250, 3)
    if rng.random() < 0.5:
        b = a * rng.uniform(0.85, 1.0)
    img = _colorize(checker, a, b) * (0.85 + 0.15 * _fractal(rng, h, w, 3, 8))[..., None]
    grout = ((xx % tile) < 3) | ((yy % tile) < 3)
    img[grout] = rng.uniform(80, 200)
    return img


def _carpet(rng: Rng, h: int, w: int) -> np.ndarray:
    pile = _noise(rng, h, w, max(h, w) // 2)
    pattern = _fractal(rng, h, w, 2, int(rng.integers(3, 10)))
    t = np.clip(0.5 * pile + 0.5 * (pattern > rng.uniform(0.4, 0.6)), 0, 1)
    return _colorize(t, rng.uniform(10, 150, 3), rng.uniform(60, 230, 3))


FAMILIES: dict[str, Callable[[Rng, int, int], np.ndarray]] = {
    "wood": _wood, "fabric": _fabric, "stone": _stone, "clutter": _clutter,
    "gradient": _gradient, "noise": _noise_family, "tiles": _tiles, "carpet": _carpet,
}


def render_background(seed: int, index: int, width: int, height: int, family: str | None = None) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 0xB6]))
    names = sorted(FAMILIES)
    family = family or names[int(rng.integers(len(names)))]
    img = FAMILIES[family](rng, height, width)
    light = 0.75 + 0.45 * _noise(rng, height, width, 3)  # uneven room light
    img = img * light[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


class ProceduralBackgrounds:
    name = "procedural"
    description = "rendered surfaces: " + ", ".join(sorted(FAMILIES))
    licence = "CC0-1.0 (generated)"
    options = {**listing_options(),
               "size": F(list, [1024, 768], "[width, height] px"),
               "families": F((list, None), None, "surface families to draw (null: all)")}

    def list_backgrounds(self, options: Options) -> list[BackgroundRef]:
        count, seed = int(options.count), int(options.seed)
        width, height = (int(v) for v in options.size)
        families = list(options.families or sorted(FAMILIES))
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise DocsynthError(f"procedural backgrounds: unknown families {unknown}; "
                                f"known: {', '.join(sorted(FAMILIES))}")
        # Families cycle so even a handful of backgrounds covers every kind of surface.
        return [BackgroundRef(id=f"procedural-{seed}-{i:06d}", provider=self.name,
                              meta={"seed": seed, "index": i, "family": families[i % len(families)],
                                    "width": width, "height": height, "licence": self.licence})
                for i in range(count)]

    def load_background(self, ref: BackgroundRef) -> np.ndarray:
        m = ref.meta
        return render_background(m["seed"], m["index"], m["width"], m["height"], m["family"])


@hookimpl
def register_backgrounds(register):
    register(ProceduralBackgrounds())
