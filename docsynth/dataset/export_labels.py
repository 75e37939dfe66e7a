"""`docsynth export` formats for the labels beyond the page (``generate.labels``).

- ``icdar2015`` (needs ``text``): ``images/<id>.<ext>`` + ``gt/gt_<id>.txt``, one line per word
  ``x1,y1,x2,y2,x3,y3,x4,y4,transcription`` in image pixels (rounded), clockwise on screen from
  the word's own top-left; ``###`` for words that are truncated or occluded (ICDAR's "do not
  care"). On bent pages the four points are the word's corners (its extra edge points dropped).
- ``doc3d`` (needs ``dewarp``): what DewarpNet's Doc3D loaders read: ``img/<id>.png``, the photo
  resized to 448 x 448, and ``bm/<id>.mat`` (MATLAB v5, readable by ``hdf5storage.loadmat`` and
  ``scipy.io.loadmat``) with ``bm`` 448 x 448 x 2, float32: entry [j, i] is the position of the
  flat point ((i + 0.5) / 448, (j + 0.5) / 448) in that 448 x 448 image, in pixels, x first,
  pixel-edge convention (a pixel-centre sampler subtracts 0.5; DewarpNet's ``bm / 448``,
  ``(bm - 0.5) * 2`` gives ``grid_sample`` coordinates). The flat grid is always 448 x 448.
- ``uvdoc`` (needs ``dewarp``): ``img/<id>.<ext>`` + ``grid2d/<id>.mat`` with ``grid2d``
  89 x 61 x 2 (rows x columns, x first): the photo pixel (edge coordinates) of the flat point
  (c / 60, r / 88), the grid's outer points lying on the page's edges, as UVDoc's 2-D grids do.
  It is read off ``bm`` (bilinear, extended linearly half a cell to the edges).

Both ``.mat`` writers need scipy (``pip install scipy``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.errors import DocsynthError
from docsynth.formats.manifest import Item
from docsynth.io import atomic_write_bytes, atomic_write_text, encode_image, place_file, read_image
from docsynth.progress import Progress

DOC3D_SIZE = 448
UVDOC_GRID = (89, 61)  # rows, columns


def _label_file(item: Item, root: Path, kind: str, fmt: str) -> Path:
    rel = item.row.get(kind)
    if not rel:
        raise DocsynthError(f"--format {fmt} needs {kind} labels: sample {item.id} has none; generate with "
                            f"--labels {kind} (generate.labels)")
    if item.row.get("tar"):
        raise DocsynthError(f"--format {fmt}: {root} holds tar shards; generate with --shard-format files to export")
    path = root / rel
    if not path.is_file():
        raise DocsynthError(f"{path}: {kind} labels listed in the manifest are missing; regenerate the dataset")
    return path


def _savemat(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        import scipy.io  # scipy: slow to import (0.3 s), and only .mat exports need it
    except ImportError:
        raise DocsynthError("this export writes .mat files and needs scipy: pip install scipy") from None
    buf = io.BytesIO()
    scipy.io.savemat(buf, arrays, do_compression=True)
    atomic_write_bytes(path, buf.getvalue())


def _place_image(item: Item, dst: Path) -> None:
    place_file(item.image, dst)


def icdar_lines(records: list[dict[str, Any]]) -> list[str]:
    """ICDAR 2015 lines of one image's word records (text/<id>.jsonl)."""
    lines = []
    for r in records:
        poly = np.asarray(r["photo_poly"], np.float64)
        step = len(poly) // 4
        quad = poly[::step][:4]
        x, y = quad[:, 0], quad[:, 1]
        if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:  # mirrored: keep it clockwise on screen
            quad = quad[[0, 3, 2, 1]]
        text = "###" if r.get("truncated") or r.get("occluded") else str(r["text"]).replace("\n", " ")
        lines.append(",".join(str(int(round(v))) for v in quad.reshape(-1)) + "," + text)
    return lines


def export_icdar2015(items: list[Item], out: Path, root: Path,
                     progress: Progress | None = None) -> dict[str, Any]:
    words = 0
    for item in items:
        path = _label_file(item, root, "text", "icdar2015")
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        _place_image(item, out / "images" / f"{item.id}{item.image.suffix}")
        lines = icdar_lines(records)
        atomic_write_text(out / "gt" / f"gt_{item.id}.txt", "".join(line + "\n" for line in lines))
        words += len(lines)
        if progress:
            progress.advance()
    return {"images": len(items), "words": words, "folder": str(out)}


def _bm(item: Item, root: Path, fmt: str) -> np.ndarray:
    with np.load(_label_file(item, root, "dewarp", fmt)) as npz:
        return npz["bm"].astype(np.float64)


def export_doc3d(items: list[Item], out: Path, root: Path,
                 progress: Progress | None = None) -> dict[str, Any]:
    n = DOC3D_SIZE
    for item in items:
        bm = _bm(item, root, "doc3d")
        if bm.shape[:2] != (n, n):
            bm = cv2.resize(bm.astype(np.float32), (n, n), interpolation=cv2.INTER_LINEAR)
        image = cv2.resize(read_image(item.image), (n, n), interpolation=cv2.INTER_AREA)
        atomic_write_bytes(out / "img" / f"{item.id}.png", encode_image(image, ".png"))
        _savemat(out / "bm" / f"{item.id}.mat", {"bm": (bm * n).astype(np.float32)})
        if progress:
            progress.advance()
    return {"images": len(items), "folder": str(out), "bm": f"{n}x{n}x2 pixels of the {n}x{n} image, x first"}


def grid_from_bm(bm: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``bm`` (cell-centred flat grid -> photo fractions) read at the vertex-aligned flat points
    (c / (cols - 1), r / (rows - 1)): bilinear inside, linear beyond the outer cell centres."""
    gh, gw = bm.shape[:2]
    out = np.empty((rows, cols, 2))
    for k in range(2):
        # along x, then along y; np.interp clamps, so extend by the end slopes by hand
        def lerp(values: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
            pos = at * n - 0.5  # cell-centre index of each flat fraction
            inner = np.interp(pos, np.arange(n), values)
            lo, hi = values[1] - values[0], values[-1] - values[-2]
            return np.where(pos < 0, values[0] + pos * lo, np.where(pos > n - 1, values[-1] + (pos - n + 1) * hi, inner))
        xs = np.linspace(0, 1, cols)
        ys = np.linspace(0, 1, rows)
        across = np.stack([lerp(bm[j, :, k], xs, gw) for j in range(gh)])  # gh x cols
        out[..., k] = np.stack([lerp(across[:, c], ys, gh) for c in range(cols)], axis=1)
    return out


def export_uvdoc(items: list[Item], out: Path, root: Path,
                 progress: Progress | None = None) -> dict[str, Any]:
    rows, cols = UVDOC_GRID
    for item in items:
        bm = _bm(item, root, "uvdoc")
        w, h = (item.width, item.height) if item.width and item.height else read_image(item.image).shape[1::-1]
        _place_image(item, out / "img" / f"{item.id}{item.image.suffix}")
        grid = grid_from_bm(bm, rows, cols) * (w, h)
        _savemat(out / "grid2d" / f"{item.id}.mat", {"grid2d": grid.astype(np.float32)})
        if progress:
            progress.advance()
    return {"images": len(items), "folder": str(out), "grid2d": f"{rows}x{cols}x2 photo pixels, x first"}


LABEL_EXPORTERS = {"icdar2015": export_icdar2015, "doc3d": export_doc3d, "uvdoc": export_uvdoc}
