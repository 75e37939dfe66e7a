"""End to end: a tiny model-contract model, saved as a checkpoint, through `scan` and `evaluate`."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
from scan_fixtures import PHOTO_QUADS, synthetic_photo, tiny_checkpoint, write_photo_folder

from docsynth.geometry import order_corners
from docsynth.scan.scanner import flatten, page_size


def read_csv_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_scan_writes_pages_and_corners(cli, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    truth = write_photo_folder(tmp_path / "photos")
    res = cli("scan", str(ckpt), str(tmp_path / "photos"), "--out", "out", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["photos"] == 3 and summary["pages"] == 3 and summary["post"] == "refine"
    rows = {r["image"]: r for r in read_csv_rows(tmp_path / "out" / "corners.csv")}
    assert set(rows) == set(truth)
    for name, corners in truth.items():
        found = np.array([float(rows[name][k]) for k in ("tl_x", "tl_y", "tr_x", "tr_y", "br_x", "br_y",
                                                           "bl_x", "bl_y")]).reshape(4, 2)
        # a 96 px model on ~300 px photos, refined on the photo's edges: within about a pixel
        assert np.abs(order_corners(found) - order_corners(corners)).max() < 1.5, name
        # the post-processor's confidence travels with the quad (the same as scan.json's)
        assert float(rows[name]["confidence"]) == pytest.approx(
            next(r["confidence"] for r in summary["results"] if r["image"].endswith(name)), abs=1e-4)
        page = cv2.imread(str(tmp_path / "out" / f"{name.rsplit('.', 1)[0]}.jpg"))
        assert page is not None and (page.shape[1], page.shape[0]) == page_size(found)
    assert (tmp_path / "out" / "scan.json").is_file()
    # an earlier scan is not replaced without --force
    again = cli("scan", str(ckpt), str(tmp_path / "photos"), "--out", "out")
    assert again.exit_code == 2 and "--force" in again.stderr
    assert cli("scan", str(ckpt), str(tmp_path / "photos"), "--out", "out", "--force").exit_code == 0


@pytest.mark.parametrize("post", ["reference", "robust"])
def test_scan_with_other_post_processors(cli, tmp_path, post):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    write_photo_folder(tmp_path / "photos")
    res = cli("scan", str(ckpt), str(tmp_path / "photos" / "synth_a.jpg"), "--out", "o", "--post", post, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["results"][0]["corners"] is not None


def test_scan_applies_exif_orientation(cli, tmp_path):
    """A phone photo stored sideways with EXIF orientation 6: corners come in upright pixels."""
    from PIL import Image

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    size, corners = PHOTO_QUADS["synth_a.jpg"]
    upright = synthetic_photo(np.array(corners), size, seed=1)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # what the camera wrote: 90 deg CCW
    image = Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    res = cli("scan", str(ckpt), str(tmp_path / "phone.jpg"), "--out", "o", "--json")
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)["results"][0]
    assert result["size"] == list(size)
    assert np.abs(order_corners(np.array(result["corners"])) - order_corners(np.array(corners))).max() < 1.5


@pytest.mark.slow
def test_evaluate_model_next_to_the_classical_baseline(cli, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    write_photo_folder(tmp_path / "photos")
    res = cli("evaluate", str(ckpt), str(tmp_path / "photos"), "--baseline", "classical", "--out", "rep", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert list(report["methods"]) == ["model:refine", "classical"]
    model = report["methods"]["model:refine"]
    assert model["mean_jaccard"] > 0.97 and model["mean_mask_iou"] > 0.9
    assert set(model["subsets"]) == {"synth", "other"} and model["subsets"]["synth"]["count"] == 2
    assert [r["image"] for r in model["images"]] == list(PHOTO_QUADS)
    assert (tmp_path / "rep" / "worst.png").is_file()
    human = cli("evaluate", str(ckpt), str(tmp_path / "photos"), "--baseline", "classical", "--out", "rep2")
    assert "model:refine: mean Jaccard" in human.stdout and "classical: mean Jaccard" in human.stdout
    assert "synth_a.jpg" in human.stdout


def test_packaged_model_is_the_default(cli, tmp_path, monkeypatch):
    import docsynth.scan.scanner

    write_photo_folder(tmp_path / "photos")
    monkeypatch.setattr(docsynth.scan.scanner, "PACKAGED_MODEL", tmp_path / "assets" / "docsynth-cpu.pt")
    missing = cli("scan", str(tmp_path / "photos"), "--out", "o")
    assert missing.exit_code == 2
    assert "no packaged model is installed" in missing.stderr and "pass a checkpoint" in missing.stderr
    assert "Traceback" not in missing.output
    tiny_checkpoint(tmp_path / "assets" / "docsynth-cpu.pt")
    res = cli("scan", str(tmp_path / "photos"), "--out", "o", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pages"] == 3


@pytest.mark.slow
def test_scan_with_an_onnx_model_matches_pytorch(cli, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    write_photo_folder(tmp_path / "photos")
    assert cli("export-model", str(ckpt), "--format", "onnx", "--out", "tiny.onnx").exit_code == 0
    a = json.loads(cli("scan", str(ckpt), str(tmp_path / "photos"), "--out", "pt", "--json").stdout)
    b = json.loads(cli("scan", "tiny.onnx", str(tmp_path / "photos"), "--out", "onnx", "--json").stdout)
    for ra, rb in zip(a["results"], b["results"], strict=True):
        assert np.abs(np.array(ra["corners"]) - np.array(rb["corners"])).max() < 0.05


@pytest.mark.slow
def test_a_broken_post_processor_costs_a_photo_not_the_run(cli, tmp_path):
    import types

    from docsynth import plugins
    from docsynth.hookspecs import hookimpl

    class Broken:
        name = "broken"
        description = "raises"

        def find_quad(self, page_prob, image, options, extra):
            raise RuntimeError("boom")

    @hookimpl
    def register_postprocessors(register):
        register(Broken())

    plugins.host().add(types.SimpleNamespace(register_postprocessors=register_postprocessors), "broken-post")
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    write_photo_folder(tmp_path / "photos")
    res = cli("scan", str(ckpt), str(tmp_path / "photos"), "--out", "o", "--post", "broken", "--json")
    assert res.exit_code == 0
    summary = json.loads(res.stdout)
    assert summary["pages"] == 0 and "boom" in summary["results"][0]["reason"]
    rows = read_csv_rows(tmp_path / "o" / "corners.csv")
    assert len(rows) == 3 and rows[0]["tl_x"] == ""


def test_scan_input_errors_are_one_line(cli, tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    for args, needle in ((["scan", str(ckpt), "nope.jpg", "--out", "o"], "nope.jpg: no such file"),
                         (["scan", str(ckpt), "--out", "o"], "pass photos"),
                         (["scan", "missing.pt", "x.jpg", "--out", "o"], "missing.pt: model file not found"),
                         (["scan", str(ckpt), str(ckpt.parent), "--out", "o", "--post", "nah"],
                          "unknown postprocessor 'nah'")):
        res = cli(*args)
        assert res.exit_code == 2 and needle in res.stderr, (args, res.output)
        assert "Traceback" not in res.output


def test_a_checkpoint_from_another_backbone_version_is_one_line(cli, tmp_path):
    import torch

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    data = torch.load(ckpt, weights_only=False)
    data["model"]["extra.weight"] = torch.zeros(3)  # a layer this version of the plugin lacks
    torch.save(data, tmp_path / "old.pt")
    write_photo_folder(tmp_path / "photos")
    for args in (["scan", str(tmp_path / "old.pt"), str(tmp_path / "photos"), "--out", "o"],
                 ["export-model", str(tmp_path / "old.pt"), "--out", "m.onnx"]):
        res = cli(*args)
        assert res.exit_code == 2 and "cannot rebuild its 'tiny' model" in res.stderr, res.output
        assert "Traceback" not in res.output


def test_flatten_maps_the_quad_onto_the_page():
    page = np.zeros((100, 60, 3), np.uint8)
    page[:50] = (0, 0, 255)  # top half red
    photo = np.zeros((200, 200, 3), np.uint8)
    photo[40:140, 70:130] = page  # the page, axis-aligned, at x 70..130, y 40..140
    corners = np.array([[70, 40], [130, 40], [130, 140], [70, 140]], float)
    assert page_size(corners) == (60, 100)
    flat = flatten(photo, corners)
    assert flat.shape == (100, 60, 3)
    assert np.abs(flat[5:45].astype(int) - (0, 0, 255)).max() < 3 and flat[55:95].max() < 3
    # the longer of the opposite sides decides the size: top 80, bottom 60; left and right
    # sqrt(10^2 + 90^2) = 90.55
    assert page_size(np.array([[0, 0], [80, 0], [70, 90], [10, 90]], float)) == (80, 91)
