"""Backbone `compact`: a small page-segmentation net meant to be trained from scratch on a CPU.

Why this shape: pretrained ImageNet features are not available offline, and the big
torchvision models learn too slowly on two cores. A page mask needs little capacity but a
large receptive field (is this bright region the page or the wall?), so the encoder goes
down to 1/32 with a global-context gate (as in LR-ASPP) and a light FPN decoder brings the
features back to 1/4 resolution. The blocks are plain narrow 3x3 convolutions, not
depthwise ones: on CPU, PyTorch's depthwise backward pass is slow, and a MobileNet-style
(inverted-residual) first version of this net trained several times slower for fewer FLOPs
(about 5-11 vs 21-40 images/s at 160 px on the shared 2-core machine, both measured under load). About 0.27 M parameters at ``width`` 1.0.

Options: ``width`` (channel multiplier, default 1.0), ``decoder`` (decoder channels,
default 32). The corner model in ``corners.py`` adds heatmap heads to this network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docsynth.config import AT_LEAST_1, POSITIVE, F
from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth.options import Options


def _round(c: float) -> int:
    return max(8, int(c + 4) // 8 * 8)


OPTIONS = {
    "width": F(float, 1.0, "channel multiplier", **POSITIVE),
    "decoder": F(int, 32, "decoder channels", **AT_LEAST_1),
}


def build_network(num_classes: int, options: Options, corners: bool = False):
    """The network (torch imported here so that listing plugins stays cheap)."""
    # torch only when a model is built: every plugin module loads at CLI start
    import torch
    import torch.nn.functional as F
    from torch import nn

    width = float(options.width)
    dec = int(options.decoder)

    def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers)

    class Block(nn.Module):
        """Two 3x3 convolutions, the first maybe strided; residual (1x1 shortcut when reshaped)."""

        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=False))
            self.short = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=False)

        def forward(self, x):
            s = x if self.short is None else self.short(x)
            return torch.relu(self.body(x) + s)

    c = [_round(v * width) for v in (16, 24, 32, 64, 96)]

    class CompactNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, c[0], 3, 2)  # 1/2
            self.stage1 = Block(c[0], c[1], 2)  # 1/4
            self.stage2 = Block(c[1], c[2], 2)  # 1/8
            self.stage3 = Block(c[2], c[3], 2)  # 1/16
            self.stage4 = Block(c[3], c[4], 2)  # 1/32
            # Global context: a per-channel gate from the whole image (as in LR-ASPP).
            self.context = conv_bn(c[4], dec, 1)
            self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c[4], dec, 1), nn.Sigmoid())
            self.lateral = nn.ModuleList([conv_bn(ch, dec, 1) for ch in (c[1], c[2], c[3])])
            self.smooth = nn.ModuleList([conv_bn(dec, dec) for _ in range(3)])
            self.head = nn.Conv2d(dec, num_classes, 1)
            self.corners = None
            if corners:
                # Corners need finer cells than the mask: one more decoder level at 1/2,
                # kept narrow (half the decoder width) because it runs on 4x more pixels.
                half = max(8, dec // 2)
                self.reduce_half = conv_bn(dec, half, 1)
                self.lateral_half = conv_bn(c[0], half, 1)
                self.corner_smooth = conv_bn(half, half)
                self.corners = nn.Conv2d(half, 4, 1)
                nn.init.constant_(self.corners.bias, -4.0)  # start from "no corner here"

        def forward(self, x):
            size = x.shape[-2:]
            f1 = self.stem(x)
            f2 = self.stage1(f1)
            f3 = self.stage2(f2)
            f4 = self.stage3(f3)
            f5 = self.stage4(f4)
            y = self.context(f5) * self.gate(f5)
            for feat, lateral, smooth in zip((f4, f3, f2), reversed(self.lateral), reversed(self.smooth), strict=True):
                y = F.interpolate(y, size=feat.shape[-2:], mode="bilinear", align_corners=False)
                y = smooth(y + lateral(feat))
            out = {"out": F.interpolate(self.head(y), size=size, mode="bilinear", align_corners=False)}
            if self.corners is not None:
                z = F.interpolate(self.reduce_half(y), size=f1.shape[-2:], mode="bilinear", align_corners=False)
                z = self.corner_smooth(z + self.lateral_half(f1))
                out["corners"] = self.corners(z)
            return out

    return CompactNet()


def load_weights(model: Any, weights: str) -> Any:
    """'none' trains from scratch; a file path loads a docsynth checkpoint's or a plain state dict."""
    if weights in (None, "", "none"):
        return model

    # torch only when a model is built: every plugin module loads at CLI start
    import torch

    if weights in ("imagenet", "coco"):
        raise DocsynthError(f"weights {weights!r}: the compact models have no pretrained weights; "
                            "use 'none' or a checkpoint file")
    path = Path(weights)
    if not path.is_file():
        raise DocsynthError(f"{path}: weights file not found")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model


class CompactBackbone:
    name = "compact"
    description = "small from-scratch FPN of narrow 3x3 convolutions (~0.27 M params), page mask"
    outputs = "mask"
    options = OPTIONS
    corners = False  # compact_corners: the same net plus the corner heads

    def build(self, num_classes: int, weights: str, options: Options) -> Any:
        return load_weights(build_network(num_classes, options, corners=self.corners), weights)


@hookimpl
def register_backbones(register):
    register(CompactBackbone())
