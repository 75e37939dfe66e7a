"""What an app does around an exported model, in plain NumPy (no OpenCV, no torch).

A phone app ports these few lines to Kotlin, Swift or C++. They reproduce what ``docsynth
scan`` feeds the model and how it reads the outputs, and a test checks them against the
scanner (:func:`docsynth.scan.model_contract.preprocess` and :func:`docsynth.scan.model_contract.prediction_from_outputs`).
The exported graph (``docsynth export-model``) maps ``image`` to raw ``out`` and ``corners``;
the model's meta (``input_size``, ``mean``, ``std``) is stored in the file.

1. :func:`preprocess`: the upright photo (EXIF orientation applied), RGB, shrunk to the input
   size by *area averaging* (each output pixel is the mean of the photo pixels its cell covers;
   a bilinear resize of a 4000 px photo to 192 px aliases and changes the prediction), rounded
   to 8 bits like an image, scaled to [0, 1], normalised with mean/std, laid out 1 x 3 x H x W.
2. Run the model.
3. :func:`decode`: page probability = sigmoid(logit[1] - logit[0]) (a two-class softmax);
   each corner heatmap (TL, TR, BR, BL) -> sigmoid -> the peak cell -> probability-weighted
   mean over the 3 x 3 cells around it -> cell centre ``(j + 0.5) / w`` of the image width
   (likewise for height) -> photo pixels (pixel-edge coordinates: 0 is the photo's left edge).

This gives the model's corners. ``docsynth scan`` then refines them on the full-resolution photo
(the ``refine`` post-processor, OpenCV); an app that skips that step gets the coarse corners,
which are a few pixels off at 192 px input (see docs/scan.md for the measured difference).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def area_weights(src: int, dst: int) -> np.ndarray:
    """dst x src matrix: row i averages the source pixels under output cell i (exact box
    filter; the shrinking case of OpenCV's INTER_AREA)."""
    scale = src / dst
    w = np.zeros((dst, src), np.float64)
    for i in range(dst):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(src, int(np.ceil(hi)))):
            w[i, j] = min(hi, j + 1) - max(lo, j)
    return w / scale


def input_hw(meta: dict[str, Any]) -> tuple[int, int]:
    """The model input's (height, width) from the meta's ``input_size`` (one side or [h, w])."""
    size = meta["input_size"]
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def shrink(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """Area-average an H x W x 3 photo to h x w x 3 (float64, not rounded)."""
    if rgb.shape[0] < h or rgb.shape[1] < w:
        raise ValueError("the photo is smaller than the model input; area averaging only shrinks")
    wy, wx = area_weights(rgb.shape[0], h), area_weights(rgb.shape[1], w)
    return np.stack([wy @ rgb[..., c].astype(np.float64) @ wx.T for c in range(3)], axis=-1)


def preprocess(rgb: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """An upright RGB uint8 photo (H x W x 3) -> the model input, 1 x 3 x h x w float32.

    The averages are rounded to 8 bits like an image. An average of exactly n + 0.5 may come out
    one level apart from the scanner's (OpenCV sums in float32, so its ties fall either way):
    about 0.2% of the values of a 640 x 480 photo shrunk to 224, none when the sizes divide."""
    small = np.clip(np.floor(shrink(rgb, *input_hw(meta)) + 0.5), 0, 255)
    x = (small / 255 - np.asarray(meta["mean"])) / np.asarray(meta["std"])
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def decode(out: np.ndarray, corners: np.ndarray | None, width: int, height: int) -> dict[str, Any]:
    """Raw outputs of one photo (batch axis included, as the runtime returns them) -> page
    probability at the model's resolution, corners in photo pixels (TL, TR, BR, BL) and their
    peak scores. ``width`` x ``height`` is the photo's size."""
    page = sigmoid(out[0, 1] - out[0, 0])
    result: dict[str, Any] = {"page_prob": page, "corners": None, "scores": None}
    if corners is not None:
        result["corners"], result["scores"] = decode_corners(corners[0], width, height)
    return result


def decode_corners(heatmaps: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """4 x h x w heatmap logits -> (4 x 2 corners in a width x height frame, 4 peak scores).

    Sub-cell accuracy from a probability-weighted mean over the 3x3 cells around each peak.
    The scanner decodes with this same function (:mod:`docsynth.scan.model_contract`)."""
    prob = sigmoid(heatmaps)
    n, h, w = prob.shape
    corners, scores = np.zeros((n, 2)), np.zeros(n)
    for k in range(n):
        i, j = np.unravel_index(int(np.argmax(prob[k])), (h, w))
        scores[k] = prob[k, i, j]
        i0, i1, j0, j1 = max(0, i - 1), min(h, i + 2), max(0, j - 1), min(w, j + 2)
        patch = prob[k, i0:i1, j0:j1]
        ys, xs = np.mgrid[i0:i1, j0:j1]
        wsum = patch.sum()
        ci, cj = (ys * patch).sum() / wsum, (xs * patch).sum() / wsum
        corners[k] = ((cj + 0.5) / w * width, (ci + 0.5) / h * height)
    return corners, scores
