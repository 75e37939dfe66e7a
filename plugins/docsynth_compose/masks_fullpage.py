"""Mask strategy `fullpage`: the whole image is the page (scans, rendered pages)."""

from __future__ import annotations

import numpy as np

from docsynth.geometry import page_corners
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Page


class FullPage:
    name = "fullpage"
    description = "every pixel of the image is page; corners are the image corners"

    def make_mask(self, page: Page) -> Page:
        h, w = page.image.shape[:2]
        return Page(image=page.image, mask=np.full((h, w), 255, np.uint8), corners=page_corners(w, h), words=page.words)


@hookimpl
def register_mask_strategies(register):
    register(FullPage())
