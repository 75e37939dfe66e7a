"""Post-processor `robust`: four lines fitted to the predicted page outline, intersected.

See :func:`docsynth_scan.lines.fit_quad_to_mask`: sequential RANSAC on the outline of the
largest page region, least-squares refits, sub-pixel corners from line intersections, the photo
border standing in for sides that run out of the frame, a confidence (region/quad agreement x
share of the outline explained by the four sides) and "no document found" when the region is
not a quadrilateral.

Options (``scan.postprocessor_options``, passed as ``options``): ``threshold`` (0.5), ``min_area``
(0.01 of the photo), ``min_iou`` (0.85), ``min_confidence`` (0.3: below it the answer is
"no document found").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from docsynth.config import SHARE, F
from docsynth.hookspecs import hookimpl
from docsynth.kinds import Quad
from docsynth.text import below
from docsynth_scan.lines import fit_quad_to_mask


def robust_quad(page_prob: np.ndarray, options: Mapping[str, Any]) -> Quad:
    """``options``: built by the host from :data:`ROBUST_OPTIONS` (every post-processor that
    calls this declares them), so every key is there."""
    fit = fit_quad_to_mask(page_prob, threshold=float(options["threshold"]), min_area=float(options["min_area"]),
                           min_iou=float(options["min_iou"]))
    if fit.corners is None:
        return Quad(None, 0.0, fit.reason)
    min_conf = float(options["min_confidence"])
    if fit.confidence < min_conf:
        return Quad(None, fit.confidence, f"low confidence {below(fit.confidence, min_conf)} < {min_conf}")
    return Quad(fit.corners, fit.confidence)


ROBUST_OPTIONS = {
    "threshold": F(float, 0.5, "page probability above which a pixel is page", **SHARE),
    "min_area": F(float, 0.01, "smallest page, as a share of the photo", **SHARE),
    "min_iou": F(float, 0.85, "agreement of the region and its quad below which there is no page", **SHARE),
    "min_confidence": F(float, 0.3, "below it the answer is 'no document found'", **SHARE),
}


class RobustPost:
    name = "robust"
    options = ROBUST_OPTIONS
    description = "RANSAC line fit on the page outline, side intersections, confidence, no-page"

    def find_quad(self, page_prob: np.ndarray, image: np.ndarray, options: dict[str, Any],
                  extra: dict[str, Any]) -> Quad:
        return robust_quad(page_prob, options)


@hookimpl
def register_postprocessors(register):
    register(RobustPost())
