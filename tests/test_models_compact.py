"""Backbones `compact` and `compact_corners` (plugins/docsynth_models/compact.py, corners.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import built_backbone  # noqa: E402

from docsynth import options as options_mod  # noqa: E402
from docsynth import plugins  # noqa: E402
from docsynth.errors import DocsynthError  # noqa: E402
from docsynth.scan.model_contract import decode_corners, load_model, predict, save_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow  # trains or exports models: minutes in all (CI runs it; `-m "not slow"` skips it)

SMALL = {"width": 0.5, "decoder": 16}


def test_registered_with_their_outputs():
    assert {"compact", "compact_corners"} <= set(plugins.names("backbone"))
    assert plugins.get("backbone", "compact").outputs == "mask"
    assert plugins.get("backbone", "compact_corners").outputs == "mask+corners"


def test_forward_shapes_follow_the_contract():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 96)
    mask_model = built_backbone("compact", "none", SMALL).eval()
    out = mask_model(x)
    assert set(out) == {"out"} and out["out"].shape == (2, 2, 64, 96)
    corner_model = built_backbone("compact_corners", "none", SMALL).eval()
    out = corner_model(x)
    assert out["out"].shape == (2, 2, 64, 96)
    assert out["corners"].shape == (2, 4, 32, 48)  # heatmaps at half the input resolution


def test_default_size_is_compact():
    model = built_backbone("compact_corners", "none", {})
    params = sum(p.numel() for p in model.parameters())
    assert 100_000 < params < 2_000_000


def _batch(n: int = 4, size: int = 32):
    """Bright quads on dark noise, with their corners as normalised points."""
    rng = np.random.default_rng(0)
    images, masks, corners = [], [], []
    import cv2

    for _ in range(n):
        img = rng.uniform(0, 0.3, (size, size, 3)).astype(np.float32)
        quad = np.array([[6, 5], [26, 7], [25, 27], [5, 25]], np.float64) + rng.uniform(-3, 3, (4, 2))
        m = np.zeros((size, size), np.uint8)
        cv2.fillPoly(m, [np.round(quad).astype(np.int32)], 1)
        img[m > 0] = 0.9
        images.append(img.transpose(2, 0, 1))
        masks.append(m)
        corners.append(quad / size)
    return (torch.tensor(np.array(images)), torch.tensor(np.array(masks), dtype=torch.int64),
            torch.tensor(np.array(corners), dtype=torch.float32))


def _loss(out, mask, corners):
    import torch.nn.functional as F

    loss = F.cross_entropy(out["out"], mask)
    if "corners" in out:
        hm = out["corners"]
        h, w = hm.shape[-2:]
        ys = (torch.arange(h) + 0.5) / h
        xs = (torch.arange(w) + 0.5) / w
        d2 = ((xs[None, None, None] - corners[..., 0, None, None]) * w) ** 2 + \
             ((ys[None, None, :, None] - corners[..., 1, None, None]) * h) ** 2
        loss = loss + F.binary_cross_entropy_with_logits(hm, torch.exp(-d2 / 2))
    return loss


@pytest.mark.parametrize("name", ["compact", "compact_corners"])
def test_a_few_steps_lower_the_loss(name):
    torch.manual_seed(0)
    model = built_backbone(name, "none", SMALL)
    x, mask, corners = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = _loss(model(x), mask, corners)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_checkpoint_round_trip_in_fp16(tmp_path):
    torch.manual_seed(1)
    model = built_backbone("compact_corners", "none", SMALL)
    model.train()
    x, _, _ = _batch(2)
    model(x)  # move BatchNorm statistics away from their defaults
    model.eval()
    meta = {"backbone": "compact_corners", "backbone_options": SMALL, "input_size": 32,
            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    path = tmp_path / "m.pt"

    class Half(torch.nn.Module):  # what shipping does: fp16 weights on disk
        def state_dict(self, *a, **k):
            return {k2: v.half() if v.is_floating_point() else v for k2, v in model.state_dict().items()}

    save_checkpoint(path, Half(), meta)
    loaded, ckpt = load_model(path)
    assert ckpt["backbone"] == "compact_corners"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.inference_mode():
        a, b = model(x), loaded(x)
    assert torch.allclose(a["out"], b["out"], atol=0.05)
    assert torch.allclose(a["corners"], b["corners"], atol=0.05)
    photo = (np.random.default_rng(0).uniform(0, 255, (40, 50, 3))).astype(np.uint8)
    pred = predict(loaded, ckpt, photo)
    assert pred.page_prob.shape == (40, 50) and pred.corners.shape == (4, 2)
    corners, scores = decode_corners(b["corners"][0].numpy(), 50, 40)
    assert np.all(scores > 0) and np.all(scores < 1)


def test_weights_option(tmp_path):
    backbone = plugins.get("backbone", "compact")
    with pytest.raises(DocsynthError, match="no pretrained"):
        backbone.build(2, "imagenet", options_mod.build(backbone, SMALL))
    with pytest.raises(DocsynthError, match="not found"):
        backbone.build(2, str(tmp_path / "missing.pt"), options_mod.build(backbone, SMALL))
    model = backbone.build(2, "none", options_mod.build(backbone, SMALL))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    again = backbone.build(2, str(tmp_path / "w.pt"), options_mod.build(backbone, SMALL))
    for (k, v), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)
