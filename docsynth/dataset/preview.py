"""`docsynth preview`: a contact sheet of a dataset, to see what a model will be trained on.

Each tile shows a sample with the page mask's outline (green), the corner quad (red) with
corners numbered 0-3 (0 = TL, clockwise), other instances' quads (cyan: sheets under the page
or other documents) and the sample's flags and hard cases in the top-left caption. With
``views`` (``--labels words,bm``) it also draws the words (text labels) and a flat checkerboard
carried into the photo through the backward map (dewarp labels). Works on a
generated dataset and on a folder of photos with ``corners.csv`` (same drawing, for a visual
comparison with real photos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.dataset.label_viz import check_views, load_labels, overlay
from docsynth.errors import DocsynthError
from docsynth.formats.manifest import Item, read_items
from docsynth.io import read_image, read_mask, write_image
from docsynth.viz import caption, grid

GREEN, RED, CYAN, WHITE = (60, 220, 60), (40, 40, 235), (230, 200, 40), (255, 255, 255)


def _pick(items: list[Item], count: int, seed: int) -> list[Item]:
    if len(items) <= count:
        return items
    rng = np.random.default_rng(seed)
    return [items[i] for i in np.sort(rng.choice(len(items), size=count, replace=False))]


def render_tile(item: Item, tile: int, views: list[str] | None = None, root: Path | None = None) -> np.ndarray:
    """One sample drawn at ``tile`` pixels on its longer side (padded to a square); ``views``
    (words, bm) draws labels beyond the page of a dataset in ``root``."""
    image = read_image(item.image)
    h, w = image.shape[:2]
    s = tile / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                       interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    if views and root is not None:
        small = overlay(small, *load_labels(root, item.row), views, s)
    if item.mask is not None and item.mask.is_file():
        mask = cv2.resize(read_mask(item.mask), small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(small, contours, -1, GREEN, 1, cv2.LINE_AA)
    for inst in item.instances:
        pts = np.round(np.asarray(inst["corners"], np.float64) * s * 16).astype(np.int32)
        cv2.polylines(small, [pts], True, CYAN, 1, cv2.LINE_AA, shift=4)
    if item.corners is not None:
        pts = np.round(item.corners * s * 16).astype(np.int32)
        cv2.polylines(small, [pts], True, RED, 1, cv2.LINE_AA, shift=4)
        for k, (x, y) in enumerate(item.corners * s):
            c = (int(round(x)), int(round(y)))
            cv2.circle(small, c, 3, RED, -1, cv2.LINE_AA)
            cx = int(np.clip(c[0] + 4, 0, small.shape[1] - 10))
            cy = int(np.clip(c[1] - 4, 10, small.shape[0] - 2))
            cv2.putText(small, str(k), (cx, cy), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(small, str(k), (cx, cy), cv2.FONT_HERSHEY_SIMPLEX, 0.4, WHITE, 1, cv2.LINE_AA)
    out = np.full((tile, tile, 3), 24, np.uint8)
    out[:small.shape[0], :small.shape[1]] = small
    # The label goes in a bar under the picture: drawn over it, it hid the top-left corner's
    # number and ran into the next tile.
    return caption(out, " ".join([item.id] + item.flags + item.cases))


# Hard caps (README, "Limits"): the ranges of preview's flags, checked where the CLI parses them;
# a bigger sheet would not fit in memory.
MAX_TILE, MAX_COUNT, MAX_COLUMNS = 2048, 10_000, 64
MAX_SHEET_PIXELS = 100_000_000  # 300 MB of RGB


def contact_sheet(dataset: str | Path, out: str | Path, count: int = 48, columns: int = 8, tile: int = 240,
                  seed: int = 0, force: bool = False, views: list[str] | None = None) -> dict[str, Any]:
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise DocsynthError(f"{out}: --out must end in .png or .jpg")
    if out.exists() and not force:
        raise DocsynthError(f"{out}: exists; use --force to overwrite it")
    rows = -(-count // columns)
    if min(count, columns) * tile * rows * tile > MAX_SHEET_PIXELS:
        raise DocsynthError(f"--count {count} tiles of {tile} px make a {min(count, columns) * tile}x{rows * tile} "
                            f"px sheet, over {MAX_SHEET_PIXELS // 1_000_000} megapixels; lower --count or --tile")
    items = _pick(read_items(dataset), count, seed)
    if not items:
        raise DocsynthError(f"{dataset}: no samples to show")
    if views:
        check_views(views)
    tiles = [render_tile(item, tile, views, Path(dataset)) for item in items]
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 24))
    sheet = grid(tiles, columns, gap=2, background=0, edge=False, max_width=0)
    write_image(out, sheet)
    return {"out": str(out), "samples": len(items), "width": sheet.shape[1], "height": sheet.shape[0]}
