"""The augmentation step contract, checked for every registered step (no hand-kept list): a
step is a pure function of the generator's state, returns a well-formed sample, leaves its
input alone and keeps the corners on the page it moved; a geometric step that forgets
``apply_to_keypoints`` fails instead of passing the corners through unchanged."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
from docsynth_compose.steps import STEPS, GeometricStep, Step

from docsynth.geometry import mask_iou, quad_mask
from docsynth.kinds import Sample

H, W = 120, 160
QUAD = np.array([[30.5, 22.5], [128.5, 30.5], [122.5, 100.5], [36.5, 94.5]])


def page_sample() -> Sample:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 3)
    mask = quad_mask(QUAD, (H, W))
    image[mask > 0] = (image[mask > 0] // 4 + 180).astype(np.uint8)  # a light page on a darker table
    return Sample(image=image, mask=mask, corners=QUAD.copy(), flags=set(), extra={})


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_registered_step_keeps_the_contract(name):
    for seed in range(3):
        sample = page_sample()
        before = copy.deepcopy(sample)
        out = STEPS[name]().run(sample, np.random.default_rng(seed))
        again = STEPS[name]().run(page_sample(), np.random.default_rng(seed))
        assert np.array_equal(sample.image, before.image) and np.array_equal(sample.mask, before.mask)
        assert np.array_equal(sample.corners, before.corners), "the input sample was changed in place"
        assert np.array_equal(out.image, again.image) and np.array_equal(out.mask, again.mask)
        assert out.image.dtype == np.uint8 and out.image.ndim == 3 and out.image.shape[2] == 3
        assert out.mask.dtype == np.uint8 and out.mask.shape == out.image.shape[:2]
        assert set(np.unique(out.mask).tolist()) <= {0, 255}
        assert out.corners is not None and out.corners.shape == (4, 2) and np.isfinite(out.corners).all()
        if not {"approximate", "occluded", "truncated"} & out.flags:
            # the corners still outline the page the mask shows
            drawn = quad_mask(out.corners, out.mask.shape)
            assert mask_iou(drawn > 0, out.mask > 0) > 0.9, (name, seed)


def test_a_geometric_step_without_apply_to_keypoints_fails():
    class Shift(GeometricStep):  # moves the page, forgets the corners
        name = "shift-test"

        def apply(self, image, **params):
            return np.roll(image, 10, axis=1)

    with pytest.raises(NotImplementedError, match="apply_to_mask"):
        Shift().run(page_sample(), np.random.default_rng(0))

    with pytest.raises(TypeError, match="apply_to_keypoints"):
        class ShiftWithMask(Shift):  # noqa: F841  (defining it is what fails)
            def apply_to_mask(self, mask, **params):
                return np.roll(mask, 10, axis=1)

    class ShiftCorners(Shift):  # a keypoint method alone is no excuse either
        def apply_to_keypoints(self, corners, **params):
            return corners + (10, 0)

    with pytest.raises(NotImplementedError, match="apply_to_mask"):
        ShiftCorners().run(page_sample(), np.random.default_rng(0))


def test_a_step_that_changes_the_mask_must_say_what_happens_to_the_corners():
    with pytest.raises(TypeError, match="apply_to_keypoints"):
        class Crop(Step):  # noqa: F841  (defining it is what fails)
            name = "crop-test"

            def apply_to_mask(self, mask, **params):
                return mask[10:]
