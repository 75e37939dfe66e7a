"""OnlineDataset: the training stream of fresh composites (docsynth/train/online.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from docsynth import config  # noqa: E402
from docsynth.errors import DocsynthError  # noqa: E402
from docsynth.generate.stream import SampleStream  # noqa: E402
from docsynth.train.online import OnlineDataset, to_item  # noqa: E402

SIZE = 32


def small_cfg(seed: int = 5) -> config.RunConfig:
    return config.typed({"seed": seed, "generate": dict(
        documents_count=3, backgrounds_count=2, per_document=2,
        source_options={"long_side": 96}, background_options={"size": [96, 72]},
        compositor="homography", compositor_options={"size": [64, 48], "landscape_p": 0.5})})


@pytest.mark.slow
def test_items_match_generate_and_the_contract():
    cfg = small_cfg(seed=9)
    ds = OnlineDataset(cfg, SIZE, base=100)
    stream = SampleStream.from_config(cfg.generate, cfg.seed)  # what generate writes
    sample = stream.sample(103)  # stream position 3 is generate's sample 103
    expect = to_item(sample, SIZE)
    item = ds.item(3)
    for key in expect:
        assert torch.equal(item[key], expect[key])
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (SIZE, SIZE) and item["mask"].dtype == torch.int64
    assert set(item["mask"].unique().tolist()) <= {0, 1}
    assert item["corners"].shape == (4, 2) and item["corners"].dtype == torch.float32
    assert item["has_corners"].dtype == torch.bool and bool(item["has_corners"])


def test_normalised_corners_agree_with_the_mask():
    cfg = small_cfg(seed=3)
    cfg.generate.compositor_options["keep_inside"] = True
    ds = OnlineDataset(cfg, 64)
    for pos in range(4):
        item = ds.item(pos)
        quad = item["corners"].numpy().astype(np.float64) * 64
        import cv2

        drawn = np.zeros((64, 64), np.uint8)
        cv2.fillPoly(drawn, [np.round(quad * 16 - 8).astype(np.int32)], 1, shift=4)
        mask = item["mask"].numpy().astype(bool)
        iou = (mask & drawn.astype(bool)).sum() / (mask | drawn.astype(bool)).sum()
        assert iou > 0.85, (pos, iou)


def test_absent_corners_give_zeros_and_false():
    from docsynth.kinds import Sample

    sample = Sample(image=np.full((20, 30, 3), 90, np.uint8), mask=np.zeros((20, 30), np.uint8), corners=None)
    item = to_item(sample, (8, 12))
    assert item["image"].shape == (3, 8, 12)
    assert not bool(item["has_corners"]) and torch.count_nonzero(item["corners"]) == 0
    assert int(item["mask"].sum()) == 0


def test_augment_is_seeded_per_sample():
    cfg = small_cfg()

    def darken(sample, rng):
        sample.image = (sample.image * rng.uniform(0.2, 0.8)).astype(np.uint8)
        return sample

    a = OnlineDataset(cfg, SIZE, augment=darken)
    b = OnlineDataset(cfg, SIZE, augment=darken)
    plain = OnlineDataset(cfg, SIZE)
    assert torch.equal(a.item(1)["image"], b.item(1)["image"])
    assert not torch.equal(a.item(1)["image"], plain.item(1)["image"])
    assert torch.equal(a.item(1)["mask"], plain.item(1)["mask"])


def test_bad_arguments_are_reported():
    cfg = small_cfg()
    with pytest.raises(DocsynthError, match="base"):
        OnlineDataset(cfg, SIZE, base=-1)
