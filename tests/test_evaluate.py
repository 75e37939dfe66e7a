"""SmartDoc scoring on hand-made cases, mask IoU, ground-truth files, the evaluate command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scan_fixtures import write_photo_folder

from docsynth.errors import DocsynthError
from docsynth.evaluate.smartdoc import evaluate_predictions, subset_of
from docsynth.formats.corners import read_table
from docsynth.geometry import apply_homography, is_simple_quad, polygon_area
from docsynth.scoring import clip_polygon, image_mask_iou, jaccard_smartdoc

SQUARE = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], dtype=float)


def test_identical_quad_scores_one():
    quad = np.array([[12.5, 20.0], [300.2, 35.1], [280.0, 410.7], [5.0, 380.0]])
    assert jaccard_smartdoc(quad, quad) == pytest.approx(1.0)
    # the same polygon listed from another corner or in the other direction is the same polygon
    assert jaccard_smartdoc(quad, np.roll(quad, 1, axis=0)) == pytest.approx(1.0)
    assert jaccard_smartdoc(quad, quad[::-1]) == pytest.approx(1.0)


def test_known_overlaps_by_hand():
    # half-overlapping squares: intersection 50x100, union 150x100
    shifted = SQUARE + (50, 0)
    assert jaccard_smartdoc(SQUARE, shifted) == pytest.approx(5000 / 15000)
    # the left half of a 200x100 page: 1/2
    page = np.array([[0, 0], [200, 0], [200, 100], [0, 100]], float)
    assert jaccard_smartdoc(page, np.array([[0, 0], [100, 0], [100, 100], [0, 100]], float)) == pytest.approx(0.5)
    # a prediction twice as large in each direction contains the page: 1/4
    assert jaccard_smartdoc(SQUARE, SQUARE * 2) == pytest.approx(0.25)
    # a corner cut off: the triangle (100,50)-(100,100)-(0,100), area 2500, is missing
    cut = np.array([[0, 0], [100, 0], [100, 50], [0, 100]], float)
    assert jaccard_smartdoc(SQUARE, cut) == pytest.approx(0.75)
    # disjoint: 0
    assert jaccard_smartdoc(SQUARE, SQUARE + (300, 0)) == 0.0


def test_non_convex_prediction_by_hand():
    # the triangle (0,0),(100,0),(100,100) (area 5000) with a dent to (60,40): minus the triangle
    # (0,0),(100,100),(60,40), area |100*40 - 100*60| / 2 = 1000, leaves 4000, all inside the page
    dart = np.array([[0, 0], [100, 0], [100, 100], [60, 40]], float)
    assert is_simple_quad(dart)
    assert abs(polygon_area(dart)) == pytest.approx(4000)
    assert jaccard_smartdoc(SQUARE, dart) == pytest.approx(0.4)


def test_score_lives_in_the_document_frame():
    """Under any homography applied to both quads (a photo of the same page), the score is the
    one computed on the flat page."""
    page = np.array([[0, 0], [210, 0], [210, 297], [0, 297]], float)
    pred = np.array([[10, -5], [215, 8], [200, 290], [-4, 300]], float)
    flat = jaccard_smartdoc(page, pred)
    h = np.array([[0.9, 0.2, 300], [-0.1, 1.1, 150], [4e-4, -3e-4, 1.0]])
    photo_gt, photo_pred = apply_homography(h, page), apply_homography(h, pred)
    assert jaccard_smartdoc(photo_gt, photo_pred) == pytest.approx(flat, abs=1e-6)
    assert 0.8 < flat < 1.0


def test_missing_and_self_intersecting_score_zero():
    assert jaccard_smartdoc(SQUARE, None) == 0.0
    bow_tie = SQUARE[[0, 2, 1, 3]]  # TL, BR, TR, BL: edges cross
    assert not is_simple_quad(bow_tie)
    assert jaccard_smartdoc(SQUARE, bow_tie) == 0.0
    assert jaccard_smartdoc(SQUARE, np.full((4, 2), np.nan)) == 0.0
    assert jaccard_smartdoc(SQUARE, np.zeros((4, 2))) == 0.0  # degenerate
    with pytest.raises(ValueError):
        jaccard_smartdoc(bow_tie, SQUARE)


def test_prediction_beyond_the_horizon_scores_zero():
    # the true page seen in strong perspective: its horizon is a line in the photo; a predicted
    # corner on the far side of it maps behind the camera in the page frame
    gt = np.array([[100, 100], [200, 100], [260, 200], [40, 200]], float)
    far = np.array([[100, 100], [200, 100], [200, -1000], [100, -1000]], float)
    assert jaccard_smartdoc(gt, far) == 0.0


def test_clip_polygon_is_the_intersection():
    clipped = clip_polygon(SQUARE + (50, 50), SQUARE)
    assert abs(polygon_area(clipped)) == pytest.approx(2500)


def test_evaluate_predictions_means_subsets_and_mask_iou():
    gt = SQUARE + 10
    records = [
        {"image": "smartdoc_a.jpg", "gt": gt, "pred": gt, "size": (120, 120)},
        {"image": "smartdoc_b.jpg", "gt": gt, "pred": None, "size": (120, 120), "reason": "no page"},
        {"image": "phone_c.jpg", "gt": gt, "pred": gt + (50, 0), "size": (120, 120)},
    ]
    r = evaluate_predictions(records)
    assert r["mean_jaccard"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert r["subsets"]["smartdoc"]["mean_jaccard"] == pytest.approx(0.5)
    assert r["subsets"]["phone"]["count"] == 1 and r["found"] == 2
    assert [row["subset"] for row in r["images"]] == ["smartdoc", "smartdoc", "phone"]
    assert r["images"][0]["mask_iou"] == pytest.approx(1.0)
    assert r["images"][1]["mask_iou"] == 0.0
    # image coordinates: the shifted quad (x 60..160) is clipped by the photo border at 120, so
    # intersection 50 x 100, union (100 + 60 - 50) x 100: 5/11 (rasterised, so within a pixel)
    assert r["images"][2]["mask_iou"] == pytest.approx(5 / 11, abs=0.02)
    # a predicted mask takes precedence over the quad
    mask = np.zeros((120, 120), np.uint8)
    assert image_mask_iou(gt, (120, 120), gt, mask) == 0.0
    assert subset_of("alexliyang_note.jpg") == "alexliyang" and subset_of("plain.jpg") == "other"


def test_corners_csv_errors_name_the_line(tmp_path):
    bad = tmp_path / "corners.csv"
    bad.write_text("img,a,b\n")
    with pytest.raises(DocsynthError, match=r"corners.csv:1: header"):
        read_table(bad)
    bad.write_text("image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y\nx.jpg,1,2,3,4,5,6,7,oops\n")
    with pytest.raises(DocsynthError, match=r"corners.csv:2: corner values must be numbers"):
        read_table(bad)
    bad.write_text("image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y\nx.jpg,0,0,10,10,10,0,0,10\n")
    with pytest.raises(DocsynthError, match=r"corners.csv:2: .*TL, TR, BR, BL"):
        read_table(bad)


@pytest.mark.slow
def test_evaluate_classical_baseline_only_without_packaged_model(cli, tmp_path, monkeypatch):
    import docsynth.scan.scanner

    monkeypatch.setattr(docsynth.scan.scanner, "PACKAGED_MODEL", tmp_path / "absent.pt")
    write_photo_folder(tmp_path / "photos")
    res = cli("evaluate", str(tmp_path / "photos"), "--baseline", "classical", "--out", "rep", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert list(report["methods"]) == ["classical"]
    classical = report["methods"]["classical"]
    assert classical["count"] == 3 and classical["mean_jaccard"] > 0.9
    assert set(classical["subsets"]) == {"synth", "other"}
    # the report names the photo set it scored, so scores on another draw are not compared with it
    from docsynth.formats.corners import digest

    assert report["photos_digest"] == digest(tmp_path / "photos") and len(report["photos_digest"]) == 16
    for name in ("results.json", "per_image.csv", "worst.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert json.loads((tmp_path / "rep" / "results.json").read_text())["methods"]["classical"]["count"] == 3
    # an earlier report is not replaced without --force
    again = cli("evaluate", str(tmp_path / "photos"), "--baseline", "classical", "--out", "rep")
    assert again.exit_code == 2 and "--force" in again.stderr
    # without a baseline there is nothing to score: the missing model is the error
    none = cli("evaluate", str(tmp_path / "photos"), "--out", "rep2")
    assert none.exit_code == 2 and "no packaged model" in none.stderr


@pytest.mark.slow
def test_evaluate_packaged_scores_the_packaged_model_beside_a_checkpoint(cli, tmp_path, monkeypatch):
    import docsynth.scan.scanner

    write_photo_folder(tmp_path / "photos")
    model = str(docsynth.scan.scanner.packaged_onnx())  # any model file; here the packaged one's ONNX twin
    res = cli("evaluate", model, "photos", "--packaged", "--out", "rep", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert list(report["methods"]) == ["model:refine", "packaged:refine"]
    assert report["methods"]["packaged:refine"]["mean_jaccard"] == report["methods"]["model:refine"]["mean_jaccard"]
    assert report["packaged"]["model"] == model
    # from docsynth.yaml; without a checkpoint the model is the packaged one, scored once
    (tmp_path / "docsynth.yaml").write_text("evaluate:\n  packaged: true\n  out: rep2\n")
    once = json.loads(cli("evaluate", "photos", "--json").stdout)
    assert list(once["methods"]) == ["model:refine"] and "packaged" not in once
    off = json.loads(cli("evaluate", model, "photos", "--no-packaged", "--out", "rep3", "--json").stdout)
    assert list(off["methods"]) == ["model:refine"]
    (tmp_path / "docsynth.yaml").write_text("evaluate:\n  packaged: maybe\n")
    bad = cli("evaluate", model, "photos", "--out", "rep4")
    assert bad.exit_code == 2 and "docsynth.yaml:2: 'evaluate.packaged' is 'maybe', expected true/false" in bad.stderr
    # asked for, but not installed: one line before anything is scored
    (tmp_path / "docsynth.yaml").unlink()
    monkeypatch.setattr(docsynth.scan.scanner, "PACKAGED_MODEL", tmp_path / "absent.pt")
    missing = cli("evaluate", model, "photos", "--packaged", "--out", "rep5")
    assert missing.exit_code == 2 and "evaluate.packaged: no packaged model is installed" in missing.stderr
    assert not (tmp_path / "rep5" / "results.json").exists()


def test_evaluate_reports_a_missing_corners_csv(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    res = cli("evaluate", str(tmp_path / "empty"), "--baseline", "classical")
    assert res.exit_code == 2 and "corners.csv" in res.stderr and "Traceback" not in res.output


def test_calibration_counts_wrong_answers_among_confident_ones():
    from docsynth.evaluate.smartdoc import calibration

    quad = [[0, 0], [1, 0], [1, 1], [0, 1]]
    rows = [{"jaccard": j, "confidence": c, "corners": quad} for j, c in
            [(0.95, 0.9), (0.5, 0.8), (0.97, 0.2), (0.99, 0.6)]] + [{"jaccard": 0.0, "confidence": 0.0, "corners": None}]
    cal = calibration(rows)
    assert cal["confident"] == 3
    assert abs(cal["wrong_among_confident"] - 1 / 3) < 1e-9
    assert abs(cal["right_with_low_confidence"] - 1 / 3) < 1e-9


def test_corners_csv_has_one_reader_that_skips_the_no_page_rows_scan_writes(tmp_path):
    """scan writes a row with empty corner fields for a photo without a page; every reader
    (evaluate, training's real-photo metrics, export, stats) goes through formats.corners and
    skips that row instead of failing on it."""
    import cv2

    from docsynth.formats import corners as corners_csv
    from docsynth.train.realeval import RealEval

    quad = np.array([[10, 12], [90, 10], [92, 70], [8, 72]], np.float64)
    for name in ("page.jpg", "empty.jpg"):
        cv2.imwrite(str(tmp_path / name), np.full((80, 100, 3), 128, np.uint8))
    corners_csv.write(tmp_path / "corners.csv", [("page.jpg", quad), ("empty.jpg", None)])
    assert (tmp_path / "corners.csv").read_text().splitlines()[2] == "empty.jpg,,,,,,,,"
    assert list(read_table(tmp_path / "corners.csv")) == ["page.jpg"]
    items = corners_csv.read_folder(tmp_path)
    assert [p.name for p, _ in items] == ["page.jpg"] and np.allclose(items[0][1], quad)
    pytest.importorskip("torch")
    assert [name for name, *_ in RealEval(tmp_path).items] == ["page.jpg"]


def test_corners_csv_carries_an_optional_confidence_column(tmp_path):
    from docsynth.formats import corners as corners_csv

    quad = np.array([[1.0, 2.0], [30.0, 2.0], [30.0, 40.0], [1.0, 40.0]])
    path = corners_csv.write(tmp_path / "corners.csv", [("a.jpg", quad), ("b.jpg", None)], [0.25, 0.0])
    lines = path.read_text().splitlines()
    assert lines[0].endswith(",confidence") and lines[1].endswith(",0.2500") and lines[2] == "b.jpg" + "," * 9
    table = corners_csv.read_table(path)  # readers take the file with the column...
    assert list(table) == ["a.jpg"] and np.allclose(table["a.jpg"], quad)
    path.write_text("\n".join(lines[:1] + ["a.jpg,1,2,30,2,30,40,1,40"]) + "\n")  # ...and refuse a short row
    with pytest.raises(Exception, match=":2: expected 10 fields"):
        corners_csv.read_table(path)
