"""Source `folder`: any directory of document images (searched recursively).

Pages may carry an outline, for photographed pages that are not the whole image:

- ``<name>.json`` next to ``<name>.jpg`` with ``{"corners": [[x, y], ...4]}`` (TL, TR, BR, BL),
  ``{"polygon": [[x, y], ...]}``, ``{"quad": [...]}`` (MIDV-500) or a LabelMe file
  (``{"shapes": [{"points": [...]}]}``); coordinates in pixel-edge units of the image;
- ``<name>_mask.png`` next to the image (white = page);
- or the layout ``images/`` + ``masks/`` (same relative names, masks as PNG), which is also
  what ``docsynth sources prepare`` writes.

Mask files are never listed as documents. A plain folder behaves as before: every image is a
page and the mask strategy (``fullpage`` by default, ``polygon`` to use the outlines) decides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.config import F, listing_options, root_folder
from docsynth.errors import DocsynthError
from docsynth.geometry import order_corners, quad_mask
from docsynth.hookspecs import hookimpl
from docsynth.io import IMAGE_SUFFIXES, list_images, read_image, read_mask
from docsynth.kinds import DocumentRef, Page
from docsynth.options import Options

MASK_SUFFIX = "_mask"


def _sidecar_mask(image: Path, root: Path, layout: bool) -> Path | None:
    if layout:
        rel = image.relative_to(root / "images").with_suffix("")
        candidates = [root / "masks" / rel.with_suffix(s) for s in (".png", ".bmp", ".tif", ".jpg")]
    else:
        candidates = [image.with_name(image.stem + MASK_SUFFIX + s) for s in (".png", ".bmp", ".tif")]
    return next((c for c in candidates if c.is_file()), None)


def read_outline(path: str | Path) -> np.ndarray:
    """Points (N x 2, N >= 3, pixel-edge coordinates) from a JSON annotation file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DocsynthError(f"{path}: unreadable annotation ({exc})") from None
    points = None
    if isinstance(data, dict):
        for key in ("corners", "polygon", "quad", "points"):
            if key in data:
                points = data[key]
                break
        if points is None and data.get("shapes"):
            points = data["shapes"][0].get("points")
    elif isinstance(data, list):
        points = data
    try:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        pts = np.zeros((0, 2))
    if len(pts) < 3 or not np.isfinite(pts).all():
        raise DocsynthError(f"{path}: no page outline found; write {{\"corners\": [[x, y], x4]}} "
                            "(TL, TR, BR, BL) or {\"polygon\": [[x, y], ...]}")
    return pts


def outline_page(image: np.ndarray, pts: np.ndarray) -> Page:
    """A page whose outline is ``pts``: 4 points give corners, more give a mask."""
    h, w = image.shape[:2]
    if len(pts) == 4:
        corners = order_corners(pts)
        return Page(image=image, mask=quad_mask(corners, (h, w)), corners=corners)
    mask = quad_mask(pts, (h, w))  # fillPoly rasterises any simple polygon
    return Page(image=image, mask=mask, corners=None)


class FolderSource:
    name = "folder"
    description = "every image under a folder, optionally with page outlines (options: root)"
    licence = "as the files' owner says"
    homepage = ""
    default_mask = "fullpage"
    options = {**listing_options(), "licence": F((str, None), None, "licence recorded for every page")}

    def list_documents(self, options: Options) -> list[DocumentRef]:
        root = root_folder(options, "folder source needs option 'root' (a folder of images)",
                           "{root}: folder not found (folder source option 'root')")
        layout = (root / "images").is_dir() and (root / "masks").is_dir()
        base = root / "images" if layout else root
        refs = []
        for p in list_images(base):
            if not layout and p.stem.endswith(MASK_SUFFIX) and any(
                    p.with_name(p.stem[: -len(MASK_SUFFIX)] + s).is_file() for s in IMAGE_SUFFIXES):
                continue  # the mask of another image
            meta: dict[str, Any] = {"original": str(p)}
            if options.licence:
                meta["licence"] = str(options.licence)
            annotation = p.with_suffix(".json")
            if annotation.is_file():
                meta["annotation"] = str(annotation)
            mask = _sidecar_mask(p, root, layout)
            if mask is not None:
                meta["mask"] = str(mask)
            refs.append(DocumentRef(id=str(p.relative_to(base).with_suffix("")), source=self.name, path=str(p),
                                    meta=meta))
        return refs

    def load_document(self, ref: DocumentRef) -> Page:
        image = read_image(ref.path)
        if ref.meta.get("annotation"):
            page = outline_page(image, read_outline(ref.meta["annotation"]))
            if ref.meta.get("mask"):  # an explicit mask wins over the rasterised outline
                page.mask = _fit_mask(read_mask(ref.meta["mask"]), image, ref.meta["mask"])
            return page
        if ref.meta.get("mask"):
            return Page(image=image, mask=_fit_mask(read_mask(ref.meta["mask"]), image, ref.meta["mask"]))
        return Page(image=image)


def _fit_mask(mask: np.ndarray, image: np.ndarray, path: str) -> np.ndarray:
    h, w = image.shape[:2]
    if mask.shape[:2] != (h, w):
        if abs(mask.shape[1] / mask.shape[0] - w / h) > 0.02:
            raise DocsynthError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image is {w}x{h}")
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return mask


@hookimpl
def register_sources(register):
    register(FolderSource())
