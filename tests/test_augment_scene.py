"""Scene and paper steps: occluders, hands, distractors, clutter, curl, fold, camera model."""

from __future__ import annotations

import numpy as np
import pytest
from docsynth_compose.steps.camera_model import camera_quad
from docsynth_compose.steps.distractors import Distractors, table_edge
from docsynth_compose.steps.paper import random_curl, random_fold
from docsynth_compose.steps.paste import composite, page_rgba, warp_page
from docsynth_compose.steps.scene import Clutter, Hand, Occlusion
from helpers import covered_by

from docsynth.geometry import apply_homography, mask_iou, page_corners, quad_area, quad_mask
from docsynth.kinds import Page, Sample

H, W = 96, 128
CORNERS = np.array([[30.3, 20.2], [98.4, 24.3], [94.2, 80.4], [34.3, 76.3]])


def scene() -> Sample:
    image = np.empty((H, W, 3), np.uint8)
    image[:] = (60, 90, 120)
    mask = quad_mask(CORNERS, (H, W))
    image[mask > 0] = 235
    return Sample(image=image, mask=mask, corners=CORNERS.copy(), flags=set(), extra={})


@pytest.mark.parametrize("step", [Occlusion(count=[2, 2]), Hand(fingers=[3, 4])])
def test_occluders_hide_page_pixels_but_keep_corners(step):
    for seed in range(5):
        s = scene()
        out = step.run(s, np.random.default_rng(seed))
        visible, before = (out.mask > 0).sum(), (s.mask > 0).sum()
        if visible < before:
            break
    assert visible < before
    assert "occluded" in out.flags and step.case in out.extra["cases"]
    assert np.array_equal(out.corners, s.corners)
    assert (out.mask[s.mask == 0] == 0).all()  # the mask never grows
    # The pixels that left the mask are exactly the page pixels the objects cover.
    params = step.get_params(np.random.default_rng(seed), s)
    covered = covered_by(params["objs"], (H, W))
    assert np.array_equal((s.mask > 0) & (out.mask == 0), covered & (s.mask > 0))
    assert np.abs(out.image[covered].astype(int) - s.image[covered]).max() > 20


def test_hand_is_skin_toned_and_near_the_page_edge():
    s = scene()
    out = Hand(fingers=[4, 4], palm_p=0.0).run(s, np.random.default_rng(1))
    changed = np.abs(out.image.astype(int) - s.image).max(axis=2) > 30
    ys, xs = np.nonzero(changed)
    assert len(xs) > 30
    b, g, r = out.image[changed].astype(int).T
    assert np.median(r) > np.median(b)  # skin: red above blue
    # It reaches into the page from outside it.
    assert (s.mask[changed] > 0).any() and (s.mask[changed] == 0).any()


def test_distractor_lines_cross_the_page_and_the_frame_without_cutting_the_mask():
    hit = 0
    for seed in range(6):
        s = scene()
        out = Distractors(kinds=["cable"], count=[1, 1]).run(s, np.random.default_rng(seed))
        changed = np.abs(out.image.astype(int) - s.image).max(axis=2) > 40
        assert np.array_equal(out.mask, s.mask) and "occluded" not in out.flags
        inside = (changed & (s.mask > 0)).sum()
        outside = (changed & (s.mask == 0)).sum()
        # A cable is thin: it covers a small share of the page, on and off the page.
        hit += inside > 5 and outside > 5 and inside < 0.3 * (s.mask > 0).sum()
    assert hit >= 4
    assert "distractor" in out.extra["cases"]


def test_pens_touch_the_page_edge():
    s = scene()
    out = Distractors(kinds=["pen"], count=[1, 1]).run(s, np.random.default_rng(4))
    changed = np.abs(out.image.astype(int) - s.image).max(axis=2) > 40
    assert (changed & (s.mask > 0)).any() and (changed & (s.mask == 0)).any()


def test_table_edge_stays_behind_the_page():
    s = scene()
    edge = {"angle": np.pi / 2, "x": W / 2, "y": H / 2, "bevel": 0.5, "gain": 0.4, "tint": [1, 1, 1]}
    out = table_edge(s.image, s.mask, edge)
    assert np.array_equal(out[s.mask > 0], s.image[s.mask > 0])  # page untouched
    left, right = out[H // 2, 2].astype(int), out[H // 2, W - 3].astype(int)
    assert abs(int(left[0]) - 60) > 20 or abs(int(right[0]) - 60) > 20  # one side is another surface


def test_clutter_never_covers_the_page():
    s = scene()
    out = Clutter(count=[6, 6], size=[0.3, 0.5]).run(s, np.random.default_rng(0))
    assert np.array_equal(out.image[s.mask > 0], s.image[s.mask > 0])
    assert (np.abs(out.image.astype(int) - s.image).max(axis=2) > 30).sum() > 100
    assert np.array_equal(out.mask, s.mask) and "clutter" in out.extra["cases"]


# ---------------------------------------------------------------------------------------------
# paper: curl and fold


def page(w=60, h=80) -> Page:
    rng = np.random.default_rng(0)
    img = np.full((h, w, 3), 230, np.uint8)
    img[rng.random((h, w)) < 0.1] = 30
    return Page(image=img, mask=np.full((h, w), 255, np.uint8), corners=None)


def test_curl_and_fold_inverse_undoes_forward():
    rng = np.random.default_rng(2)
    for warp in (random_curl(rng, 60, 80), random_fold(rng, 60, 80)):
        pts = rng.uniform([0, 0], [60, 80], size=(50, 2))
        moved = warp.forward(pts)
        u, v, _ = warp.inverse(moved[:, 0], moved[:, 1])
        assert np.stack([u, v], axis=1) == pytest.approx(pts, abs=1e-6)


def test_curled_page_is_not_a_quad_and_is_shaded():
    p = page()
    quad = np.array([[20.0, 10.0], [100.0, 12.0], [98.0, 86.0], [22.0, 84.0]])
    h_edge = __import__("cv2").getPerspectiveTransform(page_corners(60, 80).astype(np.float32),
                                                       quad.astype(np.float32)).astype(np.float64)
    bg = np.zeros((H, W, 3), np.uint8)
    rng = np.random.default_rng(3)
    curl = random_curl(rng, 60, 80, length=(0.3, 0.3), angle=(1.2, 1.2))
    warped = warp_page(p, h_edge, W, H, curl)
    image, mask = composite(bg, warped, warp=curl)
    corners = apply_homography(h_edge, curl.forward(page_corners(60, 80)))
    flat_mask = quad_mask(quad, (H, W))
    assert (mask > 0).sum() < 0.97 * (flat_mask > 0).sum()  # the curled part is foreshortened
    assert mask_iou(mask, quad_mask(corners, (H, W))) < 0.995  # edges are no longer straight
    assert mask_iou(mask, quad_mask(corners, (H, W))) > 0.8
    # Shading: paper brightness varies where it bends (flat paper would be uniform 230).
    paper = image[(mask > 0) & (image[..., 0] > 100)][:, 0].astype(int)
    assert paper.max() - paper.min() > 15


def test_page_levels_are_cached_and_shrunk():
    p = page(200, 280)
    a = page_rgba(p, 2)
    assert a.shape[:2] == (140, 100) and a.shape[2] == 4
    assert page_rgba(p, 2) is a


def test_page_level_cache_is_bounded_in_bytes(monkeypatch):
    from docsynth_compose.steps import paste

    monkeypatch.setattr(paste, "_CACHE", [])
    monkeypatch.setattr(paste, "_CACHE_BYTES", 3 * 200 * 280 * 4)  # three pages' full-size levels
    pages = [page(200, 280) for _ in range(5)]
    first = page_rgba(pages[0], 0)
    for p in pages[1:]:
        page_rgba(p, 0)
    assert len(paste._CACHE) == 3  # the two oldest went
    assert page_rgba(pages[0], 0) is not first  # made again: same pixels, new array
    assert np.array_equal(page_rgba(pages[0], 0), first)
    big = page(400, 560)  # larger than the bound on its own: kept while it is the newest
    assert page_rgba(big, 0) is page_rgba(big, 0)


# ---------------------------------------------------------------------------------------------
# camera model


def test_camera_quad_area_share_and_shape():
    rng = np.random.default_rng(0)
    shares, angles = [], []
    for _ in range(200):
        q = camera_quad(rng, 210, 297, 480, 640, {"area": [0.1, 0.6]})
        assert (q >= 0).all() and (q[:, 0] <= 480).all() and (q[:, 1] <= 640).all()
        shares.append(quad_area(q) / (480 * 640))
        for i in range(4):
            a, b = q[i - 1] - q[i], q[(i + 1) % 4] - q[i]
            angles.append(np.degrees(np.arccos(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))))
    shares = np.array(shares)
    assert shares.min() > 0.08 and shares.max() < 0.62
    assert np.median(shares) < 0.3  # log-uniform: small pages are common, as in real photos
    angles = np.array(angles)
    assert np.percentile(np.abs(angles - 90), 90) < 25 and np.abs(angles - 90).max() > 3  # perspective


def test_camera_quad_truncation_crosses_a_border():
    rng = np.random.default_rng(1)
    for _ in range(20):
        q = camera_quad(rng, 210, 297, 480, 640, {}, truncate=True)
        outside = (q[:, 0] < 0) | (q[:, 0] > 480) | (q[:, 1] < 0) | (q[:, 1] > 640)
        assert outside.any() and not outside.all()
