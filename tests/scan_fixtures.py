"""Small synthetic photos with known page corners, and a tiny model, for the scan tests.

The tiny model is a real model-contract model (a backbone plugin registered through the plugin
host, saved with ``save_checkpoint``) whose weights are set by hand instead of trained: its page
logit is a linear function of brightness, so it segments a bright page on a dark table. That is
enough to run scan, evaluate and export end to end in a second.
"""

from __future__ import annotations

import types
from pathlib import Path

import cv2
import numpy as np

from docsynth.geometry import quad_mask
from docsynth.hookspecs import hookimpl

MEAN = (0.4611, 0.4359, 0.3905)
STD = (0.2193, 0.2150, 0.2109)


def coverage(corners: np.ndarray, shape: tuple[int, int], ss: int = 8) -> np.ndarray:
    """Anti-aliased page coverage in [0, 1] (rendered at ``ss`` x and area-averaged): the exact
    share of each pixel inside the quad, up to 1/ss."""
    h, w = shape
    big = quad_mask(np.asarray(corners, dtype=np.float64) * ss, (h * ss, w * ss)).astype(np.float32) / 255
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)


def synthetic_photo(corners: np.ndarray, size: tuple[int, int], seed: int = 0, text: bool = True) -> np.ndarray:
    """A bright page with dark text lines, inside ``corners``, on a darker textured table."""
    w, h = size
    rng = np.random.default_rng(seed)
    table = cv2.GaussianBlur(rng.integers(30, 110, (h, w, 3)).astype(np.uint8), (0, 0), 1.5)
    table = (table * np.array([0.8, 0.9, 1.0])).astype(np.uint8)  # a brownish surface
    flat_w, flat_h = 200, 280
    page = np.full((flat_h, flat_w, 3), (222, 228, 232), np.uint8)
    if text:
        for y in range(30, flat_h - 30, 14):
            cv2.line(page, (24, y), (int(rng.integers(100, flat_w - 24)), y), (50, 50, 50), 2)
    src = np.array([[0, 0], [flat_w, 0], [flat_w, flat_h], [0, flat_h]], np.float32)
    from docsynth.geometry import to_center_homography

    m = to_center_homography(cv2.getPerspectiveTransform(src, np.asarray(corners, np.float32)).astype(np.float64))
    warped = cv2.warpPerspective(page, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = coverage(corners, (h, w))[..., None]
    photo = table * (1 - a) + warped * a
    photo += rng.normal(0, 2.0, photo.shape)  # sensor noise
    return np.clip(photo, 0, 255).astype(np.uint8)


def tiny_backbone(with_corners: bool = False):
    """A backbone plugin object named ``tiny`` (or ``tiny_corners``)."""

    class Tiny:
        name = "tiny_corners" if with_corners else "tiny"
        description = "brightness threshold with hand-set weights (tests only)"
        outputs = "mask+corners" if with_corners else "mask"

        def build(self, num_classes, weights, options):
            import torch
            from torch import nn

            class TinyNet(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.page = nn.Conv2d(3, 2, 1)
                    self.corners = nn.Conv2d(3, 4, 3, stride=2, padding=1) if with_corners else None
                    k = float(options.get("gain", 12.0))
                    # logit(page) - logit(table) = k * (mean RGB brightness - 0.5), undoing the
                    # input normalisation x = (v - mean) / std
                    with torch.no_grad():
                        self.page.weight.zero_()
                        self.page.bias.zero_()
                        for c in range(3):
                            self.page.weight[1, c, 0, 0] = k / 3 * STD[c]
                        self.page.bias[1] = k * (sum(MEAN) / 3 - 0.5)

                def forward(self, x):
                    out = {"out": self.page(x), "aux": self.page(x)}
                    if self.corners is not None:
                        out["corners"] = self.corners(x)
                    return out

            return TinyNet()

    return Tiny()


def register_tiny(with_corners: bool = False) -> None:
    """Register the tiny backbone as a test plugin through the plugin host."""
    from docsynth import plugins

    backbone = tiny_backbone(with_corners)

    @hookimpl
    def register_backbones(register):
        register(backbone)

    module = types.SimpleNamespace(register_backbones=register_backbones, __name__=f"test-{backbone.name}")
    plugins.host().add(module, f"test-{backbone.name}")


def tiny_checkpoint(path: Path, with_corners: bool = False, input_size: int = 96) -> Path:
    from docsynth import plugins
    from docsynth.scan.model_contract import save_checkpoint

    register_tiny(with_corners)
    name = "tiny_corners" if with_corners else "tiny"
    model = plugins.get("backbone", name).build(2, "none", {})
    save_checkpoint(path, model, {"backbone": name, "backbone_options": {}, "num_classes": 2,
                                  "input_size": input_size, "mean": list(MEAN), "std": list(STD)})
    return path


PHOTO_QUADS = {  # name -> (size (w, h), corners)
    "synth_a.jpg": ((320, 240), [[92.4, 40.2], [238.7, 52.9], [226.1, 215.3], [78.8, 201.6]]),
    "synth_b.jpg": ((240, 320), [[40.5, 60.5], [200.2, 38.1], [214.6, 280.4], [30.3, 270.7]]),
    "other_c.png": ((300, 300), [[150.2, 30.6], [268.4, 150.1], [150.5, 270.3], [32.9, 149.7]]),
}


def write_photo_folder(folder: Path) -> dict[str, np.ndarray]:
    """Photos + corners.csv; returns the true corners by name."""
    from docsynth.formats import corners as corners_csv

    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for k, (name, (size, corners)) in enumerate(PHOTO_QUADS.items()):
        c = np.array(corners, dtype=np.float64)
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if name.endswith(".jpg") else []
        cv2.imwrite(str(folder / name), synthetic_photo(c, size, seed=k), params)
        truth[name] = c
    (folder / "corners.csv").write_text(corners_csv.text(truth.items()))
    return truth
