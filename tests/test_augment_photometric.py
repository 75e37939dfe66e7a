"""Photometric steps (colour, camera, lighting): each changes the image the way it claims to and
never touches mask or corners."""

from __future__ import annotations

import numpy as np
import pytest
from docsynth_compose.steps import STEPS, GeometricStep
from docsynth_compose.steps.base import vars_up_to_step
from docsynth_compose.steps.camera import (
    DefocusBlur,
    GaussianBlur,
    ISONoise,
    JpegCompression,
    MotionBlur,
    SensorNoise,
    Sharpen,
    Vignetting,
    noise_patch,
)
from docsynth_compose.steps.color import BrightnessContrast, ChannelShuffle, ColorJitter, RGBShift, WhiteBalance
from docsynth_compose.steps.lighting import CastShadow, Glare, RandomShadow, SunFlare, UnevenLight

from docsynth.kinds import Sample

H, W = 48, 64
CORNERS = np.array([[8.5, 6.5], [56.5, 6.5], [56.5, 42.5], [8.5, 42.5]])


def flat(value=(90, 140, 190)) -> Sample:
    image = np.empty((H, W, 3), np.uint8)
    image[:] = value
    mask = np.zeros((H, W), np.uint8)
    mask[7:42, 9:56] = 255
    return Sample(image=image, mask=mask, corners=CORNERS.copy(), flags=set(), extra={})


def dot() -> Sample:
    s = flat((0, 0, 0))
    s.image[24, 32] = 255
    return s


def run(step, sample=None, seed=0, **params):
    sample = sample or flat()
    if params:  # explicit parameters: apply them directly
        return Sample(step.apply(sample.image, **params), sample.mask, sample.corners, sample.flags, sample.extra)
    return step.run(sample, np.random.default_rng(seed))


# Every registered step that only changes the image (no hand-kept list: a new photometric step is
# checked as soon as it is registered).
PHOTOMETRIC = sorted(name for name, cls in STEPS.items() if not issubclass(cls, GeometricStep)
                     and not {"apply_to_mask", "apply_to_keypoints", "run"} & vars_up_to_step(cls))


def test_the_photometric_steps_are_found():
    assert len(PHOTOMETRIC) >= 18 and {"jpeg", "glare", "color_jitter"} <= set(PHOTOMETRIC)


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_steps_leave_labels_alone(name):
    s = flat()
    s.image[10:20, 10:30] = (20, 220, 60)  # some structure for blurs and JPEG
    out = STEPS[name]().run(s, np.random.default_rng(2))
    assert out.image.shape == s.image.shape and out.image.dtype == np.uint8
    assert out.mask is s.mask and np.array_equal(out.corners, s.corners)
    assert "approximate" not in out.flags


def test_brightness_contrast_formula():
    out = run(BrightnessContrast(), alpha=1.5, beta=10.0).image
    assert out[0, 0].tolist() == [min(255, round(v * 1.5 + 10)) for v in (90, 140, 190)]


def test_channel_shuffle_permutes_channels():
    out = run(ChannelShuffle(), order=[2, 0, 1]).image
    assert out[0, 0].tolist() == [190, 90, 140]


def test_rgb_shift_adds_per_channel():
    out = run(RGBShift(), shift=[-10, 5, 20]).image
    assert out[0, 0].tolist() == [80, 145, 210]


def test_color_jitter_hue_and_saturation():
    s = flat((40, 120, 200))
    grey = run(ColorJitter(), s, b=1.0, c=1.0, s=0.0, h=0.0).image[0, 0]
    assert grey.max() - grey.min() <= 2  # saturation 0 -> grey
    shifted = run(ColorJitter(), s, b=1.0, c=1.0, s=1.0, h=0.33).image[0, 0]
    assert int(np.argmax(shifted)) != 2  # red is no longer the dominant channel


def test_white_balance_warms_and_cools():
    warm = run(WhiteBalance(), gains=[0.8, 1.0, 1.2], exposure=1.0, gamma=1.0, saturation=1.0).image[0, 0]
    assert warm[2] > 190 and warm[0] < 90


def test_noise_adds_variance_around_the_same_mean():
    for step in (ISONoise(intensity=[0.5, 0.5]), SensorNoise(sigma=[6, 6])):
        out = run(step, seed=3).image.astype(float)
        assert out.std(axis=(0, 1)).min() > 1.5
        assert abs(out.mean() - flat().image.mean()) < 2


def test_noise_patch_is_deterministic_per_rng():
    a = noise_patch(np.random.default_rng(5), 30, 40)
    b = noise_patch(np.random.default_rng(5), 30, 40)
    c = noise_patch(np.random.default_rng(6), 30, 40)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(float(a.std()) - 1) < 0.1
    big = noise_patch(np.random.default_rng(5), 1500, 20)  # larger than the bank: tiled
    assert big.shape == (1500, 20, 3)


def test_motion_blur_smears_along_its_direction():
    from docsynth_compose.steps.camera import line_kernel

    out = run(MotionBlur(), dot(), kernel=line_kernel(9, 0.0)).image[..., 0]
    ys, xs = np.nonzero(out)
    assert xs.max() - xs.min() >= 6 and ys.max() - ys.min() <= 2
    assert "blur" in MotionBlur().run(dot(), np.random.default_rng(0)).extra["cases"]


def test_defocus_and_gaussian_blur_spread_a_dot_evenly():
    from docsynth_compose.steps.camera import disk_kernel

    for out in (run(DefocusBlur(), dot(), kernel=disk_kernel(3)).image[..., 0],
                run(GaussianBlur(), dot(), sigma=1.5).image[..., 0]):
        ys, xs = np.nonzero(out)
        assert xs.max() - xs.min() >= 4 and abs((xs.max() - xs.min()) - (ys.max() - ys.min())) <= 1
        assert out.max() < 128


def test_jpeg_quality_controls_the_error():
    rng = np.random.default_rng(0)
    s = flat()
    s.image[:] = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    low = np.abs(run(JpegCompression(), s, quality=30).image.astype(int) - s.image).mean()
    high = np.abs(run(JpegCompression(), s, quality=95).image.astype(int) - s.image).mean()
    assert low > high > 0


def test_sharpen_increases_edge_contrast():
    s = flat((100, 100, 100))
    s.image[:, 32:] = 150
    out = run(Sharpen(), s, amount=1.0, sigma=1.5).image[..., 0].astype(int)
    assert out[20, 30] < 100 and out[20, 33] > 150


def test_vignetting_darkens_corners_not_centre():
    out = run(Vignetting(), strength=0.5, cx=W / 2, cy=H / 2).image[..., 2].astype(int)
    assert out[0, 0] < 150 and abs(out[H // 2, W // 2] - 190) <= 2


def test_random_shadow_halves_inside_its_polygon():
    poly = [np.array([[0, 0], [W, 0], [W, H / 2], [0, H / 2]], float)]
    out = run(RandomShadow(), polys=poly).image
    assert out[5, 5].tolist() == [45, 70, 95] and out[40, 5].tolist() == [90, 140, 190]


def test_sun_flare_and_glare_brighten_around_their_centre():
    s = flat((60, 60, 60))
    flare = run(SunFlare(), s, source=(10, 10), radius=15, strength=0.8, ghosts=[], tint=[255, 255, 255]).image
    assert flare[10, 10, 0] > 180 and flare[45, 60, 0] < 70
    glare = run(Glare(), s, cx=50, cy=30, r=10, strength=0.6).image
    assert glare[30, 50, 0] > 150 and glare[2, 2, 0] < 70


def test_uneven_light_makes_one_side_darker():
    out = run(UnevenLight(), angle=0.0, gradient=0.4, hotspot=0.0, hx=0, hy=0, hr=100).image[..., 2].astype(int)
    assert out[:, :8].mean() < out[:, -8:].mean() - 20


def test_cast_shadow_is_soft_and_dark():
    poly = np.array([[-20, -20], [W / 2, -20], [W / 2, H + 20], [-20, H + 20]], float)
    out = run(CastShadow(), poly=poly, darkness=0.5, softness=0.05, tint=0.0).image[..., 1].astype(int)
    assert out[24, 2] < 80 and out[24, W - 2] > 135
    row = out[24]
    assert len(np.unique(row)) > 4  # a gradual edge, not a step
    assert "shadow" in CastShadow().run(flat(), np.random.default_rng(0)).extra["cases"]
