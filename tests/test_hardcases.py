"""`docsynth hardcases`: a fixed, seeded synthetic benchmark, one subset per hard case."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from docsynth.evaluate.hardcases import CASES, write_hardcases
from docsynth.evaluate.smartdoc import subset_of
from docsynth.formats import corners as corners_csv
from docsynth.formats.corners import read_table


@pytest.mark.slow
def test_every_case_forces_its_difficulty_and_names_its_subset(tmp_path):
    out = tmp_path / "hc"
    summary = write_hardcases(out, count=2, cases=["handcard", "receipt", "greyscale"])
    assert summary["photos"] == 6
    rows = read_table(out / "corners.csv")
    assert sorted({subset_of(name) for name in rows}) == ["greyscale", "handcard", "receipt"]
    import cv2

    for name, corners in rows.items():
        assert np.asarray(corners).shape == (4, 2)
        image = cv2.imread(str(out / "images" / name))
        assert image is not None
        if name.startswith("greyscale"):
            assert np.array_equal(image[..., 0], image[..., 1]) or np.abs(image[..., 0].astype(int) - image[..., 2]).max() <= 3
    # case names never contain the subset separator
    assert all("_" not in case for case in CASES)


@pytest.mark.slow
def test_benchmark_is_deterministic_and_guarded(tmp_path, cli):
    a, b = tmp_path / "a", tmp_path / "b"
    made = write_hardcases(a, count=1, cases=["lightdesk", "underlay"])
    write_hardcases(b, count=1, cases=["lightdesk", "underlay"])
    for name in ("lightdesk_000.jpg", "underlay_000.jpg"):
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()
    assert (a / "corners.csv").read_text() == (b / "corners.csv").read_text()
    # the digest names the draw: the same for the same photos, recorded, another for one changed byte
    assert made["digest"] == corners_csv.digest(a) == corners_csv.digest(b)
    assert yaml.safe_load((a / "hardcases.yaml").read_text())["digest"] == made["digest"]
    photo = b / "images" / "underlay_000.jpg"
    photo.write_bytes(photo.read_bytes()[:-1] + b"\x00")
    assert corners_csv.digest(b) != made["digest"]
    # other settings into the same folder: refused in one line without --force
    r = cli("hardcases", str(a), "--count", "2", "--cases", "lightdesk")
    assert r.exit_code != 0 and "--force" in r.stderr
    r = cli("hardcases", str(a), "--count", "2", "--cases", "lightdesk", "--force", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["photos"] == 2
    r = cli("hardcases", str(tmp_path / "c"), "--cases", "nonsense")
    assert r.exit_code != 0 and "unknown case" in r.stderr


def test_cases_keep_their_positions_and_held_pages_are_held():
    from docsynth.evaluate.hardcases import INDEX_BASE, case_config
    from docsynth.generate.stream import SampleStream

    # A case's position picks its composites: new cases are appended, so published scores of
    # the older cases stay comparable.
    assert list(CASES)[:9] == ["lightdesk", "clutter", "underlay", "handcard", "receipt", "closeup", "squashed",
                               "greyscale", "heldpage"]
    cfg = case_config("heldpage", 2026)
    stream = SampleStream.from_config(cfg.generate, cfg.seed)
    for i in range(3):
        sample = stream.sample(INDEX_BASE + 8 * (1 << 24) + i)
        assert "hand_hold" in sample.extra["cases"] and "card" not in sample.extra["cases"]


def test_v3_cases_follow_the_first_nine_and_nopage_photos_measure_false_acceptance(tmp_path, cli):
    """The v3 cases are appended; ``nopage`` photos have empty corners, and `evaluate` reports
    the false refusal and false acceptance rates with them."""
    from docsynth.formats.corners import read_negatives

    assert list(CASES)[9:15] == ["fullframe", "largersheet", "onpage", "round", "booklet", "nopage"]
    out = tmp_path / "hc"
    r = cli("hardcases", str(out), "--count", "1", "--cases", "fullframe,nopage")
    assert r.exit_code == 0, r.stderr
    assert list(read_table(out / "corners.csv")) == ["fullframe_000.jpg"]
    assert [p.name for p in read_negatives(out)] == ["nopage_000.jpg"]
    r = cli("evaluate", str(out), "--json", "--no-packaged", "--out", str(tmp_path / "e1"))
    assert r.exit_code == 0, r.stderr
    ab = json.loads(r.stdout)["methods"]["model:refine"]["abstention"]
    assert ab["pages"] == 1 and ab["negatives"] == 1
    assert ab["false_refusal"] in (0.0, 1.0) and ab["false_acceptance"] in (0.0, 1.0)
    r = cli("evaluate", str(out), "--no-packaged", "--out", str(tmp_path / "e2"))
    assert r.exit_code == 0, r.stderr
    assert "false refusals" in r.stdout and "false acceptances" in r.stdout


def test_v32_cases_come_last_and_show_what_they_name():
    """Bowed open books, sticky notes across the page edges and blank pages are appended after
    ``nopage``: every earlier case keeps its photos."""
    from docsynth.evaluate.hardcases import INDEX_BASE, case_config
    from docsynth.generate.stream import SampleStream

    assert list(CASES)[15:] == ["bowedbook", "notes", "blank"]
    for case, expect in (("bowedbook", "book"), ("notes", "props"), ("blank", "blank")):
        cfg = case_config(case, 2026)
        stream = SampleStream.from_config(cfg.generate, cfg.seed)
        sample = stream.sample(INDEX_BASE + list(CASES).index(case) * (1 << 24))
        assert expect in sample.extra["cases"], (case, sample.extra["cases"])
        assert sample.corners is not None and sample.mask.any()
