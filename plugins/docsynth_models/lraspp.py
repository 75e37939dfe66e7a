"""Backbone `lraspp_mobilenet_v3_large`: torchvision's LR-ASPP with a 2-class head.

About 3x faster than DeepLabV3-MobileNetV3 on a CPU (no atrous pyramid, a light head on 1/8
and 1/16 features), which is what a from-scratch CPU budget needs. Weights as for the
DeepLabV3 backbones: ``none``, ``imagenet`` (backbone), ``coco`` (whole model, 21-class head
swapped for a 2-class one) or a local file. No auxiliary head, no options.
"""

from __future__ import annotations

from typing import Any

from docsynth.errors import DocsynthError
from docsynth.hookspecs import hookimpl
from docsynth_models.tv import build_pretrained, segmenter


class LRASPPBackbone:
    name = "lraspp_mobilenet_v3_large"
    description = "LR-ASPP, MobileNetV3-Large backbone (torchvision), 2-class head; fast on CPU"
    outputs = "mask"
    options: dict = {}  # no auxiliary head, nothing to set

    def build(self, num_classes: int, weights: str, options: dict[str, Any]) -> Any:
        # torch only when a model is built: every plugin module loads at CLI start
        from torch import nn
        from torchvision.models import MobileNet_V3_Large_Weights
        from torchvision.models.segmentation import LRASPP_MobileNet_V3_Large_Weights, lraspp_mobilenet_v3_large

        if options:
            raise DocsynthError(f"train.backbone_options: {self.name} takes no options (got {sorted(options)})")
        if weights == "coco":
            full = LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1
            net = build_pretrained(lraspp_mobilenet_v3_large, full, "coco", weights=full)
            head = net.classifier
            head.low_classifier = nn.Conv2d(head.low_classifier.in_channels, num_classes, 1)
            head.high_classifier = nn.Conv2d(head.high_classifier.in_channels, num_classes, 1)
        elif weights == "imagenet":
            backbone = MobileNet_V3_Large_Weights.IMAGENET1K_V1
            net = build_pretrained(lraspp_mobilenet_v3_large, backbone, "imagenet", weights=None,
                                   weights_backbone=backbone, num_classes=num_classes)
        else:
            net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
        return segmenter(net, aux=False, weights=weights)


@hookimpl
def register_backbones(register):
    register(LRASPPBackbone())
