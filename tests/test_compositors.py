"""The built-in compositors: labels consistent with pixels, hard cases present."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from docsynth import options as options_mod
from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.generate.labels import finish_labels
from docsynth.geometry import mask_iou, quad_area, quad_mask
from docsynth.kinds import Page

SMALL = {"size": [96, 128], "landscape_p": 0.0}
# Realistic with every hard case and every step switched off: homography only. (IoU checks use
# 240x320 frames: geometry.quad_mask is ~0.3 px generous along edges, which costs a tiny frame
# more than 1% IoU on its own.)
PLAIN = {**SMALL, "negative_p": 0, "truncate_p": 0, "small_p": 0, "curl_p": 0, "fold_p": 0, "stacked_p": 0,
         "multi_p": 0, "light_surface_p": 0, "desk_p": 0, "card_p": 0, "receipt_p": 0, "held_p": 0,
         "card_held_p": 0, "close_p": 0, "underlay_p": 0, "squash_p": 0, "full_p": 0, "larger_sheet_p": 0,
         "book_p": 0, "pipeline": []}


def page(w=60, h=80, seed=0) -> Page:
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 235, np.uint8)
    for y in range(6, h - 6, 5):  # lines of "text"
        x1 = int(rng.integers(w // 2, w - 4))
        img[y:y + 2, 5:x1] = 40
    return Page(image=img, mask=np.full((h, w), 255, np.uint8), corners=None)


def background(seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 120, (12, 16, 3), dtype=np.uint8)
    return cv2.resize(small, (160, 120), interpolation=cv2.INTER_CUBIC)


def compose(name, options, seed=0, pg=None):
    """One sample as the sample stream makes it: options built by the host, labels finished."""
    compositor = plugins.get("compositor", name)
    built = options_mod.build(compositor, options, "generate.compositor_options")
    return finish_labels(compositor.compose(pg or page(), background(), np.random.default_rng(seed), built))


def test_both_presets_are_registered_and_realistic_is_default():
    from docsynth.config import defaults
    from docsynth.schema import RunConfig

    assert {"reference", "realistic"} <= set(plugins.names("compositor"))
    assert defaults()["generate"]["compositor"] == "realistic" == RunConfig().generate.compositor


@pytest.mark.parametrize("seed", range(6))
def test_realistic_homography_only_mask_matches_corner_quad(seed):
    s = compose("realistic", {**PLAIN, "size": [240, 320], "camera": {"area": [0.2, 0.7]}}, seed,
                page(150, 200))
    assert s.image.shape == (320, 240, 3) and s.mask.shape == (320, 240)
    assert set(np.unique(s.mask)) <= {0, 255}
    assert not s.flags
    assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.99
    assert np.argmin(s.corners.sum(axis=1)) == 0


def test_realistic_full_size_iou_with_default_page_sizes():
    """At the default 480x640 output and the default page-area range (8-70%)."""
    ious = [mask_iou(s.mask, quad_mask(s.corners, s.mask.shape))
            for s in (compose("realistic", {**PLAIN, "size": [480, 640]}, seed, page(300, 420)) for seed in range(8))]
    assert min(ious) >= 0.99


@pytest.mark.parametrize("seed", range(6))
def test_reference_homography_only_mask_matches_corner_quad(seed):
    s = compose("reference", {"pipeline": [{"one_of": ["hflip", "vflip"], "p": 0.8}], "max_side": 320}, seed,
                page(150, 200))
    assert max(s.image.shape[:2]) <= 320
    assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.99


def test_reference_recipe_geometry():
    """Background 1.1-1.4x the page canvas; corners moved inwards by at most 0.55 of half the size."""
    for seed in range(10):
        s = compose("reference", {"pipeline": [], "max_side": None}, seed)
        h, w = s.mask.shape
        assert 1.1 * 80 - 1 <= h <= 1.4 * 80 + 1 and 1.1 * 60 - 1 <= w <= 1.4 * 60 + 1
        assert abs(h / 80 - w / 60) < 0.05
        side = np.linalg.norm(s.corners[1] - s.corners[0])
        assert 60 * (1 - 0.55) - 2 <= side <= 60 + 1


def test_reference_full_recipe_runs_and_flags_approximate_warps():
    flags = set()
    for seed in range(12):
        s = compose("reference", {"max_side": 128}, seed)
        flags |= s.flags
        assert s.corners is not None and set(np.unique(s.mask)) <= {0, 255}
        if not s.flags & {"approximate", "truncated"}:
            assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.97
    assert "approximate" in flags


def test_negatives_have_empty_masks():
    s = compose("realistic", {**PLAIN, "negative_p": 1.0})
    assert s.corners is None and "negative" in s.flags and not s.mask.any()


def test_truncated_pages_leave_the_frame_with_corners_recorded():
    for seed in range(4):
        s = compose("realistic", {**PLAIN, "truncate_p": 1.0, "size": [240, 320], "camera": {"area": [0.3, 0.6]}},
                    seed, page(150, 200))
        assert "truncated" in s.flags
        outside = (s.corners[:, 0] < 0) | (s.corners[:, 0] > 240) | (s.corners[:, 1] < 0) | (s.corners[:, 1] > 320)
        assert outside.any()
        # The mask is the visible part of the quad.
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.99


def test_stacked_sheets_under_the_page_are_not_page():
    found = 0
    for seed in range(8):
        s = compose("realistic", {**PLAIN, "stacked_p": 1.0, "size": [240, 320], "camera": {"area": [0.3, 0.5]}},
                    seed, page(150, 200))
        assert "stacked" in s.extra["cases"]
        under = s.extra["instances"]
        assert under and all(i["role"] == "under" for i in under)
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.99  # only the top sheet
        plain = compose("realistic", {**PLAIN, "size": [240, 320], "camera": {"area": [0.3, 0.5]}}, seed,
                        page(150, 200))
        for inst in under:
            lower = (quad_mask(np.array(inst["corners"]), s.mask.shape) > 0) & (s.mask == 0)
            if lower.sum() > 30:  # part of the lower sheet shows: paper there, mask says no page
                paperish = s.image[lower].mean() > plain.image[lower].mean() + 30
                found += bool(paperish)
                assert not s.mask[lower].any()
    assert found >= 3


def test_sheets_made_from_a_page_are_made_once_and_are_what_they_say():
    """A sheet under or beside the page is the page turned, mirrored or plain in its paper
    colour; each is made once per page (the same object again: its shrunk levels stay cached)
    and never changes the page."""
    from docsynth_compose.steps.sheets import SheetMemo, sheet_variant

    memo = SheetMemo()
    pg = page(60, 80)
    before = pg.image.copy()
    turned, mirrored, plain = (sheet_variant(pg, k) for k in range(3))
    assert np.array_equal(turned.image, pg.image[::-1, ::-1]) and np.array_equal(mirrored.image, pg.image[:, ::-1])
    colour = np.median(pg.image.reshape(-1, 3), axis=0).astype(np.uint8)
    assert plain.image.shape == pg.image.shape and (plain.image == colour).all()
    rng = np.random.default_rng(3)
    drawn = [memo.sheet(pg, rng) for _ in range(12)]
    assert len({id(sheet) for sheet in drawn}) == 3  # three kinds, each made once
    assert np.array_equal(pg.image, before)
    other = memo.sheet(page(60, 80, seed=5), np.random.default_rng(3))  # another page: its own sheets
    assert all(other is not sheet for sheet in drawn)


def test_several_documents_record_other_instances():
    for seed in range(10):
        s = compose("realistic", {**PLAIN, "multi_p": 1.0}, seed)
        if s.extra.get("instances"):
            break
    inst = s.extra["instances"][0]
    assert inst["role"] == "other" and np.array(inst["corners"]).shape == (4, 2)
    other = quad_mask(np.array(inst["corners"]), s.mask.shape)
    assert not (s.mask[other > 0]).any()
    json.dumps(s.extra)  # manifest-ready


def test_small_pages_in_clutter():
    for seed in range(5):
        s = compose("realistic", {**PLAIN, "small_p": 1.0, "small_area": [0.1, 0.2]}, seed)
        share = quad_area(s.corners) / (96 * 128)
        assert 0.09 < share < 0.21 and {"small", "clutter"} <= set(s.extra["cases"])


def test_light_surface_is_light():
    s = compose("realistic", {**PLAIN, "light_surface_p": 1.0})
    assert s.image[s.mask == 0].mean() > 150 and "light_surface" in s.extra["cases"]


def test_curl_and_fold_flag_approximate_and_keep_corners_on_the_page():
    for key, case in (("curl_p", "curl"), ("fold_p", "fold")):
        s = compose("realistic", {**PLAIN, key: 1.0}, 3)
        assert case in s.extra["cases"] and "approximate" in s.flags
        # Each corner is on the page outline: the mask is set within 2 px of it.
        ys, xs = np.nonzero(s.mask)
        pts = np.stack([xs + 0.5, ys + 0.5], axis=1)
        for c in s.corners:
            assert np.linalg.norm(pts - c, axis=1).min() < 2.5


def test_sizes_and_landscape():
    s = compose("realistic", {**PLAIN, "sizes": [[64, 36]]})
    assert s.image.shape[:2] == (36, 64)
    s = compose("realistic", {**PLAIN, "landscape_p": 1.0})
    assert s.image.shape[:2] == (96, 128)


def test_default_realistic_is_deterministic_and_pure():
    a = compose("realistic", SMALL, 11)
    b = compose("realistic", SMALL, 11)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.flags == b.flags and a.extra == b.extra
    c = compose("realistic", SMALL, 12)
    assert not np.array_equal(a.image, c.image)


def test_default_realistic_covers_many_cases():
    cases, flags = set(), set()
    for seed in range(40):
        s = compose("realistic", {**SMALL, "negative_p": 0.1}, seed)
        cases |= set(s.extra.get("cases", ()))
        flags |= s.flags
        if s.corners is not None:
            assert s.mask.any() or "truncated" in s.flags
    assert len(cases) >= 6 and {"negative", "approximate"} <= flags


def test_unknown_options_are_errors():
    with pytest.raises(DocsynthError, match="unknown key 'generate.compositor_options.sise'"):
        compose("realistic", {"sise": [1, 2]})
    with pytest.raises(DocsynthError, match="camera"):
        compose("realistic", {"camera": {"fov": 3}})
    with pytest.raises(DocsynthError, match="unknown key 'generate.compositor_options.scale'"):
        compose("reference", {"scale": 1})


def test_an_unknown_prop_kind_is_a_usage_error_before_any_work(cli):
    Path("docsynth.yaml").write_text("generate:\n  compositor_options:\n    steps: {props: {kinds: [mug, notee]}}\n")
    r = cli("generate", "--count", "2", "--out", "ds")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "kinds" in r.stderr and "notee" in r.stderr and "note" in r.stderr
    assert not Path("ds").exists()


@pytest.mark.slow
def test_generate_end_to_end_with_the_default_preset(cli):
    r = cli("generate", "--count", "6", "--out", "ds", "--json")
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(line) for line in Path("ds/manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["preset"] == "realistic" for r in rows)
    for row in rows:
        mask = cv2.imread(f"ds/{row['mask']}", cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (row["height"], row["width"])
        assert "cases" in row
        if row["corners"] is not None and not set(row["flags"]) & {"approximate", "occluded"}:
            assert mask_iou(mask, quad_mask(np.array(row["corners"]), mask.shape)) >= 0.99


def test_generate_with_step_overrides_from_yaml(cli, tmp_path):
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  compositor: reference\n  compositor_options:\n    max_side: 160\n"
        "    steps:\n      rotate: {p: 0.0}\n")
    r = cli("generate", "--count", "3", "--out", "ds2", "--json")
    assert r.exit_code == 0, r.stderr
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  compositor: reference\n  compositor_options:\n    steps:\n      spin: {p: 1}\n")
    r = cli("generate", "--count", "3", "--out", "ds3")
    assert r.exit_code != 0 and "unknown step" in r.stderr


@pytest.mark.slow
def test_realistic_output_does_not_depend_on_worker_count(cli, tmp_path):
    (tmp_path / "docsynth.yaml").write_text(
        "generate:\n  shard_size: 3\n  compositor_options:\n    size: [96, 128]\n")
    assert cli("generate", "--count", "8", "--out", "one", "--workers", "1").exit_code == 0
    assert cli("generate", "--count", "8", "--out", "two", "--workers", "2").exit_code == 0
    assert (tmp_path / "one" / "manifest.jsonl").read_text() == (tmp_path / "two" / "manifest.jsonl").read_text()
    for name in ("images", "masks"):
        for f in sorted((tmp_path / "one" / name).iterdir()):
            assert f.read_bytes() == (tmp_path / "two" / name / f.name).read_bytes()


@pytest.mark.parametrize("name", ["homography", "reference", "realistic"])
def test_every_builtin_compositor_finishes_labels_the_same_way(name):
    """Corners TL,TR,BR,BL as they appear (also after a half turn), truncation flagged, page share."""
    options = {"homography": {"size": [160, 200], "rotation": 180.0, "keep_inside": False},
               "reference": {}, "realistic": PLAIN}[name]
    from docsynth.geometry import is_inside, order_corners

    for seed in range(12):
        s = compose(name, options, seed)
        assert np.array_equal(s.corners, order_corners(s.corners)), seed
        h, w = s.mask.shape
        assert ("truncated" in s.flags) == (not is_inside(s.corners, w, h))
        assert s.extra["page_area"] == round(quad_area(s.corners) / (w * h), 4)
