"""Scanning files: the photos of the inputs, one flattened page each (held back below a
confidence), ``corners.csv`` (with each photo's confidence) and ``scan.json``; an interrupted
scan resumes from its journal, and a photo replaced since is scanned again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.errors import DocsynthError
from docsynth.formats import corners as corners_csv
from docsynth.io import IMAGE_SUFFIXES, atomic_write_text, list_images, write_image
from docsynth.progress import Progress
from docsynth.scan.scanner import Scanner, read_photo
from docsynth.text import below

# ---------------------------------------------------------------------------------------------
# Scanning files
# ---------------------------------------------------------------------------------------------


def collect_photos(inputs: list[Path]) -> list[tuple[Path, str]]:
    """(photo path, output name) for every photo in the inputs (files or folders)."""
    found: list[tuple[Path, str]] = []
    for item in inputs:
        if item.is_dir():
            for p in list_images(item):  # pages keep the photos' subfolders: images/x.jpg -> OUT/images/x.jpg
                found.append((p, p.relative_to(item).with_suffix("").as_posix()))
        elif item.is_file():
            if item.suffix.lower() not in IMAGE_SUFFIXES:
                raise DocsynthError(f"{item}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found.append((item, item.stem))
        else:
            raise DocsynthError(f"{item}: no such file or folder")
    names = [n for _, n in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DocsynthError(f"several photos would be written as {dupes[0]}.jpg; scan them into separate --out folders")
    if not found:
        raise DocsynthError(f"{', '.join(map(str, inputs))}: no photos found")
    return found


# A page found with a confidence below this is held back: its corners go to corners.csv, marked,
# but no flattened page is written (docs/scan.md; `scan --min-confidence` changes it).
HOLD_BACK_BELOW = 0.05
JOURNAL = ".scan-progress.jsonl"  # photos done so far, while a scan runs: what a rerun resumes from


def stamp(path: Path) -> list[int]:
    """Size and modification time (ns) of an input: a file replaced at the same path differs."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def read_journal(out: Path, fingerprint: Any) -> dict[str, dict[str, Any]]:
    """Photo path -> its journal entry, from an interrupted scan with the same settings."""
    try:
        lines = (out / JOURNAL).read_text(encoding="utf-8").splitlines()
        if not lines or json.loads(lines[0]).get("fingerprint") != fingerprint:
            return {}
        entries = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except ValueError:  # the line an interruption cut short
                continue
            entries[entry["result"]["image"]] = entry
        return entries
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def scan_photos(scanner: Scanner, inputs: list[Path], out: Path, force: bool = False,
                jpeg_quality: int = 95, progress: Progress | None = None,
                warn: Callable[[str], None] | None = None, fingerprint: Any = None,
                min_confidence: float = HOLD_BACK_BELOW) -> dict[str, Any]:
    """Scan photos into ``out``: one flattened ``<name>.jpg`` per page found, ``corners.csv``
    (pixels of the upright photo; empty corners where no page was found) and ``scan.json``.
    An unreadable photo is skipped (``warn`` gets one line naming it) and the rest scanned.

    Each photo done is journalled in ``.scan-progress.jsonl``, so an interrupted scan resumes
    with the same ``fingerprint`` (the scanner's settings): photos whose size and mtime did not
    change are not scanned again."""
    photos = collect_photos(inputs)
    csv_path = out / "corners.csv"
    if csv_path.exists() and not force:
        raise DocsynthError(f"{csv_path}: exists from an earlier scan; pass --force to replace it "
                            "or choose another --out")
    fingerprint = {"scanner": fingerprint, "post": scanner.post_name, "post_options": dict(scanner.post_options),
                   "jpeg_quality": jpeg_quality, "min_confidence": min_confidence}
    earlier = {} if force else read_journal(out, fingerprint)
    out.mkdir(parents=True, exist_ok=True)
    journal = (out / JOURNAL).open("w" if not earlier else "a", encoding="utf-8")
    if not earlier:
        journal.write(json.dumps({"fingerprint": fingerprint}) + "\n")
        journal.flush()
    if progress:
        progress.start(len(photos))
    rows: list[tuple[str, np.ndarray | None]] = []
    results: list[dict[str, Any]] = []
    resumed = 0
    try:
        for path, name in photos:
            entry = earlier.get(str(path))
            page = entry and entry["result"]["page"]
            if entry and entry["stamp"] == stamp(path) and (not page or Path(page).is_file()):
                rows.append((entry["row"][0], None if entry["row"][1] is None else np.asarray(entry["row"][1])))
                results.append(entry["result"])
                resumed += 1
                if progress:
                    progress.advance()
                continue
            _scan_one(scanner, path, name, inputs, out, jpeg_quality, min_confidence, rows, results, warn)
            if results[-1].get("skipped"):  # not journalled: a rerun tries it again (and says so again)
                if progress:
                    progress.advance()
                continue
            journal.write(json.dumps({"stamp": stamp(path), "result": results[-1],
                                      "row": [rows[-1][0], None if rows[-1][1] is None
                                              else np.asarray(rows[-1][1], np.float64).tolist()]}) + "\n")
            journal.flush()
            if progress:
                progress.advance()
    finally:
        journal.close()
    corners_csv.write(csv_path, rows, [r["confidence"] for r in results])
    summary = {"out": str(out), "post": scanner.post_name, "photos": len(photos),
               "pages": sum(r["page"] is not None for r in results), "corners_csv": str(csv_path),
               "skipped": sum(bool(r.get("skipped")) for r in results), "resumed": resumed,
               "held_back": sum(bool(r.get("held_back")) for r in results),
               "results": results}
    atomic_write_text(out / "scan.json", json.dumps(summary, indent=2) + "\n")
    (out / JOURNAL).unlink(missing_ok=True)
    return summary


def _scan_one(scanner: Scanner, path: Path, name: str, inputs: list[Path], out: Path, jpeg_quality: int,
              min_confidence: float,
              rows: list, results: list, warn: Callable[[str], None] | None) -> None:
    """Scan one photo: its page file, its corners.csv row and its result appended."""
    try:
        image = read_photo(path)
    except DocsynthError as exc:  # one unreadable photo costs that photo, not the batch
        if warn:
            warn(f"{str(exc).strip().splitlines()[0]}; skipped, the other photos are scanned")
        rows.append((path.name if len(inputs) == 1 and inputs[0].is_file() else _rel(path, inputs), None))
        results.append({"image": str(path), "page": None, "corners": None, "confidence": 0.0,
                        "reason": f"skipped: {exc}", "size": None, "skipped": True})
        return
    result = scanner.scan(image)
    page_file, confidence, reason = None, float(result.quad.confidence), result.quad.reason
    held = result.page is not None and confidence < min_confidence
    if held:  # a page the scanner is not sure of at all is likely not the page: not written as one
        reason = f"confidence {below(confidence, min_confidence)} below {min_confidence}: page held back " \
                 "(corners in corners.csv)"
    elif result.page is not None:
        page_file = out / f"{name}.jpg"
        write_image(page_file, result.page, jpeg_quality)
    corners = result.quad.corners
    rows.append((path.name if len(inputs) == 1 and inputs[0].is_file() else _rel(path, inputs), corners))
    results.append({"image": str(path), "page": None if page_file is None else str(page_file),
                    "corners": None if corners is None else np.round(corners, 2).tolist(),
                    "confidence": round(confidence, 4), "reason": reason, "held_back": held,
                    "size": [image.shape[1], image.shape[0]]})


def _rel(path: Path, inputs: list[Path]) -> str:
    """The photo's name in corners.csv: relative to the folder it was found in."""
    for item in inputs:
        if item.is_dir():
            try:
                return path.relative_to(item).as_posix()
            except ValueError:
                continue
    return path.name
