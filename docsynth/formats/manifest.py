"""``manifest.jsonl``: one row per generated sample. The one reader.

``docsynth generate`` writes it (see :mod:`docsynth.generate.shards`): id, image, mask, document,
background, seed, corners ``[[x, y] x 4]`` (TL, TR, BR, BL in image pixels, or null for a
negative), width, height, flags, preset, cases, and more instances' corners; ``split`` writes
one per split. Three views of a dataset folder read it here:

- :func:`read_rows`: the rows as written (JSON objects), line-numbered errors;
- :func:`read_file_rows`: rows whose image and mask are files (what ``split`` and ``train``
  read): the manifest, or ``images/`` + ``masks/`` paired by name when there is none;
- :func:`read_items`: labelled images (:class:`Item`) of a dataset, or of a folder of photos
  with ``corners.csv`` (what ``export``, ``stats``, ``preview`` and ``report`` read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.formats import corners as corners_csv
from docsynth.io import list_images, read_jsonl

FILENAME = "manifest.jsonl"


def read_rows(folder: str | Path) -> list[dict[str, Any]]:
    """The rows of ``folder/manifest.jsonl`` (which must exist)."""
    return read_jsonl(Path(folder) / FILENAME)


def read_file_rows(root: str | Path) -> list[dict[str, Any]]:
    """Rows of a generated dataset in files: its manifest.jsonl, or images/ + masks/ paired by name
    (then every image is its own group, since nothing says which document it shows)."""
    root = Path(root)
    if not root.is_dir():
        raise DocsynthError(f"{root}: dataset folder not found")
    manifest = root / FILENAME
    if manifest.is_file():
        rows = read_rows(root)
        for n, row in enumerate(rows, 1):
            if "image" not in row or "mask" not in row:
                raise DocsynthError(f"{manifest}:{n}: row lacks 'image' or 'mask'")
            if row.get("tar"):
                raise DocsynthError(f"{root}: a dataset in tar shards (generate --shard-format tar) is for "
                                    "streaming; split and train read image files: regenerate with "
                                    "--shard-format files")
        return rows
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise DocsynthError(f"{root}: neither manifest.jsonl nor images/ + masks/; "
                            "pass a folder made by `docsynth generate`")
    by_stem = {p.relative_to(masks).with_suffix("").as_posix(): p for p in list_images(masks)}
    rows = []
    for image in list_images(images):
        stem = image.relative_to(images).with_suffix("").as_posix()
        if stem not in by_stem:
            raise DocsynthError(f"{image}: no mask with the same name in {masks}")
        rows.append({"id": stem, "image": image.relative_to(root).as_posix(),
                     "mask": by_stem[stem].relative_to(root).as_posix()})
    if not rows:
        raise DocsynthError(f"{images}: no images")
    return rows


@dataclass
class Item:
    """One labelled image of a dataset (a generated sample or a photo with corners)."""

    id: str
    image: Path
    mask: Path | None
    corners: np.ndarray | None
    width: int | None = None
    height: int | None = None
    flags: list[str] = field(default_factory=list)
    document: str = ""
    instances: list[dict[str, Any]] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)  # the manifest row as written (provenance)


def read_items(folder: str | Path) -> list[Item]:
    """The items of a generated dataset (``manifest.jsonl``) or of a folder of photos with
    ``corners.csv`` (in the folder or its ``images/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DocsynthError(f"{folder}: not a folder; pass a generated dataset or a folder with corners.csv")
    manifest = folder / FILENAME
    if manifest.is_file():
        items = []
        for n, row in enumerate(read_rows(folder), 1):
            try:
                corners = None if row.get("corners") is None else np.asarray(row["corners"], np.float64).reshape(4, 2)
                doc = row.get("document") or {}
                items.append(Item(id=str(row["id"]), image=folder / row["image"],
                                  mask=folder / row["mask"] if row.get("mask") else None, corners=corners,
                                  width=row.get("width"), height=row.get("height"), flags=list(row.get("flags", [])),
                                  document=f"{doc.get('source', '')}/{doc.get('id', '')}",
                                  instances=list(row.get("instances", [])), cases=list(row.get("cases", [])),
                                  row=row))
            except (KeyError, ValueError, TypeError) as exc:
                raise DocsynthError(f"{manifest}:{n}: malformed row ({exc}); regenerate the dataset") from None
        return items
    if (folder / "corners.csv").is_file():
        return [Item(id=path.stem, image=path, mask=None, corners=corners, document=path.stem)
                for path, corners in corners_csv.read_folder(folder)]
    raise DocsynthError(f"{folder}: no manifest.jsonl or corners.csv; pass a dataset made by 'docsynth generate' "
                        "or a folder of photos with corners.csv")
