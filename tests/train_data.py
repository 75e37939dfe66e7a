"""Tiny datasets for the split and train tests, written directly (no compositor): fast and
fully known. Each sample is a bright quad (the page) on a darker textured background."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from docsynth.geometry import quad_mask
from docsynth.io import write_image, write_jsonl


def make_dataset(root: Path, documents: int = 4, per_document: int = 3, size: tuple[int, int] = (80, 64),
                 backgrounds: int = 3, seed: int = 0) -> list[dict]:
    """A generated-dataset look-alike: images/, masks/, manifest.jsonl (w x h = ``size``)."""
    rng = np.random.default_rng(seed)
    w, h = size
    rows = []
    for i in range(documents * per_document):
        doc, bg = i // per_document, int(rng.integers(backgrounds))
        image = np.clip(rng.normal(60 + 30 * bg, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        cx, cy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.35, 0.65) * h
        hw, hh = rng.uniform(0.18, 0.32) * w, rng.uniform(0.18, 0.32) * h
        corners = np.array([[cx - hw, cy - hh], [cx + hw, cy - hh], [cx + hw, cy + hh], [cx - hw, cy + hh]])
        corners += rng.uniform(-3, 3, corners.shape)
        mask = quad_mask(corners, (h, w))
        image[mask > 0] = (200 + 15 * (doc % 3), 210, 220)
        sid = f"{i:07d}"
        write_image(root / "images" / f"{sid}.png", image)
        write_image(root / "masks" / f"{sid}.png", mask)
        rows.append({"id": sid, "image": f"images/{sid}.png", "mask": f"masks/{sid}.png",
                     "document": {"source": "tiny", "id": f"d{doc}"}, "background": f"bg{bg}",
                     "seed": [seed, i], "width": w, "height": h,
                     "corners": np.round(corners, 3).tolist(), "flags": [], "preset": "tiny"})
    write_jsonl(root / "manifest.jsonl", rows)
    return rows


def make_realdocs(root: Path, count: int = 3, size: tuple[int, int] = (120, 90), seed: int = 1) -> None:
    """A folder like ../shared/realdocs: images/ + corners.csv."""
    rng = np.random.default_rng(seed)
    w, h = size
    lines = ["image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y"]
    for i in range(count):
        image = np.clip(rng.normal(70, 25, (h, w, 3)), 0, 255).astype(np.uint8)
        c = np.array([[0.25 * w, 0.2 * h], [0.75 * w, 0.22 * h], [0.78 * w, 0.8 * h], [0.22 * w, 0.78 * h]])
        image[quad_mask(c, (h, w)) > 0] = (215, 215, 220)
        name = f"photo{i}.jpg"
        (root / "images").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / name), image)
        lines.append(name + "," + ",".join(f"{v:.2f}" for v in c.reshape(-1)))
    (root / "corners.csv").write_text("\n".join(lines) + "\n")
