"""``corners.csv``: the page corners of a folder of photos. The one reader and the one writer.

One header line ``image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y``, then one row per photo:
its name (relative to the folder, or to the folder's ``images/``) and its four corners in photo
pixels, TL, TR, BR, BL. A row whose corner fields are all empty is a photo without a page
(``docsynth scan`` writes such rows); readers skip it. ``docsynth scan`` adds a tenth column,
``confidence`` (0-1, the post-processor's), so a low-confidence quad is kept with its warning;
readers accept the file with or without it. ``scan``, ``hardcases`` and ``run``
write the file; ``evaluate``, training's real-photo metrics, ``export``, ``stats``, ``preview``,
``report`` and ``export-model`` read it, all through this module.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.geometry import is_simple_quad
from docsynth.io import atomic_write_text

FILENAME = "corners.csv"
COLUMNS = ("image", "tl_x", "tl_y", "tr_x", "tr_y", "br_x", "br_y", "bl_x", "bl_y")
CONFIDENCE = "confidence"  # the optional last column (scan writes it)


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """``image,tl_x,...,bl_y`` -> {image: 4x2 corners}; rows without a page are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DocsynthError(f"{path}: not found; the folder needs a corners.csv "
                            f"({','.join(COLUMNS)})")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(_io.StringIO(text))
    header = next(reader, None)
    names = None if header is None else tuple(h.strip() for h in header)
    if names not in (COLUMNS, COLUMNS + (CONFIDENCE,)):
        raise DocsynthError(f"{path}:1: header must be {','.join(COLUMNS)} (optionally ,{CONFIDENCE})")
    out: dict[str, np.ndarray] = {}
    seen: dict[str, int] = {}  # image -> its line: a second row would silently win
    for line, row in enumerate(reader, 2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise DocsynthError(f"{path}:{line}: expected {len(names)} fields, got {len(row)}")
        if row[0].strip() in seen:
            raise DocsynthError(f"{path}:{line}: image {row[0].strip()} is also on line {seen[row[0].strip()]}; "
                                "keep one row per image")
        seen[row[0].strip()] = line
        row = row[:len(COLUMNS)]
        if not any(cell.strip() for cell in row[1:]):
            continue  # no page in this photo (scan writes such rows)
        try:
            corners = np.array([float(v) for v in row[1:]], dtype=np.float64).reshape(4, 2)
        except ValueError:
            raise DocsynthError(f"{path}:{line}: corner values must be numbers") from None
        if not is_simple_quad(corners):
            raise DocsynthError(f"{path}:{line}: corners of {row[0]} do not form a quadrilateral; "
                                "order them TL, TR, BR, BL")
        out[row[0].strip()] = corners
    return out


def read_folder(folder: str | Path) -> list[tuple[Path, np.ndarray]]:
    """(photo path, 4x2 corners) for each photo with a page in ``folder/corners.csv``; photos
    are looked up in ``folder`` and ``folder/images``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DocsynthError(f"{folder}: not a folder; pass a folder with images and corners.csv")
    table = read_table(folder / FILENAME)
    if not table:
        raise DocsynthError(f"{folder / FILENAME}: no annotated images")
    items = []
    for name, corners in table.items():
        for candidate in (folder / name, folder / "images" / name):
            if candidate.is_file():
                items.append((candidate, corners))
                break
        else:
            raise DocsynthError(f"{folder / FILENAME}: image {name} not found in {folder} "
                                f"or {folder / 'images'}")
    return items


def read_negatives(folder: str | Path) -> list[Path]:
    """The photos of ``folder/corners.csv`` whose corner fields are all empty: photos with no
    page (``docsynth hardcases`` writes them for its ``nopage`` case), on which a scanner should
    find nothing. ``evaluate`` measures its false acceptance on them."""
    folder = Path(folder)
    path = folder / FILENAME
    if not path.is_file():
        return []
    reader = csv.reader(_io.StringIO(path.read_text(encoding="utf-8-sig")))
    next(reader, None)
    found = []
    for row in reader:
        row = row[:len(COLUMNS)]
        if len(row) != len(COLUMNS) or not row[0].strip() or any(cell.strip() for cell in row[1:]):
            continue
        for candidate in (folder / row[0].strip(), folder / "images" / row[0].strip()):
            if candidate.is_file():
                found.append(candidate)
                break
    return found


def text(rows: Iterable[tuple[str, np.ndarray | None]], confidences: Iterable[float] | None = None) -> str:
    """The text of a corners.csv; a row with None corners (no page) has empty fields. With
    ``confidences`` (one per row), the ``confidence`` column is added."""
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    rows = list(rows)
    conf = None if confidences is None else list(confidences)
    writer.writerow(COLUMNS if conf is None else COLUMNS + (CONFIDENCE,))
    for k, (name, corners) in enumerate(rows):
        values = [""] * 8 if corners is None else [f"{v:.2f}" for v in np.asarray(corners).reshape(8)]
        extra = [] if conf is None else ["" if corners is None else f"{conf[k]:.4f}"]
        writer.writerow([name, *values, *extra])
    return buf.getvalue()


def write(path: str | Path, rows: Iterable[tuple[str, np.ndarray | None]],
          confidences: Iterable[float] | None = None) -> Path:
    """Write a corners.csv atomically (with the ``confidence`` column when given); returns its path."""
    path = Path(path)
    atomic_write_text(path, text(rows, confidences))
    return path


def digest(folder: str | Path) -> str:
    """A short fingerprint of an annotated photo set: ``corners.csv`` and every photo it names
    (with or without a page), byte for byte. Two folders with the same digest are the same
    benchmark; a score is only comparable with another on the same digest (a hard-case folder
    drawn by another version of the generator holds other photos under the same names)."""
    folder = Path(folder)
    h = hashlib.sha256((folder / FILENAME).read_bytes())
    for path in [p for p, _ in read_folder(folder)] + read_negatives(folder):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]
