"""Backbone `compact_corners`: the compact net plus four corner heatmaps, trained jointly.

The page mask and the corners share every layer but the last ones. The corner heads read the
decoder at 1/2 of the input resolution and return ``"corners"``: N x 4 x H/2 x W/2 logits,
channels TL, TR, BR, BL (see ``docsynth.scan.model_contract``: a peak at cell (i, j) means the point
((j + .5) / w, (i + .5) / h) of the image). Scanning then gets the quad from the peaks
directly instead of from contour heuristics on the mask, which keeps working where a cable or
a second sheet breaks the mask's outline.

Options as for `compact` (``width``, ``decoder``).
"""

from __future__ import annotations

from docsynth.hookspecs import hookimpl
from docsynth_models.compact import CompactBackbone


class CompactCornersBackbone(CompactBackbone):
    name = "compact_corners"
    description = "compact net with a page mask and four corner heatmaps (from scratch, CPU-friendly)"
    outputs = "mask+corners"
    corners = True


@hookimpl
def register_backbones(register):
    register(CompactCornersBackbone())
