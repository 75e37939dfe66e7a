"""Labels beyond the page (generate.labels): dense dewarp maps composed from the exact
geometry, checked against each other and against the pixels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from docsynth import plugins
from docsynth.errors import DocsynthError
from docsynth.generate.dewarp import dewarp_arrays, grid_points, label_files, lookup_uv, pixel_centres, ssim, unwarp
from docsynth.generate.stream import compose_one
from docsynth.kinds import Page

PLAIN = {"size": [240, 320], "landscape_p": 0.0, "negative_p": 0, "truncate_p": 0, "small_p": 0, "curl_p": 0,
         "fold_p": 0, "stacked_p": 0, "multi_p": 0, "light_surface_p": 0, "desk_p": 0, "card_p": 0,
         "receipt_p": 0, "held_p": 0, "card_held_p": 0, "close_p": 0, "underlay_p": 0, "squash_p": 0,
         "pipeline": []}
# every geometric step of the built-in compositors, each case once
CASES = [
    ("homography", {"size": [240, 320]}),
    ("realistic", {**PLAIN, "curl_p": 1.0}),
    ("realistic", {**PLAIN, "fold_p": 1.0}),
    ("realistic", {**PLAIN, "curl_p": 1.0, "squash_p": 1.0, "truncate_p": 1.0}),
    ("realistic", {**PLAIN, "book_p": 1.0, "book_bow_p": 1.0}),  # a page bowing out of the gutter
    ("reference", {"max_side": 300, "pipeline": ["hflip", "rotate"]}),
    ("reference", {"max_side": 300, "pipeline": ["vflip", {"step": "optical", "distort_limit": 0.2}]}),
    ("reference", {"max_side": 300, "pipeline": ["grid"]}),
    ("reference", {"max_side": 300, "pipeline": ["elastic", {"step": "rotate", "limit": 20}]}),
]


def text_page(w=150, h=200, seed=0) -> Page:
    """A page with structure everywhere (text-like strokes on a gradient), so SSIM can see shifts."""
    rng = np.random.default_rng(seed)
    img = np.dstack([np.tile(np.linspace(150, 250, w, dtype=np.uint8), (h, 1))] * 3).copy()
    for y in range(8, h - 8, 7):
        x = 6
        while x < w - 12:
            n = int(rng.integers(6, 20))
            img[y:y + 3, x:min(x + n, w - 6)] = int(rng.integers(10, 80))
            x += n + int(rng.integers(3, 7))
    return Page(image=img, mask=np.full((h, w), 255, np.uint8))


def background(seed=1, w=320, h=320) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(40, 120, (12, 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)


def compose(name, options, seed=0, page=None):
    return compose_one(name, page or text_page(seed=seed), background(seed), np.random.default_rng(seed), options)


@pytest.mark.parametrize("name,options", CASES)
def test_round_trip_and_backward_map_agree_with_uv(name, options):
    for seed in range(2):
        s = compose(name, options, seed)
        a = dewarp_arrays(s, s.geometry)
        uv = a["uv"].astype(np.float64)
        h, w = uv.shape[:2]
        on = ~np.isnan(uv[..., 0])
        assert on.sum() > 0.05 * h * w, "the page should be in the photo"
        assert a["visible"].dtype == np.uint8 and set(np.unique(a["visible"])) <= {0, 1}
        assert not (a["visible"].astype(bool) & ~on).any()
        # round trip: the forward map of uv(p) gives back p
        back = s.geometry.forward(uv[on] * s.geometry.size)
        assert np.abs(back - pixel_centres(w, h)[on.ravel()]).max() < 0.01
        # bm agrees with uv: uv read at bm[j, i] is the flat grid point
        photo = a["bm"].reshape(-1, 2).astype(np.float64) * (w, h)
        got = lookup_uv(uv, photo)
        inner = ~np.isnan(got[:, 0])
        assert inner.mean() > 0.3
        err = np.abs(got[inner] - grid_points(448, 448)[inner]).max(axis=1)
        assert np.percentile(err, 95) <= 0.004


@pytest.mark.parametrize("name,options", CASES[:3])
def test_uv_just_inside_each_corner_is_that_corner_of_the_flat_page(name, options):
    s = compose(name, {**options, "size": [480, 640]}, 3, text_page(300, 400))
    uv = dewarp_arrays(s, s.geometry)["uv"]
    centre = s.corners.mean(axis=0)
    for corner, expected in zip(s.corners, [(0, 0), (1, 0), (1, 1), (0, 1)], strict=False):
        inside = corner + (centre - corner) / np.linalg.norm(centre - corner) * 1.5  # the pixel just inside
        j, i = int(inside[0]), int(inside[1])
        assert np.abs(uv[i, j] - expected).max() <= 0.02, (corner, uv[i, j])


@pytest.mark.parametrize("name,options", [CASES[0], CASES[1], CASES[2]])
def test_unwarping_with_bm_beats_the_same_map_shifted_half_a_pixel(name, options):
    pg = text_page(300, 400, seed=5)
    s = compose(name, {**options, "size": [480, 640]} if name == "realistic" else options, 5, pg)
    a = dewarp_arrays(s, s.geometry, size=(400, 300))
    flat = pg.image
    h, w = s.image.shape[:2]
    true = ssim(unwarp(s.image, a["bm"]), flat)
    shifted = ssim(unwarp(s.image, a["bm"] + np.float32(0.5 / w)), flat)
    assert true > shifted and true > 0.5, (true, shifted)


def test_a_negative_has_empty_labels():
    s = compose("realistic", {**PLAIN, "negative_p": 1.0})
    files = label_files(s, ["dewarp", "text"], "realistic", {}, set())
    from docsynth.generate.dewarp import decode_npz

    a = decode_npz(files["dewarp"][1])
    assert np.isnan(a["uv"]).all() and not a["visible"].any() and np.isnan(a["bm"]).all()
    assert files["text"][1] == b""


def test_a_step_that_cannot_report_its_mapping_refuses_labels():
    from docsynth_compose.steps import GeometricStep, Pipeline

    class Shear(GeometricStep):  # moves the page, says nothing about how
        name = "shear_without_map"

        def apply(self, image, **params):
            return image

        def apply_to_mask(self, mask, **params):
            return mask

        def apply_to_keypoints(self, corners, **params):
            return corners

    s = compose("homography", {"size": [240, 320]})
    s = Pipeline([Shear()])(s, np.random.default_rng(0))
    with pytest.raises(DocsynthError, match="shear_without_map.*cannot report"):
        label_files(s, ["dewarp"], "homography", {}, set())


def test_a_compositor_without_geometry_is_refused_in_one_line():
    s = compose("homography", {"size": [240, 320]})
    s.geometry = None
    with pytest.raises(DocsynthError, match="does not report the page's geometry"):
        label_files(s, ["dewarp"], "mine", {}, set())


def test_generate_refuses_labels_from_a_compositor_without_geometry_before_any_work(tmp_path, monkeypatch):
    from docsynth import config
    from docsynth.generate.shards import generate

    homography = plugins.get("compositor", "homography")
    real = homography.compose

    def without_geometry(*args, **kwargs):
        sample = real(*args, **kwargs)
        sample.geometry = None
        return sample

    monkeypatch.setattr(homography, "compose", without_geometry)
    cfg = config.load(None, {"generate.compositor": "homography", "generate.labels": ["dewarp"],
                             "generate.out": str(tmp_path / "out"), "generate.count": 2})
    with pytest.raises(DocsynthError, match="does not report the page's geometry"):
        generate(cfg)
    assert not (tmp_path / "out").exists()
