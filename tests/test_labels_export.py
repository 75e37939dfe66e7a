"""Exporting the labels beyond the page: ICDAR 2015 words, Doc3D backward maps, UVDoc grids,
Parquet columns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from docsynth.formats.manifest import read_rows
from tests.helpers import generate_tiny


@pytest.fixture
def labelled(tmp_path):
    out = tmp_path / "data"
    generate_tiny(str(out), seed=5, count=4, compositor="homography", labels=["dewarp", "text"],
                  compositor_options={"size": [96, 128], "rotation": 10.0})
    return out


def test_icdar2015_lines_are_clockwise_quads_with_do_not_care(labelled, tmp_path, cli):
    from docsynth.dataset.export_labels import icdar_lines

    r = cli("export", str(labelled), "--format", "icdar2015", "--out", str(tmp_path / "icdar"), "--json")
    assert r.exit_code == 0, r.stderr
    rows = read_rows(labelled)
    total = 0
    for row in rows:
        records = [json.loads(x) for x in (labelled / row["text"]).read_text().splitlines()]
        lines = (tmp_path / "icdar" / "gt" / f"gt_{row['id']}.txt").read_text().splitlines()
        assert len(lines) == len(records)
        for line, rec in zip(lines, records, strict=False):
            *coords, text = line.split(",", 8)
            quad = np.array(coords, float).reshape(4, 2)
            x, y = quad[:, 0], quad[:, 1]
            assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) >= 0  # clockwise on screen
            assert text == ("###" if rec["truncated"] or rec["occluded"] else rec["text"])
            assert np.abs(quad - np.asarray(rec["photo_poly"])[:4]).max() <= 0.5
        total += len(lines)
        assert (tmp_path / "icdar" / "images" / f"{row['id']}.jpg").is_file()
    assert total > 0
    # a mirrored word (hflip) is reordered to stay clockwise
    mirrored = {"text": "ab", "truncated": False, "occluded": False,
                "photo_poly": [[10, 0], [0, 0], [0, 5], [10, 5]]}
    assert icdar_lines([mirrored]) == ["10,0,10,5,0,5,0,0,ab"]


def test_doc3d_and_uvdoc_maps_match_the_generated_bm(labelled, tmp_path, cli):
    import scipy.io

    assert cli("export", str(labelled), "--format", "doc3d", "--out", str(tmp_path / "d3")).exit_code == 0
    assert cli("export", str(labelled), "--format", "uvdoc", "--out", str(tmp_path / "uv")).exit_code == 0
    for row in read_rows(labelled):
        with np.load(labelled / row["dewarp"]) as npz:
            bm = npz["bm"]
        mat = scipy.io.loadmat(tmp_path / "d3" / "bm" / f"{row['id']}.mat")["bm"]
        assert mat.shape == (448, 448, 2) and np.allclose(mat, bm * 448, atol=1e-3)
        assert (tmp_path / "d3" / "img" / f"{row['id']}.png").is_file()
        grid = scipy.io.loadmat(tmp_path / "uv" / "grid2d" / f"{row['id']}.mat")["grid2d"]
        assert grid.shape == (89, 61, 2)
        # the grid's outer points are the page's corners in the photo (homography, small rotation)
        corners = np.asarray(row["corners"])
        got = np.array([grid[0, 0], grid[0, -1], grid[-1, -1], grid[-1, 0]])
        assert np.abs(got - corners).max() < 0.05


def test_label_exports_need_the_labels_and_say_how_in_one_line(tmp_path, cli):
    generate_tiny(str(tmp_path / "plain"), seed=1, count=2)
    r = cli("export", str(tmp_path / "plain"), "--format", "doc3d", "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "--labels dewarp" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_parquet_carries_the_labels(labelled, tmp_path, cli):
    pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'docsynth[parquet]')")
    import io

    import pyarrow.parquet as pq

    assert cli("export", str(labelled), "--format", "parquet", "--out", str(tmp_path / "d.parquet")).exit_code == 0
    table = pq.read_table(tmp_path / "d.parquet").to_pylist()
    for t, row in zip(table, read_rows(labelled), strict=False):
        assert t["text"] == (labelled / row["text"]).read_text()
        with np.load(io.BytesIO(t["dewarp"])) as npz:
            assert npz["uv"].shape == (row["height"], row["width"], 2)


def test_split_carries_the_labels_resized_with_the_images(labelled, tmp_path):
    from docsynth.dataset.split import split

    split(labelled, tmp_path / "split", seed=0, valid_fraction=0.5, max_size=64)
    rows = {r["id"]: r for r in read_rows(labelled)}
    moved = 0
    for side in ("train", "valid"):
        for row in read_rows(tmp_path / "split" / side):
            with np.load(tmp_path / "split" / side / row["dewarp"]) as npz:
                assert npz["uv"].shape == (row["height"], row["width"], 2)
                with np.load(labelled / rows[row["id"]]["dewarp"]) as orig:
                    assert np.array_equal(npz["bm"], orig["bm"], equal_nan=True)
            words = [json.loads(x) for x in (tmp_path / "split" / side / row["text"]).read_text().splitlines()]
            orig_words = [json.loads(x) for x in (labelled / rows[row["id"]]["text"]).read_text().splitlines()]
            f = row["width"] / rows[row["id"]]["width"]
            for w, o in zip(words, orig_words, strict=False):
                assert np.allclose(w["photo_poly"], np.asarray(o["photo_poly"]) * f, atol=0.01)
            moved += 1
    assert moved == 4


def test_preview_draws_words_and_the_bm_checkerboard(labelled, tmp_path, cli):
    import cv2

    plain = tmp_path / "plain.png"
    drawn = tmp_path / "drawn.png"
    assert cli("preview", str(labelled), "--out", str(plain), "--count", "2").exit_code == 0
    r = cli("preview", str(labelled), "--out", str(drawn), "--count", "2", "--labels", "words,bm")
    assert r.exit_code == 0, r.stderr
    a, b = cv2.imread(str(plain)), cv2.imread(str(drawn))
    assert a.shape == b.shape and (np.abs(a.astype(int) - b).max(axis=2) > 40).mean() > 0.01
    r = cli("preview", str(labelled), "--out", str(tmp_path / "x.png"), "--labels", "depth")
    assert r.exit_code == 2 and "words, bm" in r.stderr
