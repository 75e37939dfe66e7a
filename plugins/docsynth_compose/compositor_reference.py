"""Compositor `reference`: the published reference recipe, step for step.

Per composite: a random perspective distortion (torchvision's RandomPerspective rule,
distortion scale 0.55) of the page and its mask inside the page's own canvas, pasted at a
random position on the background resized to 1.1-1.4x the page size; then, on the whole
composite: one of horizontal/vertical flip (p 0.8); rotation (p 0.5); colour jitter (p 0.7);
channel shuffle (p 0.6); brightness/contrast (p 0.5); one of optical/grid/elastic distortion
(p 0.8); one of ISO noise, motion blur (kernel up to 18), JPEG (quality 30-80) (p 0.7); one of
random shadow, sun flare, RGB shift (p 0.65). The recipe made 6 composites per document: set
``generate.per_document: 6``.

Options (``generate.compositor_options``): ``distortion_scale`` (0.55), ``bg_scale`` ([1.1, 1.4]),
``max_side`` (640: the composite is scaled so its longer side is at most this; null keeps the
raw size), ``pipeline`` (replace the step list), ``steps`` (step name -> options, e.g.
``{rotate: {p: 0.3}}``).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from docsynth.config import AT_LEAST_1, SHARE, F
from docsynth.generate.pagemap import Homography, page_map
from docsynth.geometry import apply_homography, page_corners
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Page, Sample
from docsynth.options import Options
from docsynth_compose.steps import build_pipeline
from docsynth_compose.steps.paste import composite, warp_page

REFERENCE_PIPELINE: list[Any] = [
    {"one_of": ["hflip", "vflip"], "p": 0.8},
    {"step": "rotate", "p": 0.5, "limit": 90, "border": "reflect"},
    {"step": "color_jitter", "p": 0.7},
    {"step": "channel_shuffle", "p": 0.6},
    {"step": "brightness_contrast", "p": 0.5},
    {"one_of": [{"step": "optical", "distort_limit": 0.05}, "grid", "elastic"], "p": 0.8},
    {"one_of": ["iso_noise", {"step": "motion_blur", "blur_limit": 18}, {"step": "jpeg", "quality": [30, 80]}],
     "p": 0.7},
    {"one_of": ["random_shadow", "sun_flare", "rgb_shift"], "p": 0.65},
]

OPTIONS = {
    "distortion_scale": F(float, 0.55, "torchvision RandomPerspective distortion scale", **SHARE),
    "bg_scale": F(list, [1.1, 1.4], "background size as a multiple of the page's, [low, high]"),
    "max_side": F((int, None), 640, "longer side of the composite at most (null: the raw size)", **AT_LEAST_1),
    "pipeline": F((list, None), None, "replace the step list"),
    "steps": F(dict, {}, "step name -> options, e.g. {rotate: {p: 0.3}}"),
}


def torchvision_perspective(rng: np.random.Generator, w: int, h: int, scale: float) -> np.ndarray:
    """End corners of torchvision's RandomPerspective for a w x h image (pixel-centre
    coordinates, start corners (0,0), (w-1,0), (w-1,h-1), (0,h-1))."""
    hw, hh = w // 2, h // 2
    dx, dy = int(scale * hw) + 1, int(scale * hh) + 1
    tl = [rng.integers(0, dx), rng.integers(0, dy)]
    tr = [rng.integers(w - dx, w), rng.integers(0, dy)]
    br = [rng.integers(w - dx, w), rng.integers(h - dy, h)]
    bl = [rng.integers(0, dx), rng.integers(h - dy, h)]
    return np.array([tl, tr, br, bl], np.float64)


class ReferenceCompositor:
    name = "reference"
    description = "the reference recipe: perspective 0.55, background 1.1-1.4x page, albumentations-style steps"
    options = OPTIONS

    def __init__(self):
        self._pipelines: dict[str, Any] = {}

    def pipeline(self, options: Options):
        key = repr((options.pipeline, options.steps))
        if key not in self._pipelines:  # built once per distinct options: compose stays cheap
            self._pipelines[key] = build_pipeline(REFERENCE_PIPELINE if options.pipeline is None else options.pipeline,
                                                  options.steps or {})
        return self._pipelines[key]

    def compose(self, page: Page, background: np.ndarray, rng: np.random.Generator,
                options: Options) -> Sample:
        pipeline = self.pipeline(options)
        ph, pw = page.image.shape[:2]
        lo, hi = options.bg_scale
        ratio = float(rng.uniform(lo, hi))
        # The page canvas size in the composite; max_side scales the whole composite down.
        max_side = options.max_side
        s = 1.0 if not max_side else min(1.0, float(max_side) / (ratio * max(pw, ph)))
        cw, ch = max(4, round(pw * s)), max(4, round(ph * s))
        out_w, out_h = max(cw + 1, round(cw * ratio)), max(ch + 1, round(ch * ratio))
        # Resized to the composite size, aspect not kept, as the recipe does. Linear is enough:
        # area averaging (much slower) only matters for strong shrinking in both directions.
        shrink = max(out_w / background.shape[1], out_h / background.shape[0])
        bg = cv2.resize(background, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink < 0.5 else cv2.INTER_LINEAR)
        end = torchvision_perspective(rng, cw, ch, float(options.distortion_scale))
        x0, y0 = int(rng.integers(0, out_w - cw + 1)), int(rng.integers(0, out_h - ch + 1))
        quad = end + 0.5 + (x0, y0)  # pixel centres -> edge coordinates, then placement
        # torchvision maps the corner PIXELS (0,0)..(w-1,h-1): the page's edge corners move by
        # the same homography, computed here from the pixel-centre correspondence.
        start = np.array([[0, 0], [cw - 1, 0], [cw - 1, ch - 1], [0, ch - 1]], np.float64) + 0.5
        h_canvas = cv2.getPerspectiveTransform(start.astype(np.float32), quad.astype(np.float32)).astype(np.float64)
        to_canvas = np.diag([cw / pw, ch / ph, 1.0])
        h_edge = h_canvas @ to_canvas  # original page edge coordinates -> composite
        dest = apply_homography(h_edge, page.corners if page.corners is not None else page_corners(pw, ph))
        warped = warp_page(page, h_edge, out_w, out_h)
        image, mask = composite(bg, warped) if warped is not None else (bg, np.zeros((out_h, out_w), np.uint8))
        sample = Sample(image=image, mask=mask, corners=dest, flags=set(), extra={},
                        geometry=page_map(page, Homography(h_edge, name="perspective")))
        return pipeline(sample, rng)


@hookimpl
def register_compositors(register):
    register(ReferenceCompositor())
