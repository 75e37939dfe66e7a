"""`docsynth export`: files load with their formats' own readers and match the dataset."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from docsynth.geometry import mask_iou
from docsynth.io import read_jsonl, read_mask


@pytest.fixture
def dataset(cli, tmp_path):
    """A small generated dataset with a negative, a truncated page and plain pages."""
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  compositor_options:\n    size: [120, 160]\n    negative_p: 0.3\n    truncate_p: 0.2\n")
    r = cli("generate", "--count", "10", "--per-document", "2", "--out", "ds", "--json")
    assert r.exit_code == 0, r.stderr
    rows = read_jsonl(tmp_path / "ds" / "manifest.jsonl")
    assert any(r["corners"] is None for r in rows) and any(r["corners"] is not None for r in rows)
    return tmp_path / "ds"


@pytest.mark.slow
def test_coco_loads_with_pycocotools(cli, dataset, tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    r = cli("export", str(dataset), "--format", "coco", "--out", "coco", "--json")
    assert r.exit_code == 0, r.stderr
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    rows = read_jsonl(dataset / "manifest.jsonl")
    assert len(coco.getImgIds()) == len(rows)
    cat = coco.loadCats(coco.getCatIds())[0]
    assert cat["name"] == "page" and cat["keypoints"] == ["tl", "tr", "br", "bl"]
    for img in coco.loadImgs(coco.getImgIds()):
        row = next(r for r in rows if img["file_name"].endswith(r["image"].split("/")[-1]))
        assert (tmp_path / "coco" / img["file_name"]).is_file()
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        if row["corners"] is None:
            assert anns == []
            continue
        assert len(anns) == 1
        ann = anns[0]
        # The segmentation decodes (pycocotools) to the dataset's mask.
        m = coco.annToMask(ann)
        truth = read_mask(dataset / row["mask"]) > 0
        assert mask_iou(m, truth) > 0.97
        assert abs(mask_utils.area(mask_utils.encode(np.asfortranarray(m))) - ann["area"]) / ann["area"] < 0.05
        kp = np.array(ann["keypoints"]).reshape(4, 3)
        assert kp[:, :2] == pytest.approx(np.array(row["corners"]), abs=0.01)
        inside = (kp[:, 0] >= 0) & (kp[:, 0] <= img["width"]) & (kp[:, 1] >= 0) & (kp[:, 1] <= img["height"])
        assert list(kp[:, 2]) == [2 if v else 1 for v in inside]


@pytest.mark.slow
def test_yolo_seg_labels_are_normalised_polygons(cli, dataset, tmp_path):
    r = cli("export", str(dataset), "--format", "yolo-seg", "--out", "yolo")
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "yolo"
    import yaml

    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"] == {0: "page"} and (out / data["train"]).is_dir()
    for row in read_jsonl(dataset / "manifest.jsonl"):
        label = (out / "labels" / f"{row['id']}.txt").read_text()
        assert (out / "images" / Path(row["image"]).name).is_file()
        if row["corners"] is None:
            assert label == ""
            continue
        cls, *coords = label.split()
        poly = np.array(coords, float).reshape(-1, 2)
        assert cls == "0" and (poly >= 0).all() and (poly <= 1).all()
        drawn = np.zeros((row["height"], row["width"]), np.uint8)
        cv2.fillPoly(drawn, [np.round(poly * (row["width"], row["height"]) - 0.5).astype(np.int32)], 255)
        assert mask_iou(drawn, read_mask(dataset / row["mask"])) > 0.9


@pytest.mark.slow
def test_reference_layout_names_and_three_channel_masks(cli, dataset, tmp_path):
    r = cli("export", str(dataset), "--format", "reference", "--out", "ref", "--json")
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    masks = sorted((tmp_path / "ref" / "masks").iterdir())
    images = sorted((tmp_path / "ref" / "images").iterdir())
    assert [m.stem for m in masks] == [i.stem for i in images]
    rows = read_jsonl(dataset / "manifest.jsonl")
    docs = list(dict.fromkeys((r["document"]["source"], r["document"]["id"]) for r in rows))
    assert result["documents"] == len(docs)
    assert masks[0].name == "0000_bck_00.png" and (tmp_path / "ref" / "masks" / "0000_bck_01.png").is_file()
    for m, row in zip(masks, rows, strict=True):
        mask = cv2.imread(str(m), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 3 and mask.shape[2] == 3 and set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask[..., 0], read_mask(dataset / row["mask"]))


@pytest.mark.slow
def test_export_refuses_to_overwrite_and_bad_input(cli, dataset, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    r = cli("export", str(dataset), "--format", "coco", "--out", "busy")
    assert r.exit_code != 0 and "--force" in r.stderr and (tmp_path / "busy" / "keep.txt").exists()
    r = cli("export", str(dataset), "--format", "voc", "--out", "x")
    assert r.exit_code == 2 and "is not one of" in r.stderr
    r = cli("export", str(tmp_path / "nope"), "--format", "coco", "--out", "x")
    assert r.exit_code != 0 and "Traceback" not in r.stderr
    r = cli("export", str(dataset), "--format", "coco", "--out", "busy", "--force")
    assert r.exit_code == 0 and not (tmp_path / "busy" / "keep.txt").exists()


# ---------------------------------------------------------------------------------------------
# Parquet: one row per sample, read back with Hugging Face datasets and pyarrow
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_parquet_loads_with_datasets_and_pyarrow(cli, dataset, tmp_path, monkeypatch):
    """Every value round-trips: the image and mask files' bytes, corners, flags, provenance;
    datasets loads it offline, with image and mask as its Image feature."""
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'docsynth[parquet]')")
    pytest.importorskip("datasets", reason="Hugging Face datasets not installed (the dev extra has it)")
    import pyarrow.parquet as pq

    r = cli("export", str(dataset), "--format", "parquet", "--out", "out/data.parquet", "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    path = tmp_path / "out" / "data.parquet"
    assert summary["images"] == 10 and summary["bytes"] == path.stat().st_size
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.parquet"]  # no temporary left
    rows = read_jsonl(dataset / "manifest.jsonl")

    table = pq.read_table(path).to_pylist()
    assert [t["id"] for t in table] == [r["id"] for r in rows]
    for t, row in zip(table, rows, strict=True):
        assert t["image"] == {"bytes": (dataset / row["image"]).read_bytes(), "path": row["image"]}
        assert t["mask"] == {"bytes": (dataset / row["mask"]).read_bytes(), "path": row["mask"]}
        assert t["corners"] == row["corners"] and t["flags"] == row["flags"] and t["cases"] == row["cases"]
        assert (t["width"], t["height"]) == (row["width"], row["height"])
        # source/id, or the id alone where it starts with the source (procedural-42-000000)
        source, ident = row["document"]["source"], row["document"]["id"]
        assert t["document"] == (ident if ident.startswith(source) else f"{source}/{ident}")
        assert t["background"] == row["background"] and t["seed"] == row["seed"] and t["preset"] == row["preset"]
        assert json.loads(t["provenance"]) == row

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) == len(rows)
    assert type(ds.features["image"]).__name__ == "Image" and type(ds.features["mask"]).__name__ == "Image"
    decoded = ds[1]
    truth = read_mask(dataset / rows[1]["mask"])
    assert np.array_equal(np.asarray(decoded["mask"].convert("L")), truth)  # PNG: lossless
    assert decoded["image"].size == (rows[1]["width"], rows[1]["height"])
    raw = ds.cast_column("image", datasets.Image(decode=False)).cast_column("mask", datasets.Image(decode=False))
    for got, row in zip(raw, rows, strict=True):
        assert got["image"]["bytes"] == (dataset / row["image"]).read_bytes()
        assert got["mask"]["bytes"] == (dataset / row["mask"]).read_bytes()
        assert got["corners"] == row["corners"] and got["flags"] == row["flags"]
        assert json.loads(got["provenance"]) == row


@pytest.mark.slow
def test_parquet_refuses_to_overwrite_and_reports_bad_input_in_one_line(cli, dataset, tmp_path, monkeypatch):
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'docsynth[parquet]')")
    assert cli("export", str(dataset), "--format", "parquet", "--out", "d.parquet").exit_code == 0
    before = (tmp_path / "d.parquet").read_bytes()
    r = cli("export", str(dataset), "--format", "parquet", "--out", "d.parquet")
    assert r.exit_code == 2 and "d.parquet: exists; pass --force" in r.stderr
    assert cli("export", str(dataset), "--format", "parquet", "--out", "d.parquet", "--force").exit_code == 0
    assert (tmp_path / "d.parquet").read_bytes() == before  # deterministic
    r = cli("export", str(dataset), "--format", "parquet", "--out", str(dataset / "manifest.jsonl"), "--force")
    assert r.exit_code == 2 and "would replace an input file" in r.stderr
    r = cli("export", str(dataset), "--format", "parquet", "--out", str(tmp_path))
    assert r.exit_code == 2 and "is a folder" in r.stderr

    # an image missing from the dataset: one line naming it, nothing written, no temporary left
    first = read_jsonl(dataset / "manifest.jsonl")[0]
    (dataset / first["image"]).unlink()
    r = cli("export", str(dataset), "--format", "parquet", "--out", "new.parquet")
    assert r.exit_code == 2 and first["image"].split("/")[-1] in r.stderr and "regenerate" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not list(tmp_path.glob("*new.parquet*"))

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    r = cli("export", str(dataset), "--format", "parquet", "--out", "x.parquet")
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "pip install 'docsynth[parquet]'" in r.stderr and not (tmp_path / "x.parquet").exists()
