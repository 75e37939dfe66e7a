"""Test helpers for the source tests: tiny images and archives in the datasets' real layouts
(the HTTP server they are fetched from is the `http_server` fixture, tests/local_server.py)."""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np


def page_png(w: int = 120, h: int = 160, value: int = 235, seed: int = 0, suffix: str = ".png") -> bytes:
    """A light page with some dark 'text' strokes, encoded."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), value, np.uint8)
    for _ in range(6):
        y = int(rng.integers(5, h - 5))
        x0 = int(rng.integers(0, w // 2))
        img[y:y + 2, x0:x0 + w // 3] = 20
    ok, buf = cv2.imencode(suffix, img)
    assert ok
    return buf.tobytes()


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "w:gz" if path.name.endswith(("gz", "tgz")) else "w"
    with tarfile.open(path, mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


# ---------------------------------------------------------------------------------------------
# Datasets in their real layouts and file names (see shared/reference/datasets.md), tiny
# ---------------------------------------------------------------------------------------------

DOCVQA = {"val": ["xnbl0037_1", "pybv0228_81", "ffbf0023_4"], "test": ["nkbl0226_1", "snbx0223_22"],
          "train": ["hrfw0227_24", "jzhd0227_85"]}


def docvqa_archives(folder: Path) -> tuple[Path, Path]:
    """``spdocvqa_images.tar.gz`` (200x260 scans) and ``spdocvqa_qas.zip`` (split per image)."""
    import json

    images, qas = {}, {}
    for split, names in DOCVQA.items():
        for name in names:
            images[f"documents/{name}.png"] = page_png(200, 260, seed=zlib.crc32(name.encode()) % 1000)
        qfile = {"train": "train_v1.0_withQT.json", "val": "val_v1.0_withQT.json", "test": "test_v1.0.json"}[split]
        data = [{"questionId": 100 + i, "question": "What is the date?", "image": f"documents/{n}.png",
                 "docId": 1000 + i, "ucsf_document_id": n.split("_")[0], "ucsf_document_page_no": n.split("_")[1],
                 "answers": ["1 May 1972"]} for i, n in enumerate(names)]
        # two questions on one page, as in the real files
        data.append(dict(data[0], questionId=999))
        qas[f"spdocvqa_qas/{qfile}"] = json.dumps({"dataset_name": "docvqa", "dataset_split": split,
                                                   "dataset_version": "1.0", "data": data}).encode()
    return make_tar(folder / "spdocvqa_images.tar.gz", images), make_zip(folder / "spdocvqa_qas.zip", qas)


IAM = {"formsA-D.tgz": ["a01-000u", "b04-034"], "formsE-H.tgz": ["e01-014", "f04-024", "g06-011a", "h02-037"]}


def iam_archives(folder: Path) -> list[Path]:
    out = []
    for archive, ids in IAM.items():
        files = {f"{i}.png": page_png(150, 190, value=250, seed=k) for k, i in enumerate(ids)}
        files["README.png"] = page_png(20, 20)  # not a form id: ignored
        out.append(make_tar(folder / archive, files))
    return out


def kaggle_archive(folder: Path) -> Path:
    """The newer Kaggle CLI's single zip, holding one zip per folder."""
    def inner(split: str, names: list[str]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for n in names:
                zf.writestr(f"{split}/{n}.png", page_png(540, 258, value=200, seed=int(n)))
        return buf.getvalue()

    csv = io.BytesIO()
    with zipfile.ZipFile(csv, "w") as zf:
        zf.writestr("sampleSubmission.csv", "id,value\n1_1_1,1\n")
    return make_zip(folder / "denoising-dirty-documents.zip", {
        "train.zip": inner("train", ["101", "102"]), "train_cleaned.zip": inner("train_cleaned", ["101", "102"]),
        "test.zip": inner("test", ["1"]), "sampleSubmission.csv.zip": csv.getvalue()})


def funsd_zip(folder: Path, corrupt: bool = False) -> Path:
    files = {}
    for split, ids in (("training_data", ["82092117", "82200067_0069"]), ("testing_data", ["82250337_0338"])):
        for k, i in enumerate(ids):
            files[f"dataset/{split}/images/{i}.png"] = page_png(152, 200, seed=k)
            files[f"dataset/{split}/annotations/{i}.json"] = b'{"form": []}'
            files[f"__MACOSX/dataset/{split}/images/._{i}.png"] = b"\x00\x05\x16\x07 resource fork"
    if corrupt:
        files["dataset/training_data/images/0000971160.png"] = b"\x89PNG\r\n\x1a\n truncated"
    return make_zip(folder / "dataset.zip", files)


def smartdoc_photo(seed: int) -> bytes:
    """A light page on a dark desk, slightly rotated: what a phone capture looks like."""
    img = np.full((300, 400, 3), 60, np.uint8)
    quad = np.array([[110, 40], [300, 55], [290, 270], [95, 255]], np.int32) + seed
    cv2.fillPoly(img, [quad], (235, 235, 235))
    ok, buf = cv2.imencode(".jpg", img)
    return buf.tobytes()


def smartdoc_zip(folder: Path) -> Path:
    base = "Dataset SmartDoc-QA/Captured_Images"
    return make_zip(folder / "Dataset SmartDoc-QA.zip", {
        f"{base}/Samsung/Modern/D1_S_light1_blur0.jpg": smartdoc_photo(0),
        f"{base}/Nokia/Receipts/D27_M_light2_blur1.jpg": smartdoc_photo(3),
        "Dataset SmartDoc-QA/README.txt": b"SmartDoc-QA",
    })
