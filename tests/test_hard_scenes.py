"""Hard real-photo scenes in the `realistic` compositor: light desks, cards held by a hand,
torn receipts, close-ups, props with volume, sheets right under the page, squashed frames.
Each checks its effect on the image, the mask and the corners together."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from docsynth_compose.steps.geometric import Squash
from docsynth_compose.steps.props import Props
from docsynth_compose.steps.special_pages import ID1_ASPECT, make_card, make_receipt
from docsynth_compose.steps.surfaces import KINDS, desk_surface
from helpers import covered_by
from test_compositors import PLAIN, compose, page

from docsynth.geometry import mask_iou, quad_area, quad_mask
from docsynth.kinds import Sample

FRAME = {**PLAIN, "size": [240, 320]}


@pytest.mark.parametrize("kind", list(KINDS))
def test_desk_surfaces_are_light_low_saturation_and_textured(kind):
    img = desk_surface(np.random.default_rng(3), 200, 150, kind)
    assert img.shape == (150, 200, 3) and img.dtype == np.uint8
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    assert img.mean() > 110 and np.median(hsv[..., 1]) < 90  # light, muted
    assert img.std() > 1.0  # texture and light, not a flat fill
    # uneven light: the two halves along some axis differ, but not wildly
    assert abs(float(img[:, :100].mean()) - float(img[:, 100:].mean())) < 60


def test_light_desk_scene_keeps_labels_and_page_is_close_to_desk_brightness():
    close = 0
    for seed in range(12):
        s = compose("realistic", {**FRAME, "desk_p": 1.0}, seed, page(150, 200))
        assert "light_desk" in s.extra["cases"]
        # mask and corners agree up to rasterisation: a half-pixel band along the outline
        wrong = np.count_nonzero((s.mask > 0) != (quad_mask(s.corners, s.mask.shape) > 0))
        assert wrong <= 0.5 * cv2.arcLength(s.corners.astype(np.float32), True)
        desk, paper = s.image[s.mask == 0].mean(), s.image[s.mask > 0].mean()
        close += abs(desk - paper) < 40
    assert close >= 3  # low contrast happens often


def test_card_is_id1_with_rounded_corners_outside_the_mask():
    card = make_card(np.random.default_rng(0), width=428)
    h, w = card.image.shape[:2]
    assert abs(w / h - ID1_ASPECT) < 0.01 and card.corners is None
    assert card.mask[0, 0] == 0 and card.mask[-1, -1] == 0  # rounded: the image corner is not card
    assert card.mask[h // 2, 0] == 255 and card.mask[0, w // 2] == 255  # straight edges are
    s = compose("realistic", {**FRAME, "card_p": 1.0, "card_held_p": 0.0, "camera": {"area": [0.3, 0.5]}}, 1)
    assert "card" in s.extra["cases"]
    quad = quad_mask(s.corners, s.mask.shape) > 0
    assert not (s.mask[~quad]).any()  # never outside the straight-edge quad
    assert 0.97 < (s.mask > 0).sum() / quad.sum() < 1.0  # a little is cut at the rounded corners


def test_held_card_thumb_hides_a_corner_but_keeps_it_labelled():
    hit = 0
    for seed in range(8):
        s = compose("realistic", {**FRAME, "card_p": 1.0, "card_held_p": 1.0, "camera": {"area": [0.25, 0.4]}},
                    seed)
        assert {"card", "hand_hold"} <= set(s.extra["cases"])
        quad = quad_mask(s.corners, s.mask.shape) > 0
        missing = quad & (s.mask == 0)
        if "occluded" in s.flags:
            hit += 1
            # the hidden part sits at one corner: the missing pixels are near a labelled corner
            ys, xs = np.nonzero(missing)
            centre = np.array([xs.mean(), ys.mean()])
            size = np.sqrt(quad_area(s.corners))
            assert np.linalg.norm(s.corners - centre, axis=1).min() < 0.5 * size
            # and they are skin, not card
            b, g, r = s.image[missing].astype(int).T
            assert np.median(r) > np.median(b)
    assert hit >= 5


def test_receipt_is_long_torn_and_cornered_on_its_body():
    rec = make_receipt(np.random.default_rng(4), width=200)
    body = rec.corners
    length, width = np.ptp(body[:, 1]), np.ptp(body[:, 0])
    assert 2.0 <= length / width <= 4.5
    top = int(body[0, 1])
    # a torn top edge: the mask row at the straight edge is neither all paper nor all empty
    row = rec.mask[top] > 0
    bottom = rec.mask[int(body[2, 1]) - 1] > 0
    assert (0.05 < row.mean() < 0.98) or (0.05 < bottom.mean() < 0.98)
    s = compose("realistic", {**FRAME, "receipt_p": 1.0, "camera": {"area": [0.2, 0.4]}}, 2)
    assert "receipt" in s.extra["cases"]
    quad = quad_mask(s.corners, s.mask.shape) > 0
    assert mask_iou(s.mask, quad) > 0.85  # the body matches; the tear wanders around its edge


def test_close_ups_cover_much_of_the_frame():
    areas = [quad_area(compose("realistic", {**FRAME, "close_p": 1.0}, seed, page(150, 200)).corners) / (240 * 320)
             for seed in range(8)]
    assert min(areas) > 0.25 and np.median(areas) > 0.4


def test_underlay_sheets_peek_out_by_a_few_percent_and_are_not_page():
    for seed in range(6):
        s = compose("realistic", {**FRAME, "underlay_p": 1.0, "camera": {"area": [0.3, 0.5]}}, seed, page(150, 200))
        assert "underlay" in s.extra["cases"]
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.99  # only the top sheet
        size = np.sqrt(quad_area(s.corners))
        for inst in s.extra["instances"]:
            shift = np.abs(np.array(inst["corners"]) - s.corners).max()
            assert shift < 0.2 * size  # tight: a few px to a few percent (plus a small turn)


def _scene():
    corners = np.array([[40.0, 30.0], [160.0, 36.0], [150.0, 130.0], [45.0, 124.0]])
    img = np.full((160, 200, 3), 90, np.uint8)
    mask = quad_mask(corners, (160, 200))
    img[mask > 0] = 230
    return Sample(image=img, mask=mask, corners=corners, flags=set(), extra={})


def test_props_have_volume_and_only_solid_ones_cut_the_mask():
    cut = shaded = 0
    for seed in range(12):
        s = _scene()
        step = Props(count=[2, 3], on_page_p=1.0)
        params = step.get_params(np.random.default_rng(seed), s)
        out = step.run(s, np.random.default_rng(seed))
        assert np.array_equal(out.corners, s.corners)
        assert not (out.mask[s.mask == 0]).any()
        covered = covered_by(params["cutting"], s.mask.shape)
        assert np.array_equal((s.mask > 0) & (out.mask == 0), covered & (s.mask > 0))
        cut += ("occluded" in out.flags)
        for obj in params["objs"]:
            inside = obj.colour[obj.alpha > 0.9]
            if len(inside) > 50:
                shaded += inside.std() > 4  # shading and highlights, not a flat fill
    assert cut >= 4 and shaded >= 10


def test_a_keyboard_has_14_keys_along_its_long_side_and_5_rows_across():
    """Its key gaps run across the long side: a keyboard drawn with 15 thin rows along it looks
    like a ruled form, a document the scanner must not learn to ignore."""
    from docsynth_compose.steps.props import make_prop

    def dips(profile):  # darker than the keys a few pixels around: a gap
        dark = profile < 0.93 * cv2.dilate(profile[None], np.ones((1, 9), np.uint8))[0]
        return int((dark[1:] & ~dark[:-1]).sum())

    for seed in range(6):
        angle = np.random.default_rng(seed).uniform(0, 180)  # make_prop's first draw
        centre, s = np.array([300.0, 300.0]), 120.0
        obj = make_prop("keyboard", (600, 600), centre, s, np.random.default_rng(seed), np.array([1.0, 0.0]))[0]
        grey = obj.colour.mean(axis=2).astype(np.float32)
        c = (float(centre[0] - obj.x0), float(centre[1] - obj.y0))
        turn = cv2.getRotationMatrix2D(c, angle, 1.0)  # its long side onto the x axis, centred at (400, 400)
        turn[:, 2] += np.array([400.0, 400.0]) - c
        flat = cv2.warpAffine(grey, turn, (800, 800), flags=cv2.INTER_LINEAR)
        half_long, half_short = int(s * 2.6 * 0.45), int(s * 0.9 * 0.45)
        keys = flat[400 - half_short:400 + half_short, 400 - half_long:400 + half_long]
        assert (dips(keys.mean(axis=0)), dips(keys.mean(axis=1))) == (13, 4), seed


def test_squash_scales_image_mask_and_corners_together():
    s = _scene()
    out = Squash(square_p=1.0).run(s, np.random.default_rng(0))
    assert out.image.shape[:2] == (160, 160) and out.mask.shape == (160, 160)
    assert np.allclose(out.corners, s.corners * [160 / 200, 1.0])
    assert mask_iou(out.mask, quad_mask(out.corners, out.mask.shape)) > 0.97
    assert set(np.unique(out.mask)) <= {0, 255}


def test_squashed_frames_from_the_compositor():
    s = compose("realistic", {**FRAME, "squash_p": 1.0}, 5, page(150, 200))
    assert "squashed" in s.extra["cases"] and s.image.shape[:2] != (320, 240)
    assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.97


# -- v3 scenes: the failure kinds of held-out real photos ------------------------------------------


def test_full_frame_pages_fill_the_frame_in_its_orientation():
    for seed in range(6):
        s = compose("realistic", {**FRAME, "full_p": 1.0, "landscape_p": 0.5}, seed, page(150, 200))
        h, w = s.mask.shape
        assert "full_frame" in s.extra["cases"] and h > w  # a portrait page turns the frame portrait
        assert quad_area(s.corners) / (w * h) > 0.7
        # edges at the border or just past it: never more than 2.5% (+ rounding) outside
        assert (s.corners[:, 0] > -0.03 * w).all() and (s.corners[:, 0] < 1.03 * w).all()
        assert (s.corners[:, 1] > -0.03 * h).all() and (s.corners[:, 1] < 1.03 * h).all()
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.98


def test_a_larger_similar_sheet_under_the_page_shows_but_is_not_page():
    for seed in range(6):
        s = compose("realistic", {**FRAME, "larger_sheet_p": 1.0, "camera": {"area": [0.3, 0.5]}}, seed,
                    page(150, 200))
        assert "larger_sheet" in s.extra["cases"]
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.99  # only the page
        (under,) = s.extra["instances"]
        assert under["role"] == "under"
        ratio = quad_area(np.array(under["corners"])) / quad_area(s.corners)
        assert 1.03 < ratio < 1.18  # 2-8% larger on each side


def test_a_booklet_page_has_its_facing_page_at_the_gutter_and_only_the_page_is_labelled():
    seen_facing = 0
    for seed in range(8):
        s = compose("realistic", {**FRAME, "book_p": 1.0, "camera": {"area": [0.15, 0.3]}}, seed, page(150, 200))
        assert "book" in s.extra["cases"]
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.97  # curl: a little approximate
        facing = [i for i in s.extra["instances"] if i["role"] == "facing"]
        assert len(facing) == 1
        f = np.array(facing[0]["corners"])
        # the facing page shares the gutter: two of its corners lie next to two page corners
        d = np.linalg.norm(f[:, None] - s.corners[None], axis=2)
        size = np.sqrt(quad_area(s.corners))
        assert np.sort(d.min(axis=1))[1] < 0.15 * size  # (a gap, a shift and the curl move them a little)
        outside = quad_mask(f, s.mask.shape) > 0
        seen_facing += int(outside.sum() > 0)
        assert (s.mask[outside & (quad_mask(s.corners, s.mask.shape) == 0)] == 0).all()
    assert seen_facing >= 6  # mostly in the frame


def test_booklet_pages_that_bow_out_of_the_gutter_keep_the_spine_corners_and_bulge_beside_them():
    bulged = 0
    for seed in range(8):
        s = compose("realistic", {**FRAME, "book_p": 1.0, "book_bow_p": 1.0, "curl_p": 0.0, "fold_p": 0.0,
                                  "camera": {"area": [0.2, 0.35]}}, seed, page(150, 200))
        assert {"book", "gutter"} <= set(s.extra["cases"]) and "approximate" in s.flags
        quad = quad_mask(s.corners, s.mask.shape) > 0
        page_px = s.mask > 0
        # the page is still mostly its corner quad, but paper shows outside it (the bulge)
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.85
        bulged += int((page_px & ~quad).sum() > 0.004 * quad.sum())
        facing = [i for i in s.extra["instances"] if i["role"] == "facing"][0]
        assert facing["flags"] == ["approximate"]
        f = np.array(facing["corners"])
        d = np.linalg.norm(f[:, None] - s.corners[None], axis=2)
        assert np.sort(d.min(axis=1))[1] < 0.1 * np.sqrt(quad_area(s.corners))  # both bow from the spine
    assert bulged >= 4


def test_book_area_frames_a_book_page_large_and_the_facing_page_runs_out_of_the_frame():
    """With ``book_area`` the camera frames the book's page at that share of the frame, whatever
    other frame share was drawn, so a photo says which page is meant; without it, nothing moves."""
    shares, cut = [], 0
    for seed in range(8):
        options = {**FRAME, "book_p": 1.0, "book_area": [0.4, 0.6], "camera": {"area": [0.05, 0.1]}}
        s = compose("realistic", options, seed, page(150, 200))
        assert "book" in s.extra["cases"]
        h, w = s.mask.shape
        shares.append(quad_area(s.corners) / (w * h))
        (facing,) = [i for i in s.extra["instances"] if i["role"] == "facing"]
        f = np.array(facing["corners"])
        cut += int((f < 0).any() or (f[:, 0] > w).any() or (f[:, 1] > h).any())
        plain = compose("realistic", {**options, "book_area": None}, seed, page(150, 200))
        assert quad_area(plain.corners) / (w * h) < 0.2  # the camera's own area
    assert min(shares) > 0.3 and max(shares) < 0.7
    assert cut >= 4


def test_book_area_must_be_a_range_of_frame_shares(cli, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("generate:\n  compositor_options:\n    book_area: [0.9, 0.2]\n")
    r = cli("generate", "-c", str(config), "--count", "1", "--out", str(tmp_path / "out"))
    assert r.exit_code == 2 and "book_area" in r.stderr and not (tmp_path / "out").exists()


def test_the_gutter_warp_is_exactly_invertible_and_fixes_the_spine():
    from docsynth_compose.steps.paper import gutter_warp

    from docsynth.geometry import page_corners
    rng = np.random.default_rng(4)
    for side in range(4):
        warp = gutter_warp(rng, 60, 80, side, magnify=(0.1, 0.1))
        pts = rng.uniform([0, 0], [60, 80], size=(200, 2))
        moved = warp.forward(pts)
        u, v, bend = warp.inverse(moved[:, 0], moved[:, 1])
        assert np.stack([u, v], axis=1) == pytest.approx(pts, abs=1e-6)
        corners = page_corners(60, 80)
        spine = [[0, 3], [1, 2], [0, 1], [3, 2]][side]
        assert warp.forward(corners[spine]) == pytest.approx(corners[spine], abs=1e-9)
        # the paper rises out of the gutter: steepest at the spine, and the far edge lifted
        assert bend.max() > 0.2 and not np.allclose(warp.forward(corners), corners)


def test_notes_stick_out_of_the_page_edge_and_cut_only_the_page_they_cover():
    out_of_page = 0
    for seed in range(10):
        s = _scene()
        step = Props(count=[2, 3], on_page_p=1.0, kinds=["note"])
        params = step.get_params(np.random.default_rng(seed), s)
        out = step.run(s, np.random.default_rng(seed))
        assert np.array_equal(out.corners, s.corners) and not (out.mask[s.mask == 0]).any()
        covered = covered_by(params["cutting"], s.mask.shape)
        assert len(params["cutting"]) == len(params["objs"])  # paper notes are solid
        assert np.array_equal((s.mask > 0) & (out.mask == 0), covered & (s.mask > 0))
        out_of_page += int((covered & (s.mask == 0)).sum() > 20)
        hsv = cv2.cvtColor(out.image, cv2.COLOR_BGR2HSV)
        assert hsv[..., 1][covered].mean() > 60  # coloured paper, not grey
    assert out_of_page >= 8


def test_a_blank_page_is_still_the_labelled_page():
    for seed in range(6):
        s = compose("realistic", {**FRAME, "blank_p": 1.0, "curl_p": 0.0, "fold_p": 0.0,
                                  "camera": {"area": [0.2, 0.4]}}, seed, page(150, 200))
        assert "blank" in s.extra["cases"]
        inside = quad_mask(s.corners, s.mask.shape) > 0
        assert mask_iou(s.mask, quad_mask(s.corners, s.mask.shape)) >= 0.97
        core = cv2.erode(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        grey = cv2.cvtColor(s.image, cv2.COLOR_BGR2GRAY)[core & (s.mask > 0)]
        # no print: the dark dots of the test page are gone (only paper grain, light and noise)
        assert np.percentile(grey, 1) > 0.6 * np.median(grey)


def _cutout_dir(tmp_path):
    folder = tmp_path / "cutouts" / "images"
    folder.mkdir(parents=True)
    for k, colour in enumerate([(0, 40, 230), (30, 200, 60)]):
        img = np.zeros((64, 64, 4), np.uint8)
        cv2.circle(img, (32, 32), 28, (*colour, 255), -1)  # a round, saturated object
        cv2.circle(img, (24, 24), 6, (255, 255, 255, 255), -1)
        cv2.imwrite(str(folder / f"{k}.png"), img)
    return str(folder.parent)


def test_cutouts_on_the_page_cut_the_mask_and_beside_it_leave_it(tmp_path):
    from docsynth_compose.steps.cutouts import Cutouts

    folder = _cutout_dir(tmp_path)
    scene = _scene()
    on = Cutouts(p=1.0, dir=folder, on_page_p=1.0, beside_p=0.0, count=[2, 2], size=[0.3, 0.4])
    out = on(scene, np.random.default_rng(0))
    assert "cutouts" in out.extra["cases"] and "occluded" in out.flags
    assert cv2.countNonZero(out.mask) < cv2.countNonZero(scene.mask)
    assert np.array_equal(out.corners, scene.corners)  # the page does not move
    beside = Cutouts(p=1.0, dir=folder, on_page_p=0.0, beside_p=1.0, count=[2, 2])
    out = beside(scene, np.random.default_rng(1))
    assert np.array_equal(out.mask, scene.mask) and "occluded" not in out.flags
    assert (np.abs(out.image.astype(int) - scene.image).sum(axis=2) > 30).sum() > 50  # drawn, off the page
    assert (out.image[scene.mask > 0] == scene.image[scene.mask > 0]).all()
    # determinism: the same seed draws the same objects
    again = beside(scene, np.random.default_rng(1))
    assert np.array_equal(again.image, out.image)


def test_cutouts_without_a_folder_draw_nothing_and_say_so(tmp_path, capsys):
    from docsynth_compose.steps.cutouts import Cutouts

    scene = _scene()
    out = Cutouts(p=1.0, dir=str(tmp_path / "missing"))(scene, np.random.default_rng(0))
    assert np.array_equal(out.image, scene.image)
    assert "no cut-outs" in capsys.readouterr().err


def test_the_compositor_pastes_cutouts_from_its_option(tmp_path):
    folder = _cutout_dir(tmp_path)
    s = compose("realistic", {**FRAME, "cutouts": folder, "cutouts_p": 1.0}, 3, page(150, 200))
    assert "cutouts" in s.extra["cases"]
    plain = compose("realistic", FRAME, 3, page(150, 200))
    assert "cutouts" not in plain.extra["cases"]
