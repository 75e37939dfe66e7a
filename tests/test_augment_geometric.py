"""Geometric augmentation steps keep image, mask and corners in register."""

from __future__ import annotations

import numpy as np
import pytest
from docsynth_compose.steps import OneOf, Pipeline, build_pipeline
from docsynth_compose.steps.geometric import (
    ElasticTransform,
    GridDistortion,
    HorizontalFlip,
    OpticalDistortion,
    Rotate,
    VerticalFlip,
)

from docsynth.errors import DocsynthError
from docsynth.geometry import mask_iou, quad_mask
from docsynth.kinds import Sample

W, H = 64, 48
QUAD = np.array([[10.3, 8.2], [50.4, 12.3], [46.2, 40.4], [14.3, 36.3]])  # off the pixel grid: no raster ties


def quad_sample(corners=QUAD) -> Sample:
    """A textured image with a page quad; a red dot sits just inside the TL corner."""
    rng = np.random.default_rng(0)
    image = rng.integers(60, 180, (H, W, 3), dtype=np.uint8)  # leaves pure red for the marker
    mask = quad_mask(corners, (H, W))
    image[mask > 0] = (200, 200, 200)
    tl = np.floor(corners[0] + (corners.mean(axis=0) - corners[0]) * 0.15).astype(int)
    image[tl[1] - 1:tl[1] + 2, tl[0] - 1:tl[0] + 2] = (0, 0, 255)  # 3x3: survives interpolation
    return Sample(image=image, mask=mask, corners=corners.copy(), flags=set(), extra={})


def red_dot(image: np.ndarray) -> np.ndarray:
    red = image[..., 2].astype(int) - np.maximum(image[..., 0], image[..., 1])
    ys, xs = np.nonzero(red > 120)
    assert len(xs) >= 1
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def rng():
    return np.random.default_rng(1)


@pytest.mark.parametrize("step", [HorizontalFlip(), VerticalFlip()])
def test_flips_move_pixels_and_corners_together(step):
    s = quad_sample()
    out = step.run(s, rng())
    # The marked pixel is mirrored...
    dot = red_dot(out.image)
    before = red_dot(s.image)
    if isinstance(step, HorizontalFlip):
        assert dot == pytest.approx([W - before[0], before[1]])
    else:
        assert dot == pytest.approx([before[0], H - before[1]])
    # ...the mask matches the flipped corners exactly...
    assert mask_iou(out.mask, quad_mask(out.corners, (H, W))) > 0.99
    # ...and TL is still the top-left one, the quad still clockwise.
    assert np.argmin(out.corners.sum(axis=1)) == 0
    x, y = out.corners.T
    assert np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0  # clockwise with y down


def test_flip_moves_the_marked_corner_to_the_right_label():
    s = quad_sample()
    out = HorizontalFlip().run(s, rng())
    # The dot was near the page's TL; mirrored it sits near the new TR.
    dot = red_dot(out.image)
    nearest = int(np.argmin(np.linalg.norm(out.corners - dot, axis=1)))
    assert nearest == 1


def test_rotate_keeps_mask_and_corners_consistent():
    s = quad_sample()
    out = Rotate(limit=30, border="constant").run(s, np.random.default_rng(5))
    assert not np.array_equal(out.mask, s.mask)
    assert mask_iou(out.mask, quad_mask(out.corners, (H, W))) > 0.95  # nearest-neighbour mask on 64 px
    dot = red_dot(out.image)
    assert np.linalg.norm(out.corners - dot, axis=1).min() < 4


def test_rotate_rejects_bad_border():
    with pytest.raises(DocsynthError):
        Rotate(border="mirror").run(quad_sample(), rng())


@pytest.mark.parametrize("step", [OpticalDistortion(distort_limit=0.3), GridDistortion(distort_limit=0.5),
                                  ElasticTransform(alpha=6, sigma=20)])
def test_non_homography_warps_move_mask_and_flag_approximate(step):
    s = quad_sample()
    out = step.run(s, np.random.default_rng(3))
    assert "approximate" in out.flags
    assert not np.array_equal(out.mask, s.mask)
    # The estimated corners sit on the warped page's corners: each is within ~1.5 px of the
    # mask pixel that is extreme in that corner's direction.
    ys, xs = np.nonzero(out.mask)
    pts = np.stack([xs + 0.5, ys + 0.5], axis=1)
    centre = out.corners.mean(axis=0)
    for c in out.corners:
        d = c - centre
        extreme = pts[np.argmax(pts @ d)]
        assert np.linalg.norm(extreme - c) < 2.5
    # The image moved with the mask: the page's grey lies inside the warped mask.
    grey = np.all(np.abs(out.image.astype(int) - 200) < 20, axis=2)
    assert (out.mask[grey] > 0).mean() > 0.95


def test_grid_distortion_inverse_is_exact():
    step = GridDistortion(distort_limit=0.4)
    s = quad_sample()
    params = step.get_params(np.random.default_rng(9), s)
    moved = step.apply_to_keypoints(QUAD, **params)
    # Mapping the moved corners back through the backward map gives the originals.
    fx, fy = params["fx"], params["fy"]
    back_x = np.interp(moved[:, 0] - 0.5, np.arange(W), fx) + 0.5
    back_y = np.interp(moved[:, 1] - 0.5, np.arange(H), fy) + 0.5
    assert back_x == pytest.approx(QUAD[:, 0], abs=1e-6)
    assert back_y == pytest.approx(QUAD[:, 1], abs=1e-6)


def test_extra_instances_move_with_the_main_page():
    s = quad_sample()
    s.extra = {"instances": [{"corners": QUAD + 1, "role": "under"}]}
    out = HorizontalFlip().run(s, rng())
    assert np.asarray(out.extra["instances"][0]["corners"]) == pytest.approx(out.corners + [[-1, 1]] * 4)


def test_probability_and_one_of():
    s = quad_sample()
    never = HorizontalFlip(p=0.0)
    assert never(s, rng()) is s
    one = OneOf([HorizontalFlip(), VerticalFlip()], p=1.0)
    out = one(s, rng())
    assert not np.array_equal(out.image, s.image)


def test_pipeline_from_spec_with_overrides_and_errors():
    pipe = build_pipeline([{"one_of": ["hflip", "vflip"], "p": 0.8}, {"step": "rotate", "p": 0.5}],
                          {"rotate": {"p": 0.0, "limit": 10}})
    assert isinstance(pipe, Pipeline)
    assert pipe.steps[1].p == 0.0 and pipe.steps[1].limit == 10
    with pytest.raises(DocsynthError, match="unknown step"):
        build_pipeline(["no_such_step"])
    with pytest.raises(DocsynthError, match="unknown option"):
        build_pipeline([{"step": "rotate", "angle": 3}])
    with pytest.raises(DocsynthError, match="unknown step"):
        build_pipeline(["hflip"], {"nope": {}})
    with pytest.raises(DocsynthError, match="p must be"):
        build_pipeline([{"step": "hflip", "p": 2}])


def test_same_rng_same_result():
    pipe = build_pipeline(["rotate", "elastic", "hflip"])
    a = pipe(quad_sample(), np.random.default_rng(4))
    b = pipe(quad_sample(), np.random.default_rng(4))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.corners, b.corners)
