"""``curves.png``: loss and IoU per epoch, drawn with ``viz.raster_chart`` (so training needs no
plotting library, and the picture is the same wherever it is made)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from docsynth.io import atomic_write_bytes, encode_image
from docsynth.viz import Panel, raster_chart

# metric key -> legend label, per panel; a panel's series take viz.COLOURS in this order
LOSSES = {"train_loss": "train loss", "valid_loss": "valid loss"}
IOUS = {"valid_iou": "valid IoU", "real_iou": "real IoU", "real_jaccard": "real Jaccard"}


def write_curves(path: str | Path, history: list[dict[str, Any]]) -> None:
    atomic_write_bytes(path, encode_image(draw_curves(history), ".png"))


def draw_curves(history: list[dict[str, Any]]) -> np.ndarray:
    """Two panels side by side: the losses, and the IoUs on a fixed 0-1 axis."""

    def series(keys: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
        return {label: [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
                for key, label in keys.items()}

    return raster_chart([Panel("loss", series(LOSSES)), Panel("IoU", series(IOUS), y_range=(0.0, 1.0))])
