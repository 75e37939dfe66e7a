"""`docsynth split`: cut a generated dataset into train/ and valid/ without leaking pages.

Two modes:

- leak-free (default): whole groups go to one split. ``group_by: document`` keeps every
  composite of a document together; ``background`` does the same for backgrounds; ``both``
  draws documents and backgrounds independently and keeps a sample only when its document and
  its background landed in the same split (the others are dropped and counted), so no page
  and no surface is seen in training and validation.
- reference (``valid_per_group: N``): N composites of EVERY document go to valid, the rest to
  train, as the reference recipe does (1 of 6). Validation then contains pages the model
  trained on, so its IoU is optimistic; ``split --check`` reports these leaks.

Images are shrunk to ``max_size`` (longest side, never enlarged) and corners follow. The
output depends only on the dataset, the options and the seed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from docsynth.errors import DocsynthError
from docsynth.formats.manifest import read_file_rows
from docsynth.generate.dewarp import resized_labels
from docsynth.io import (
    atomic_write_bytes,
    atomic_write_text,
    claim_output,
    read_image,
    read_jsonl,
    read_mask,
    write_image,
    write_jsonl,
)
from docsynth.progress import Progress

SPLITS = ("train", "valid")


def document_key(row: dict[str, Any]) -> str:
    doc = row.get("document")
    if isinstance(doc, dict):
        return f"{doc.get('source')}/{doc.get('id')}"
    if doc is not None:
        return str(doc)
    return f"image/{row['id']}"  # unknown document: the image is its own group


def background_key(row: dict[str, Any]) -> str:
    bg = row.get("background")
    return str(bg) if bg is not None else f"image/{row['id']}"


# ---------------------------------------------------------------------------------------------
# Assigning samples to splits
# ---------------------------------------------------------------------------------------------


def _pick_groups(keys: list[str], fraction: float, rng: np.random.Generator) -> set[str]:
    """A seeded choice of round(fraction * n) groups (at least 1 and at most n - 1 when n > 1)."""
    keys = sorted(set(keys))
    n = len(keys)
    k = int(round(fraction * n))
    if fraction > 0 and n > 1:
        k = min(max(k, 1), n - 1)
    order = rng.permutation(n)
    return {keys[i] for i in order[:k]}


def assign(rows: list[dict[str, Any]], *, seed: int, valid_fraction: float = 0.2,
           valid_per_group: int | None = None, group_by: str = "document") -> list[str]:
    """Return "train", "valid" or "dropped" for each row (deterministic in seed and rows)."""
    if group_by not in ("document", "background", "both"):
        raise DocsynthError(f"split.group_by: {group_by!r} is not document, background or both")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x5B117])))
    if valid_per_group is not None:
        # Reference mode: within each document, a seeded choice of N composites goes to valid.
        if valid_per_group < 0:
            raise DocsynthError("split.valid_per_group must not be negative")
        members: dict[str, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            members[document_key(row)].append(i)
        out = ["train"] * len(rows)
        for key in sorted(members):
            idx = members[key]
            for j in rng.permutation(len(idx))[:valid_per_group]:
                out[idx[j]] = "valid"
        return out
    docs = _pick_groups([document_key(r) for r in rows], valid_fraction, rng) \
        if group_by in ("document", "both") else None
    bgs = _pick_groups([background_key(r) for r in rows], valid_fraction, rng) \
        if group_by in ("background", "both") else None
    out = []
    for row in rows:
        in_doc = docs is not None and document_key(row) in docs
        in_bg = bgs is not None and background_key(row) in bgs
        if group_by == "document":
            out.append("valid" if in_doc else "train")
        elif group_by == "background":
            out.append("valid" if in_bg else "train")
        else:
            out.append("valid" if in_doc and in_bg else "train" if not (in_doc or in_bg) else "dropped")
    return out


# ---------------------------------------------------------------------------------------------
# Writing the split
# ---------------------------------------------------------------------------------------------


def _resize_pair(image: np.ndarray, mask: np.ndarray, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shrink so the longest side is ``max_size`` (never enlarge; 0 keeps the size)."""
    h, w = image.shape[:2]
    scale = max_size / max(h, w) if max_size > 0 else 1.0
    if scale >= 1:
        return image, mask
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # Area-average then threshold: each small pixel takes the majority label.
    small_mask = np.where(cv2.resize(mask, size, interpolation=cv2.INTER_AREA) >= 128, 255, 0).astype(np.uint8)
    return small, small_mask


def _settings(dataset: Path, opts: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": str(dataset.resolve()), **opts}


def split(dataset: str | Path, out: str | Path, *, seed: int, valid_fraction: float = 0.2,
          valid_per_group: int | None = None, group_by: str = "document", max_size: int = 480,
          force: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    dataset, out = Path(dataset), Path(out)
    rows = read_file_rows(dataset)
    opts = {"seed": seed, "valid_fraction": valid_fraction, "valid_per_group": valid_per_group,
            "group_by": group_by, "max_size": max_size}
    settings = _settings(dataset, opts)
    marker = out / "split.yaml"
    if claim_output(out, marker, settings, (*SPLITS, "split.jsonl", "split.yaml"), force,
                    f"a split of {dataset} with these options", key="settings"):
        # split.yaml is written last, so the split is complete: nothing to redo
        return {**summarise_split(out), "out": str(out), "resumed": True, "seconds": 0.0}
    labels = assign(rows, seed=seed, valid_fraction=valid_fraction, valid_per_group=valid_per_group,
                    group_by=group_by)
    if progress:
        progress.start(len(rows), 0)
    try:
        _write_split(dataset, out, rows, labels, max_size, progress)
    except BaseException:
        # A half-written split has no split.yaml and would block the rerun as "not empty":
        # what split writes is removed again (anything by those names was cleared above).
        for name in (*SPLITS, "split.jsonl"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        raise
    # split.yaml last: its presence means the split is complete.
    atomic_write_text(marker, yaml.safe_dump({"settings": settings}, sort_keys=False))
    return {**summarise_split(out), "out": str(out), "resumed": False,
            "seconds": round(time.perf_counter() - t0, 3)}


def _write_split(dataset: Path, out: Path, rows: list[dict[str, Any]], labels: list[str], max_size: int,
                 progress: Progress | None) -> None:
    manifests: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    record = []
    for row, label in zip(rows, labels, strict=True):
        record.append({"id": row.get("id"), "split": label, "document": document_key(row),
                       "background": background_key(row), "image": row["image"]})
        if label in SPLITS:
            manifests[label].append(_copy_sample(dataset, out / label, row, max_size))
        if progress:
            progress.advance()
    for label in SPLITS:
        write_jsonl(out / label / "manifest.jsonl", manifests[label])
    write_jsonl(out / "split.jsonl", record)


def _copy_sample(root: Path, dest: Path, row: dict[str, Any], max_size: int) -> dict[str, Any]:
    image = read_image(root / row["image"])
    mask = read_mask(root / row["mask"])
    if mask.shape != image.shape[:2]:
        raise DocsynthError(f"{root / row['mask']}: size {mask.shape[::-1]} differs from its image")
    old_h, old_w = mask.shape
    image, mask = _resize_pair(image, mask, max_size)
    new = dict(row)
    name = Path(row["image"]).relative_to("images") if row["image"].startswith("images/") else Path(row["image"]).name
    new["image"] = f"images/{Path(name).as_posix()}"
    new["mask"] = f"masks/{Path(name).with_suffix('.png').as_posix()}"
    new["height"], new["width"] = mask.shape
    if mask.shape != (old_h, old_w):
        # Edge coordinates scale exactly with the image: x' = x * W'/W.
        factor = np.array([new["width"] / old_w, new["height"] / old_h])
        if row.get("corners") is not None:
            new["corners"] = np.round(np.asarray(row["corners"], float) * factor, 3).tolist()
        for key, value in row.items():  # more instances' corners (compositor extras)
            if key.endswith("_corners") and isinstance(value, list) and value:
                with contextlib.suppress(ValueError):
                    new[key] = np.round(np.asarray(value, float) * factor, 3).tolist()
    write_image(dest / new["image"], image)
    write_image(dest / new["mask"], mask)
    if row.get("dewarp") or row.get("text"):  # generate.labels: carried along, resized with the image
        for kind, data in resized_labels(root, row, (new["width"], new["height"])).items():
            new[kind] = f"{kind}/{Path(name).with_suffix('.npz' if kind == 'dewarp' else '.jsonl').as_posix()}"
            atomic_write_bytes(dest / new[kind], data)
    return new


# ---------------------------------------------------------------------------------------------
# Checking a split
# ---------------------------------------------------------------------------------------------


def summarise_split(out: str | Path) -> dict[str, Any]:
    """Sizes and leaks of a split folder (train/ and valid/, each a dataset)."""
    out = Path(out)
    rows = {}
    for label in SPLITS:
        if not (out / label).is_dir():
            raise DocsynthError(f"{out}: no {label}/ folder; pass a folder made by `docsynth split`")
        rows[label] = read_file_rows(out / label)
    docs = {s: {document_key(r) for r in rows[s]} for s in SPLITS}
    bgs = {s: {background_key(r) for r in rows[s]} for s in SPLITS}
    shared_docs = sorted(docs["train"] & docs["valid"])
    shared_bgs = sorted((bgs["train"] & bgs["valid"]) - {k for k in bgs["train"] if k.startswith("image/")})
    dropped = 0
    if (out / "split.jsonl").is_file():
        dropped = sum(r.get("split") == "dropped" for r in read_jsonl(out / "split.jsonl"))
    # A document in both splits is always a leak (the model trained on that very page). A shared
    # background is one only when the split promised to separate backgrounds (or says nothing).
    group_by = None
    if (out / "split.yaml").is_file():
        group_by = ((yaml.safe_load((out / "split.yaml").read_text()) or {}).get("settings") or {}).get("group_by")
    separate_bgs = group_by in (None, "background", "both")
    return {"train": len(rows["train"]), "valid": len(rows["valid"]), "dropped": dropped,
            "group_by": group_by,
            "documents": {s: len(docs[s]) for s in SPLITS}, "backgrounds": {s: len(bgs[s]) for s in SPLITS},
            "leaked_documents": shared_docs, "leaked_backgrounds": shared_bgs if separate_bgs else [],
            "shared_backgrounds": shared_bgs}


def describe_sharing(summary: dict[str, Any]) -> str:
    """What the split keeps apart and what the two splits share, in words (report, --check)."""
    def counted(kind: str, shared: list[str]) -> tuple[int, int]:
        sizes = summary.get(kind) or {}
        return len(shared), sizes.get("train", 0) + sizes.get("valid", 0) - len(shared)

    docs, doc_total = counted("documents", summary.get("leaked_documents") or [])
    bgs, bg_total = counted("backgrounds", summary.get("shared_backgrounds") or [])
    group_by = summary.get("group_by")
    text = f"Grouped by {group_by}: " if group_by else ""
    text += (f"{docs} of {doc_total} documents are in both splits"
             + (": a leak, valid/ scores pages the model trained on. " if docs else " (no leak). "))
    text += f"{bgs} of {bg_total} backgrounds are in both splits"
    if not bgs:
        return text + "."
    if summary.get("leaked_backgrounds"):
        return text + ": a leak, since this split keeps backgrounds apart."
    return text + " (allowed: this split keeps documents apart, not backgrounds)."
