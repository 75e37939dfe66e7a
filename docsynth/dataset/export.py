"""`docsynth export`: a generated dataset in other tools' formats.

- ``coco``: ``images/`` + ``annotations.json``, COCO instance segmentation with 4 keypoints per
  page (tl, tr, br, bl; visibility 2 inside the image, 1 outside it). The segmentation is the
  page mask's outline (the visible page); negatives are images without annotations.
- ``yolo-seg``: ``images/`` + ``labels/`` (one ``0 x1 y1 x2 y2 ...`` line per page, coordinates
  normalised to [0, 1]; an empty file for negatives) + ``data.yaml``.
- ``reference``: the reference pipeline's layout, ``images/{doc:04}_bck_{k:02}.<ext>`` and
  ``masks/{doc:04}_bck_{k:02}.png`` (3-channel, 0/255), ``doc`` numbering documents in manifest
  order and ``k`` the composites of each document, for existing training code.
- ``parquet``: one file (``--out data.parquet``), one row per sample (:data:`PARQUET_COLUMNS`):
  the image and mask files' bytes, corners, flags and provenance, readable by pyarrow, pandas
  and Hugging Face ``datasets`` (``image`` and ``mask`` load as its ``Image`` feature). Needs
  pyarrow (``pip install 'docsynth[parquet]'``). Samples made with ``generate.labels`` carry
  their ``dewarp`` npz bytes and ``text`` word records too.
- ``icdar2015``, ``doc3d``, ``uvdoc``: the labels beyond the page, see
  :mod:`docsynth.dataset.export_labels`.

Images are hard-linked when the file system allows, copied otherwise. An output folder that is
not empty is refused unless ``force``; every file is written atomically (the parquet file under
a temporary name, renamed when complete; an existing one is replaced only with ``force``).
"""

from __future__ import annotations

import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from docsynth.dataset.export_labels import LABEL_EXPORTERS
from docsynth.errors import DocsynthError
from docsynth.formats.manifest import Item, read_items
from docsynth.geometry import quad_mask
from docsynth.io import atomic_write_bytes, atomic_write_text, encode_image, place_file, read_image, read_mask
from docsynth.progress import Progress

FORMATS = ("coco", "yolo-seg", "reference", "parquet", "icdar2015", "doc3d", "uvdoc")
KEYPOINTS = ["tl", "tr", "br", "bl"]


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DocsynthError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise DocsynthError(f"{out}: not empty; use --force to replace it or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _mask_of(item: Item) -> np.ndarray | None:
    if item.mask is not None and item.mask.is_file():
        return read_mask(item.mask)
    if item.corners is not None and item.width and item.height:
        return quad_mask(item.corners, (item.height, item.width))
    return None


def _size(item: Item) -> tuple[int, int]:
    if item.width and item.height:
        return int(item.width), int(item.height)

    h, w = read_image(item.image, cv2.IMREAD_UNCHANGED).shape[:2]
    item.width, item.height = w, h
    return w, h


def mask_polygons(mask: np.ndarray, min_area: float = 4.0, ss: int = 4) -> list[np.ndarray]:
    """Outer outlines of the mask's parts (largest first) as (N, 2) float arrays in edge
    coordinates, simplified by at most half a pixel. Traced on a ``ss``x nearest-neighbour
    upsampling: contours run through boundary pixel centres, which at 1x would shrink the page
    by half a pixel all round; at 4x by an eighth."""
    big = cv2.resize((mask > 0).astype(np.uint8), None, fx=ss, fy=ss, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in sorted(contours, key=cv2.contourArea, reverse=True):
        if cv2.contourArea(c) < min_area * ss * ss:
            continue
        c = cv2.approxPolyDP(c, 0.5 * ss, True)
        if len(c) >= 3:
            polys.append((c.reshape(-1, 2).astype(np.float64) + 0.5) / ss)  # centres -> edge coordinates
    return polys


# ---------------------------------------------------------------------------------------------


def export_coco(items: list[Item], out: Path, progress: Progress | None = None) -> dict[str, Any]:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for n, item in enumerate(items, 1):
        w, h = _size(item)
        name = f"{item.id}{item.image.suffix}"
        place_file(item.image, out / "images" / name)
        images.append({"id": n, "file_name": f"images/{name}", "width": w, "height": h,
                       "flags": item.flags, "document": item.document})
        mask = _mask_of(item) if item.corners is not None else None
        if mask is not None and item.corners is not None:
            polys = mask_polygons(mask)
            if polys:
                ys, xs = np.nonzero(mask)
                keypoints = []
                for x, y in item.corners:
                    inside = 0 <= x <= w and 0 <= y <= h
                    keypoints += [round(float(x), 2), round(float(y), 2), 2 if inside else 1]
                annotations.append({
                    "id": len(annotations) + 1, "image_id": n, "category_id": 1, "iscrowd": 0,
                    "segmentation": [np.round(p, 2).reshape(-1).tolist() for p in polys],
                    "area": float(len(xs)),
                    "bbox": [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                             float(ys.max() - ys.min() + 1)],
                    "num_keypoints": 4, "keypoints": keypoints,
                })
        if progress:
            progress.advance()
    coco = {
        "info": {"description": "docsynth export", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "page", "supercategory": "document", "keypoints": KEYPOINTS,
                        "skeleton": [[1, 2], [2, 3], [3, 4], [4, 1]]}],
    }
    atomic_write_text(out / "annotations.json", json.dumps(coco))
    return {"images": len(images), "annotations": len(annotations), "file": str(out / "annotations.json")}


def export_yolo_seg(items: list[Item], out: Path, progress: Progress | None = None) -> dict[str, Any]:
    labelled = 0
    for item in items:
        w, h = _size(item)
        place_file(item.image, out / "images" / f"{item.id}{item.image.suffix}")
        lines = []
        mask = _mask_of(item) if item.corners is not None else None
        if mask is not None:
            polys = mask_polygons(mask)
            if polys:  # one object per page: its largest visible part
                p = np.clip(polys[0] / (w, h), 0, 1)
                lines.append("0 " + " ".join(f"{v:.6f}" for v in p.reshape(-1)))
                labelled += 1
        atomic_write_text(out / "labels" / f"{item.id}.txt", "".join(line + "\n" for line in lines))
        if progress:
            progress.advance()
    atomic_write_text(out / "data.yaml", f"path: {out.resolve()}\ntrain: images\nval: images\nnames:\n  0: page\n")
    return {"images": len(items), "labelled": labelled, "file": str(out / "data.yaml")}


def export_reference(items: list[Item], out: Path, progress: Progress | None = None) -> dict[str, Any]:
    docs: dict[str, int] = {}
    per_doc: dict[int, int] = {}
    for item in items:
        doc = docs.setdefault(item.document, len(docs))
        k = per_doc.get(doc, 0)
        per_doc[doc] = k + 1
        stem = f"{doc:04d}_bck_{k:02d}"
        place_file(item.image, out / "images" / f"{stem}{item.image.suffix}")
        w, h = _size(item)
        mask = _mask_of(item) if item.corners is not None else None
        if mask is None:
            mask = np.zeros((h, w), np.uint8)
        atomic_write_bytes(out / "masks" / f"{stem}.png", encode_image(cv2.merge([mask, mask, mask]), ".png"))
        if progress:
            progress.advance()
    return {"images": len(items), "documents": len(docs), "folder": str(out)}


# ---------------------------------------------------------------------------------------------
# Parquet
# ---------------------------------------------------------------------------------------------

PARQUET_COLUMNS = {
    "id": "sample id (the manifest's, or the photo's file stem)",
    "image": "struct {bytes, path}: the image file's bytes as stored (JPEG/PNG) and its path in the dataset",
    "mask": "struct {bytes, path}: the page mask as a PNG (0/255); drawn from the corners for photo folders",
    "width": "image width in pixels", "height": "image height in pixels",
    "corners": "[[x, y] x 4] TL, TR, BR, BL in image pixels (pixel-edge coordinates), null for negatives",
    "flags": "truncated / occluded / approximate / negative",
    "cases": "hard cases the compositor drew (realistic compositor)",
    "document": "source/id of the page (the id alone where it starts with the source)", "background": "background id",
    "seed": "[master seed, sample index]: the sample is redrawn from these",
    "preset": "compositor preset",
    "provenance": "the whole manifest row as JSON (everything above and what plugins add)",
    "dewarp": "generate.labels dewarp: the dewarp/<id>.npz bytes (uv, visible, bm; np.load(io.BytesIO(...)))",
    "text": "generate.labels text: the text/<id>.jsonl word records, as JSON lines",
}
PARQUET_ROWS_PER_GROUP = 64  # a few MB of images per row group: streaming, bounded memory
PARQUET_EXTRA = "pip install 'docsynth[parquet]' (pyarrow)"


def require_pyarrow() -> None:
    try:
        # optional extra [parquet], probed before any work
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DocsynthError(f"--format parquet needs pyarrow, which is not installed: {PARQUET_EXTRA}") from None


def _parquet_schema() -> Any:
    import pyarrow as pa  # optional extra [parquet]

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # Hugging Face's Image storage
    fields = [("id", pa.string()), ("image", image), ("mask", image), ("width", pa.int32()),
              ("height", pa.int32()), ("corners", pa.list_(pa.list_(pa.float64()))),
              ("flags", pa.list_(pa.string())), ("cases", pa.list_(pa.string())), ("document", pa.string()),
              ("background", pa.string()), ("seed", pa.list_(pa.int64())), ("preset", pa.string()),
              ("provenance", pa.string()), ("dewarp", pa.binary()), ("text", pa.string())]
    # datasets reads image/mask as its Image feature from this; other columns map from Arrow types
    hf = {"info": {"features": {"image": {"_type": "Image"}, "mask": {"_type": "Image"}}}}
    return pa.schema(fields, metadata={"huggingface": json.dumps(hf),
                                       "docsynth": json.dumps({"columns": PARQUET_COLUMNS})})


def _document_label(item: Item) -> str:
    """source/id of the page, without saying the source twice: procedural pages have ids like
    ``procedural-42-000001``, which "procedural/procedural-42-000001" only repeated."""
    doc = item.row.get("document") if isinstance(item.row.get("document"), dict) else None
    if not doc:
        return item.document
    source, ident = str(doc.get("source", "")), str(doc.get("id", ""))
    return ident if not source or ident.startswith(source) else f"{source}/{ident}"


def _parquet_row(item: Item, root: Path) -> dict[str, Any]:
    if not item.image.is_file():
        raise DocsynthError(f"{item.image}: image listed in the manifest is missing; regenerate the dataset")
    w, h = _size(item)
    mask: dict[str, Any] | None
    if item.mask is not None and item.mask.is_file():
        mask = {"bytes": item.mask.read_bytes(), "path": _rel(item.mask, root)}
    else:
        drawn = _mask_of(item)
        mask = None if drawn is None else {"bytes": encode_image(drawn, ".png"), "path": None}
    row = item.row
    seed = row.get("seed")
    return {"id": item.id, "image": {"bytes": item.image.read_bytes(), "path": _rel(item.image, root)},
            "mask": mask, "width": w, "height": h,
            "corners": None if item.corners is None else np.asarray(item.corners, np.float64).tolist(),
            "flags": list(item.flags), "cases": list(item.cases), "document": _document_label(item),
            "background": None if row.get("background") is None else str(row["background"]),
            "seed": [int(v) for v in seed] if isinstance(seed, list) else None,
            "preset": row.get("preset"),
            "provenance": json.dumps(row or {"image": _rel(item.image, root)}, sort_keys=True),
            "dewarp": _label_bytes(root, row.get("dewarp")),
            "text": _label_text(root, row.get("text"))}


def _label_text(root: Path, rel: str | None) -> str | None:
    data = _label_bytes(root, rel)
    return None if data is None else data.decode("utf-8")


def _label_bytes(root: Path, rel: str | None) -> bytes | None:
    """A label file of the sample (generate.labels), None when it has none."""
    if not rel:
        return None
    path = root / rel
    if not path.is_file():
        raise DocsynthError(f"{path}: label file listed in the manifest is missing; regenerate the dataset")
    return path.read_bytes()


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def export_parquet(items: list[Item], out: Path, root: Path,
                   progress: Progress | None = None) -> dict[str, Any]:
    """Write ``out`` under a temporary name beside it, row group by row group, then rename it."""
    # optional extra [parquet]
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with pq.ParquetWriter(str(tmp), schema) as writer:
            for start in range(0, len(items), PARQUET_ROWS_PER_GROUP):
                rows = []
                for item in items[start:start + PARQUET_ROWS_PER_GROUP]:
                    rows.append(_parquet_row(item, root))
                    if progress:
                        progress.advance()
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"images": len(items), "negatives": sum(i.corners is None for i in items), "bytes": out.stat().st_size,
            "columns": list(PARQUET_COLUMNS)}


EXPORTERS = {"coco": export_coco, "yolo-seg": export_yolo_seg, "reference": export_reference}


def export(dataset: str | Path, fmt: str, out: str | Path, force: bool = False,
           progress: Progress | None = None) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise DocsynthError(f"--format {fmt!r}: unknown; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "parquet":
        require_pyarrow()
        if out.is_dir():
            raise DocsynthError(f"{out}: is a folder; --format parquet writes one file, e.g. --out data.parquet")
        if out.exists() and not force:
            raise DocsynthError(f"{out}: exists; use --force to replace it or choose another --out")
        items = read_items(dataset)
        if progress:
            progress.start(len(items), 0)
        out.parent.mkdir(parents=True, exist_ok=True)
        return {"format": fmt, "out": str(out), **export_parquet(items, out, Path(dataset), progress)}
    items = read_items(dataset)
    exporter = partial(LABEL_EXPORTERS[fmt], root=Path(dataset)) if fmt in LABEL_EXPORTERS else EXPORTERS[fmt]
    if out.resolve() == Path(dataset).resolve():
        raise DocsynthError(f"{out}: --out must differ from the dataset folder")
    existed = out.is_dir()
    _prepare_out(out, force)
    if progress:
        progress.start(len(items), 0)
    try:
        result = exporter(items, out, progress=progress)
    except BaseException:
        # Everything in ``out`` is this export's (it was empty or cleared): a half-written
        # export would only block the rerun with "not empty".
        _remove_contents(out, keep_folder=existed)
        raise
    return {"format": fmt, "out": str(out), **result}


def _remove_contents(out: Path, keep_folder: bool) -> None:
    if not keep_folder:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
