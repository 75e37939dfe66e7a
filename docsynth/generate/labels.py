"""Finishing a composite's labels: what every compositor does last to the sample it returns.

Corners are put in TL, TR, BR, BL order as they appear, ``truncated`` and ``approximate`` flags
are set, the page's share of the frame is recorded and the extras are made JSON-friendly, so
that ``manifest.jsonl`` rows mean the same whichever compositor made them.
"""

from __future__ import annotations

import cv2
import numpy as np

from docsynth.geometry import is_inside, order_corners, quad_area, quad_mask
from docsynth.kinds import Sample


def finish_labels(sample: Sample) -> Sample:
    """Final labels: corners ordered TL,TR,BR,BL as they appear, truncation and approximation
    flags, page share, JSON-friendly extra."""
    h, w = sample.mask.shape[:2]
    flags = set(sample.flags)
    extra = dict(sample.extra)
    corners = sample.corners
    if corners is not None:
        corners = order_corners(corners)
        if not is_inside(corners, w, h):
            flags.add("truncated")
        border = sample.mask[0].any() or sample.mask[-1].any() or sample.mask[:, 0].any() or sample.mask[:, -1].any()
        if "approximate" not in flags and border and mask_outside_quad(Sample(sample.image, sample.mask, corners)):
            flags.add("approximate")  # e.g. a reflected border repeated part of the page
        extra["page_area"] = round(quad_area(corners) / (w * h), 4)
    if extra.get("instances"):
        extra["instances"] = [{**inst, "corners": np.round(np.asarray(inst["corners"]), 3).tolist()}
                              for inst in extra["instances"]]
    return Sample(image=sample.image, mask=sample.mask, corners=corners, flags=flags, extra=extra,
                  geometry=sample.geometry)


def mask_outside_quad(sample: Sample) -> bool:
    """True when the mask has page pixels well outside the corner quad (e.g. a reflected border)."""
    if sample.corners is None:
        return bool(sample.mask.any())
    quad = quad_mask(sample.corners, sample.mask.shape[:2])
    extra = cv2.countNonZero(cv2.subtract(sample.mask, cv2.dilate(quad, np.ones((5, 5), np.uint8))))
    return extra > 0.005 * max(1, cv2.countNonZero(quad))
