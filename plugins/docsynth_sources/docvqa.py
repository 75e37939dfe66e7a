"""Source `docvqa`: DocVQA Task 1 (single-page) scans from the UCSF Industry Documents Library.

Data: ``spdocvqa_images.tar.gz`` (all splits, PNG ``<doc>_<page>.png``) plus, for the split of
each image, ``spdocvqa_qas.zip`` (``train_v1.0_withQT.json``, ``val_v1.0_withQT.json``,
``test_v1.0.json``; each question names its image as ``documents/<file>.png``). The older
per-split packages (``<split>/documents/*.png``) work too: the split then comes from the path.
Images are matched by file name, whatever folder the archive puts them in.

Words (text labels) come from the OCR files of ``spdocvqa_ocr.tar.gz`` when it was imported
(``<image stem>.json``), moved by the crop.

Cleaning: the scans carry a dark scanner frame, so every page is cropped by ``crop`` pixels
(default 42) on each border, as the reference pipeline did.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from docsynth.config import F, listing_options
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.kinds import DocumentRef, Page
from docsynth.options import Options
from docsynth_sources._common import box_word, choose, dataset_root, image_files, read_json_words, read_page

SPLITS = ("train", "val", "test")
_QA_FILE = re.compile(r"^(train|val|test)_v1\.0.*\.json$")


def _splits_from_qas(root: Path) -> dict[str, str]:
    """Image file name -> split, from whatever question files are under ``root``."""
    split_of: dict[str, str] = {}
    for qa in sorted(root.rglob("*.json")):
        m = _QA_FILE.match(qa.name)
        if not m:
            continue
        try:
            data = json.loads(qa.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DocsynthError(f"{qa}: unreadable DocVQA question file ({exc}); import spdocvqa_qas.zip again") from None
        for q in data.get("data", []):
            image = q.get("image")
            if image:
                split_of.setdefault(Path(image).name, m.group(1))
    return split_of


class DocVQASource:
    name = "docvqa"
    description = "DocVQA Task 1: scanned pages (letters, forms, reports); options: splits, crop"
    options = {**listing_options(), "splits": F((list, str, None), None, "splits to read, a list or comma-separated (null: all)"),
               "crop": F(int, 42, "px cropped from each border, as the reference did", low=0)}
    licence = "research use under the RRC DocVQA terms (registration required); images from the UCSF Industry Documents Library"
    homepage = "https://rrc.cvc.uab.es/?ch=17"
    terms = ("Register at rrc.cvc.uab.es and accept the DocVQA terms before downloading; the images "
             "come from the UCSF Industry Documents Library. Do not redistribute the images.")
    manual_download = (
        "DocVQA needs an RRC account, so docsynth cannot download it for you.\n"
        "1. Register at https://rrc.cvc.uab.es/?ch=17 and open the 'Downloads' tab (Task 1 - Single Page).\n"
        "2. Download spdocvqa_images.tar.gz (all splits, about 8.6 GB) and spdocvqa_qas.zip (questions;\n"
        "   they tell docsynth which split each image belongs to).\n"
        "3. Run: docsynth sources import docvqa spdocvqa_images.tar.gz\n"
        "        docsynth sources import docvqa spdocvqa_qas.zip")
    expected_archives = ["spdocvqa_images.tar.gz", "spdocvqa_qas.zip", "spdocvqa_ocr.tar.gz"]
    default_mask = "fullpage"

    def list_documents(self, options: Options) -> list[DocumentRef]:
        root = dataset_root(self.name, options)
        wanted = choose(options, "splits", SPLITS, self.name)
        crop = int(options.crop)
        split_of = _splits_from_qas(root)
        # spdocvqa_ocr.tar.gz: one <image stem>.json of OCR lines and words per page
        ocr = {p.stem: str(p) for p in sorted(root.rglob("*.json")) if not _QA_FILE.match(p.name)}
        refs, seen = [], set()
        for path in image_files(root, {".png", ".jpg", ".jpeg"}):
            if path.name in seen:  # the same page in two packages
                continue
            seen.add(path.name)
            parts = path.relative_to(root).parts
            split = split_of.get(path.name) or next((p for p in reversed(parts[:-1]) if p in SPLITS), "unknown")
            refs.append(DocumentRef(id=path.stem, source=self.name, path=str(path),
                                    meta={"split": split, "original_id": path.stem, "crop": crop,
                                          "licence": self.licence, "ocr": ocr.get(path.stem)}))
        if wanted is not None:
            if refs and all(r.meta["split"] == "unknown" for r in refs):
                raise DocsynthError(f"{root}: option 'splits' needs the question files that name each image's "
                                    "split; run 'docsynth sources import docvqa spdocvqa_qas.zip'")
            refs = [r for r in refs if r.meta["split"] in wanted]
        return refs

    def load_document(self, ref: DocumentRef) -> Page:
        image = read_page(ref.path)
        c = int(ref.meta.get("crop", 42))
        h, w = image.shape[:2]
        if c and (h <= 2 * c or w <= 2 * c):
            raise DocsynthError(f"{ref.path}: {w}x{h} px is too small for a {c} px border crop")
        words = read_json_words(ref.meta.get("ocr"), lambda data: docvqa_words(data, c, w - 2 * c, h - 2 * c))
        return Page(image=np.ascontiguousarray(image[c:h - c, c:w - c]) if c else image, words=words)


def docvqa_words(data: Any, crop: int, width: int, height: int) -> list[dict[str, Any]]:
    """The words of a DocVQA OCR file (``recognitionResults[].lines[].words[]``, 8-number
    boxes), in the cropped page's pixels; words the crop cut off are left out."""
    words = []
    results = data.get("recognitionResults", []) if isinstance(data, dict) else []
    for line_no, line in enumerate(ln for r in results for ln in (r.get("lines") or [])):
        for w in line.get("words", []) if isinstance(line, dict) else []:
            word = box_word(w.get("text"), w.get("boundingBox"), crop, crop) if isinstance(w, dict) else None
            if word is None:
                continue
            pts = np.asarray(word["poly"])
            if pts.min() >= 0 and (pts[:, 0] <= width).all() and (pts[:, 1] <= height).all():
                words.append({**word, "line": line_no})
    return words


@hookimpl
def register_sources(register):
    register(DocVQASource())
