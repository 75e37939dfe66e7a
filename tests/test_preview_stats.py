"""`docsynth preview` and `docsynth stats` on generated datasets and on photos with corners.csv."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from docsynth.dataset.stats import image_stats, ks_distance


@pytest.fixture
def dataset(cli, tmp_path):
    (tmp_path / "docsynth.yaml").write_text("generate:\n  compositor_options:\n    size: [120, 160]\n")
    r = cli("generate", "--count", "6", "--out", "ds")
    assert r.exit_code == 0, r.stderr
    return tmp_path / "ds"


@pytest.fixture
def photos(tmp_path):
    """Three 'photos': a bright quad on a dark table, with a corners.csv in the folder root."""
    folder = tmp_path / "photos"
    (folder / "images").mkdir(parents=True)
    rows = ["image,tl_x,tl_y,tr_x,tr_y,br_x,br_y,bl_x,bl_y"]
    for k in range(3):
        img = np.full((300, 400, 3), 40, np.uint8)
        quad = np.array([[100, 50], [300, 60], [290, 250], [110, 240]], float) + k * 5
        cv2.fillPoly(img, [quad.astype(np.int32)], (210, 210, 210))
        cv2.imwrite(str(folder / "images" / f"p{k}.jpg"), img)
        rows.append(f"p{k}.jpg," + ",".join(f"{v:.1f}" for v in quad.reshape(-1)))
    (folder / "corners.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.slow
def test_preview_draws_outlines_and_numbered_corners(cli, dataset, tmp_path):
    r = cli("preview", str(dataset), "--out", "sheet.png", "--columns", "3", "--tile", "100", "--json")
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape[1] == info["width"] == 3 * 102 and info["samples"] == 6
    red = (sheet[..., 2] > 200) & (sheet[..., 1] < 80) & (sheet[..., 0] < 80)
    green = (sheet[..., 1] > 200) & (sheet[..., 2] < 90) & (sheet[..., 0] < 90)
    assert red.sum() > 50 and green.sum() > 50  # corner quads and mask outlines were drawn
    r = cli("preview", str(dataset), "--out", "sheet.png")
    assert r.exit_code != 0 and "--force" in r.stderr


def test_preview_of_real_photos(cli, photos, tmp_path):
    r = cli("preview", str(photos), "--out", "real.jpg", "--tile", "64")
    assert r.exit_code == 0, r.stderr
    assert cv2.imread(str(tmp_path / "real.jpg")) is not None


def test_image_stats_measure_what_they_say():
    img = np.full((200, 400, 3), 50, np.uint8)
    quad = np.array([[100.0, 50.0], [300.0, 50.0], [300.0, 150.0], [100.0, 150.0]])
    cv2.rectangle(img, (100, 50), (299, 149), (200, 200, 200), -1)
    s = image_stats(img, quad)
    assert s["page_area"] == pytest.approx(25.0)
    assert s["corner_angle"] == pytest.approx(0.0, abs=1e-6) and s["rotation"] == pytest.approx(0.0)
    assert s["page_brightness"] == pytest.approx(200, abs=1) and s["background_brightness"] == pytest.approx(50, abs=1)
    assert s["contrast"] == pytest.approx(150, abs=2) and s["saturation"] == pytest.approx(0)
    skew = image_stats(img, np.array([[100.0, 50.0], [300.0, 90.0], [300.0, 150.0], [100.0, 150.0]]))
    assert skew["corner_angle"] > 5 and skew["rotation"] > 5


def test_ks_distance():
    assert ks_distance([1, 2, 3], [1, 2, 3]) == 0
    assert ks_distance([1, 2, 3], [10, 11]) == 1
    assert 0 < ks_distance([1, 2, 3, 4], [3, 4, 5, 6]) < 1


@pytest.mark.slow
def test_stats_compares_dataset_with_real_photos(cli, dataset, photos, tmp_path):
    r = cli("stats", str(dataset), "--real", str(photos), "--plot", "hist.png", "--json")
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["real_counts"]["measured"] == 3
    area = result["stats"]["page_area"]
    from docsynth.geometry import quad_area

    quad = np.array([[100, 50], [300, 60], [290, 250], [110, 240]], float)
    assert area["real"]["median"] == pytest.approx(100 * quad_area(quad) / (300 * 400), rel=0.01)
    assert 0 <= area["ks"] <= 1 and area["dataset"]["n"] == result["counts"]["measured"]
    assert result["stats"]["background_brightness"]["real"]["median"] == pytest.approx(40, abs=3)
    assert cv2.imread(str(tmp_path / "hist.png")) is not None
    human = cli("stats", str(photos))
    assert human.exit_code == 0 and "page_area" in human.stdout


def test_stats_errors(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("stats", str(tmp_path / "empty"))
    assert r.exit_code != 0 and "corners.csv" in r.stderr and "Traceback" not in r.stderr
