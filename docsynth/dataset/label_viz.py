"""Pictures of the labels beyond the page: words, ``uv`` as colour, a checkerboard through ``bm``.

``docsynth preview --labels words,bm`` draws them on each tile, and :func:`label_panels` makes
the row of pictures in docs/labels.md (photo, uv, bm checkerboard, words, the page flattened
through bm). Seeing a flat checkerboard land exactly on the page, bends included, is the quick
check that a map is right.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.generate.dewarp import unwarp

VIEWS = ("words", "bm")
WORD, DONT_CARE, LIGHT, DARK = (0, 220, 255), (200, 60, 255), (250, 250, 250), (40, 40, 40)


def load_labels(root: Path, row: dict[str, Any]) -> tuple[dict[str, np.ndarray] | None, list[dict[str, Any]] | None]:
    """A sample's dewarp arrays and word records from its manifest row (None where absent)."""
    arrays = records = None
    if row.get("dewarp") and (root / row["dewarp"]).is_file():
        with np.load(root / row["dewarp"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
    if row.get("text") and (root / row["text"]).is_file():
        records = [json.loads(x) for x in (root / row["text"]).read_text(encoding="utf-8").splitlines() if x.strip()]
    return arrays, records


def draw_words(image: np.ndarray, records: list[dict[str, Any]], scale: float = 1.0) -> np.ndarray:
    """Word polygons on a copy of ``image`` (yellow; magenta for truncated/occluded words)."""
    out = image.copy()
    for r in records:
        pts = np.round(np.asarray(r["photo_poly"], np.float64) * scale * 16).astype(np.int32)
        colour = DONT_CARE if r.get("truncated") or r.get("occluded") else WORD
        cv2.polylines(out, [pts], True, colour, 1, cv2.LINE_AA, shift=4)
    return out


def bm_checkerboard(image: np.ndarray, bm: np.ndarray, cells: int = 12, alpha: float = 0.45) -> np.ndarray:
    """A flat ``cells`` x ``cells`` checkerboard carried into the photo through ``bm`` (each
    square is the polygon of its bm points), blended over a copy of ``image``."""
    h, w = image.shape[:2]
    gh, gw = bm.shape[:2]
    photo = np.asarray(bm, np.float64) * (w, h)
    paint = np.zeros_like(image)
    cover = np.zeros((h, w), np.uint8)
    rows = np.linspace(0, gh - 1, cells + 1).round().astype(int)
    cols = np.linspace(0, gw - 1, cells + 1).round().astype(int)
    for a in range(cells):
        for b in range(cells):
            top = photo[rows[a], cols[b]:cols[b + 1] + 1]
            right = photo[rows[a]:rows[a + 1] + 1, cols[b + 1]]
            bottom = photo[rows[a + 1], cols[b]:cols[b + 1] + 1][::-1]
            left = photo[rows[a]:rows[a + 1] + 1, cols[b]][::-1]
            poly = np.concatenate([top, right, bottom, left])
            if not np.isfinite(poly).all():
                continue
            pts = np.round(poly * 16).astype(np.int32)
            colour = LIGHT if (a + b) % 2 == 0 else DARK
            cv2.fillPoly(paint, [pts], colour, cv2.LINE_AA, shift=4)
            cv2.fillPoly(cover, [pts], 255, cv2.LINE_AA, shift=4)
    weight = (cover.astype(np.float32) / 255 * alpha)[..., None]
    return (image * (1 - weight) + paint * weight).astype(np.uint8)


def uv_colour(uv: np.ndarray) -> np.ndarray:
    """``uv`` as a BGR picture: u in red, v in green, off the page black."""
    out = np.zeros(uv.shape[:2] + (3,), np.uint8)
    on = ~np.isnan(uv[..., 0])
    out[on, 2] = np.clip(uv[on, 0] * 255, 0, 255).astype(np.uint8)
    out[on, 1] = np.clip(uv[on, 1] * 255, 0, 255).astype(np.uint8)
    out[on, 0] = 60
    return out


def overlay(image: np.ndarray, arrays: dict[str, np.ndarray] | None, records: list[dict[str, Any]] | None,
            views: list[str], scale: float = 1.0) -> np.ndarray:
    """``image`` (already scaled by ``scale``) with the asked ``views`` drawn on it."""
    if "bm" in views and arrays is not None:
        image = bm_checkerboard(image, arrays["bm"])
    if "words" in views and records:
        image = draw_words(image, records, scale)
    return image


def check_views(views: list[str]) -> list[str]:
    bad = [v for v in views if v not in VIEWS]
    if bad:
        raise DocsynthError(f"--labels: unknown view(s) {', '.join(bad)}; use some of {', '.join(VIEWS)}")
    return views


def label_panels(image: np.ndarray, arrays: dict[str, np.ndarray], records: list[dict[str, Any]],
                 flat_size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Photo, uv as colour, bm checkerboard, words, and the page flattened through bm."""
    gh, gw = arrays["bm"].shape[:2]
    return [image, uv_colour(arrays["uv"]), bm_checkerboard(image, arrays["bm"]), draw_words(image, records),
            unwarp(image, arrays["bm"], flat_size or (gw, gh))]
