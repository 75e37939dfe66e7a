"""Backbones `mobilenet_v3_large` and `resnet50`: torchvision's DeepLabV3 with a 2-class head.

The reference recipe's models. Both heads (main and auxiliary) are replaced by 2-class ones
(background, page). Weights: ``none`` (from scratch), ``imagenet`` (backbone only), ``coco``
(the whole COCO/VOC model, its 21-class heads swapped for 2-class ones) or a local file; the
pretrained files must already be in the torch hub cache (see ``docsynth_models.tv``).

Options: ``aux`` (default true): the auxiliary FCN head, trained with weight
``train.aux_weight`` and skipped at inference.
"""

from __future__ import annotations

from typing import Any

from docsynth.config import F
from docsynth.hookspecs import hookimpl
from docsynth.options import Options
from docsynth_models.tv import build_pretrained, segmenter


def _two_class_heads(net: Any, num_classes: int) -> None:
    """Swap the last 1x1 convolution of each head for a fresh ``num_classes`` one."""
    # torch only when a model is built: every plugin module loads at CLI start
    from torch import nn

    for head in (net.classifier, getattr(net, "aux_classifier", None)):
        if head is not None and head[-1].out_channels != num_classes:
            head[-1] = nn.Conv2d(head[-1].in_channels, num_classes, 1)


class DeepLabV3Backbone:
    outputs = "mask"
    options = {"aux": F(bool, True, "train with the auxiliary head")}

    def __init__(self, name: str, description: str, builder: str, weights_enum: str, backbone_enum: str):
        self.name = name
        self.description = description
        self._builder, self._weights_enum, self._backbone_enum = builder, weights_enum, backbone_enum

    def build(self, num_classes: int, weights: str, options: Options) -> Any:
        # torch only when a model is built: every plugin module loads at CLI start
        import torchvision.models as tvm
        import torchvision.models.segmentation as seg

        aux = bool(options.aux)
        factory = getattr(seg, self._builder)
        full = getattr(seg, self._weights_enum).COCO_WITH_VOC_LABELS_V1
        backbone = getattr(tvm, self._backbone_enum).IMAGENET1K_V1
        if weights == "coco":
            net = build_pretrained(factory, full, "coco", weights=full, aux_loss=True)
            _two_class_heads(net, num_classes)
        elif weights == "imagenet":
            net = build_pretrained(factory, backbone, "imagenet", weights=None, weights_backbone=backbone,
                                   num_classes=num_classes, aux_loss=True)
        else:
            net = factory(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=True)
        return segmenter(net, aux=aux, weights=weights)


@hookimpl
def register_backbones(register):
    register(DeepLabV3Backbone(
        "mobilenet_v3_large", "DeepLabV3, MobileNetV3-Large backbone (torchvision), 2-class main + aux heads",
        "deeplabv3_mobilenet_v3_large", "DeepLabV3_MobileNet_V3_Large_Weights", "MobileNet_V3_Large_Weights"))
    register(DeepLabV3Backbone(
        "resnet50", "DeepLabV3, ResNet50 backbone (torchvision), 2-class main + aux heads",
        "deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights", "ResNet50_Weights"))
